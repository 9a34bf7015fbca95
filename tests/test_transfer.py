"""What carries the example questions of 包头 and 威海 over to a measure never seen: the role each article plays
in its measure (read from how it opens, in the wording any measure of this kind uses), the kinds of answer a
question asks for (in generic regulatory wording), and the decision's thresholds fitted jointly."""
import numpy as np
import pytest

from knowledge import intents, ranker
from knowledge.qa import article_role
from knowledge.textnorm import normalize


# articles worded as other cities' measures word them (none is a sentence of 包头's or 威海's)
@pytest.mark.parametrize("text, role", [
    ("申报示范企业须同时满足以下条件：（一）在本市注册登记，持续经营3年（含）以上；", "conditions"),
    ("申报单位有下列情形之一的，实行一票否决：（一）近三年内存在偷税漏税行为的；", "conditions"),
    ("因本办法第二十六条第（二）项情形被撤销的，5年内不得申报市级各类财政专项资金。", "reapply"),
    ("有下列情形之一的，撤销称号（认定）：（一）复核不合格且整改后仍不合格的；", "revocation"),
    ("示范企业发生更名、重组、合并、分立等情况的，应自变更之日起15个工作日内报备。", "filing"),
    ("示范企业实行每三年复核制度。市工业和信息化局在称号公布满三年的当年组织复核。", "review"),
    ("对新认定的示范企业，给予一次性奖励30万元。", "support"),
    ("本办法由市工业和信息化局、市财政局负责解释。", "interpretation"),
    ("本办法自2025年3月1日起施行，有效期五年。", "validity"),
    ("市工业和信息化局每年发布申报指南。申报单位向所在县区主管部门提交申报材料，主要包括：", "materials"),
    ("为深入贯彻落实制造强国战略，加快我市制造业向服务型制造转变，制定本办法。", "purpose"),
    ("本办法所称示范平台，是指为制造业企业提供服务型制造解决方案的公共服务平台。", "definition"),
])
def test_an_articles_role_is_read_from_how_it_opens(kb, text, role):
    assert article_role(kb.lexicon, normalize(text)) == role


@pytest.mark.parametrize("intent, article", [
    ("reapply", "因其他情形被撤销的，自撤销之日起2年内不得再次申报。"),
    ("eligibility", "申报示范企业须同时满足以下条件："),
    ("consequence", "以弄虚作假等不正当手段骗取认定的，撤销其认定，追回奖励资金。"),
    ("frequency", "示范企业实行每三年复核制度。"),
    ("benefit", "对新认定的示范企业，给予一次性奖励30万元。"),
])
def test_an_answers_wording_is_generic_not_one_citys(kb, intent, article):
    wording = [w for w in (kb.lexicon["intents"][intent].get("article_has") or [])]
    assert any(intents.has_wording(normalize(article), intents.compile_wording(w), kb.analyzer) for w in wording)


def test_the_in_domain_threshold_is_fitted_with_the_other_on_every_row():
    # in-domain rows: answerable and right at a middling probability; the rest: answerable rows at high
    # probability and questions to decline at middling ones. Alone, the in-domain rows would ask for a
    # threshold above the questions to decline among them; fitted on every row, it lets them through.
    p = np.array([0.45, 0.5, 0.55, 0.5, 0.9, 0.85, 0.5, 0.55, 0.6])
    right = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0], bool)
    answerable = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0], bool)
    in_domain = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0], bool)
    t, t_dom, value = ranker._best_pair(p, right, answerable, in_domain, [0.05, 0.95, 0.01], "min")
    assert t_dom <= 0.45 < 0.6 < t and abs(value - 0.75) < 1e-9  # all 5 answered right; 3 of 4 declined
    alone, _ = ranker._best_threshold(p[in_domain], right[in_domain], answerable[in_domain], [0.05, 0.95, 0.01])
    assert alone > 0.5  # the former fit: the in-domain rows alone


@pytest.mark.parametrize("typed, read", [
    ("shifan qiye 的 tiaojian", "示范 企业 的 条件"),
    ("gongshi 几天", "公示 几天"),
    ("jiangli 多少", "奖励 多少"),
])
def test_a_word_of_the_measures_typed_in_pinyin_is_read_as_it(kb, typed, read):
    assert kb.analyzer.query(typed).text == read
