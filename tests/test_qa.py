"""Behaviour of answers: citations, city scoping, references, validity notes, declines, bad input."""
import datetime as dt

import pytest

from knowledge.qa import answer, resolve_city

TODAY = dt.date(2026, 11, 22)


def cited(a):
    return [(c.measure, c.article) for c in a.citations]


def test_answer_cites_article_in_text_and_json(kb):
    a = answer(kb, "威海的示范企业多久复核一次？", TODAY)
    assert not a.abstained and cited(a)[0] == ("weihai", 18)
    assert "每两年组织一次复核" in a.answer
    assert "《威海市服务型制造示范企业认定管理办法》第十八条" in a.answer
    d = a.as_dict()
    assert d["citations"][0] == {"measure": "weihai", "article": 18,
                                 "title": "《威海市服务型制造示范企业认定管理办法》第十八条"}
    assert d["city"] == "weihai" and d["abstained"] is False


def test_expired_measure_is_flagged_and_in_force_is_not(kb):
    assert "已到期" in answer(kb, "威海复核多久一次", TODAY).answer
    assert "已到期" not in answer(kb, "威海复核多久一次", dt.date(2025, 1, 1)).answer
    assert "发布日期不详" in answer(kb, "包头申报材料有哪些", TODAY).answer


@pytest.mark.parametrize("place,city", [("荣成市", "weihai"), ("我们在文登", "weihai"), ("稀土高新区", "baotou"),
                                        ("昆都仑区", "baotou"), ("威海市", "weihai"), ("weihai", "weihai")])
def test_districts_choose_the_city(kb, place, city):
    assert resolve_city(kb, place) == city
    a = answer(kb, f"{place}的企业申报需要什么条件", TODAY)
    assert not a.abstained and a.citations[0].measure == city


def test_no_city_answers_both_side_by_side(kb):
    a = answer(kb, "示范企业更名后多久内要备案", TODAY)
    assert set(cited(a)) == {("baotou", 13), ("weihai", 21)}
    assert "【包头】" in a.answer and "【威海】" in a.answer and a.city is None


def test_context_city_scopes_an_unnamed_question(kb):
    a = answer(kb, "更名后多久内要备案", TODAY, city="baotou")
    assert cited(a) == [("baotou", 13)] and a.city == "baotou"


def test_explicit_article_references(kb):
    assert cited(answer(kb, "威海办法第20条讲的什么", TODAY)) == [("weihai", 20)]
    assert cited(answer(kb, "包头第十三条", TODAY)) == [("baotou", 13)]
    both = answer(kb, "第十二条", TODAY)
    assert set(cited(both)) == {("baotou", 12), ("weihai", 12)}
    missing = answer(kb, "包头办法第二十条", TODAY)
    assert missing.abstained and "共16条" in missing.answer


def test_uncovered_city_is_declined_naming_the_covered_ones(kb):
    a = answer(kb, "济南市服务型制造示范企业怎么申报", TODAY)
    assert a.abstained and a.reason == "uncovered_city" and a.citations == []
    assert "包头" in a.answer and "威海" in a.answer


@pytest.mark.parametrize("q", ["今天天气怎么样", "讲个笑话", "高新技术企业认定需要什么条件", "研发费用加计扣除比例是多少"])
def test_out_of_scope_is_declined(kb, q):
    a = answer(kb, q, TODAY)
    assert a.abstained and a.citations == []


def test_typos_traditional_and_colloquial(kb):
    assert cited(answer(kb, "威海示范企业多久复合一次", TODAY))[0] == ("weihai", 18)
    assert cited(answer(kb, "威海改名字了要报被吗", TODAY))[0] == ("weihai", 21)
    assert cited(answer(kb, "威海示範企業複審多久一次", TODAY))[0] == ("weihai", 18)
    # 食行 sounds like 施行 and 试行 alike: the same repair in every process (not by set order), and 施行
    # reads as 实施 (包头's word)
    assert cited(answer(kb, "包头的办法是食行的吗", TODAY)) == [("baotou", 16)]
    a = answer(kb, "办法由谁负责解释，包投的", TODAY)  # a mistyped city still chooses the city
    assert cited(a) == [("baotou", 15)] and a.city == "baotou"
    a = answer(kb, "达贸旗的企业申报材料交给谁", TODAY)  # so does a mistyped district (达茂旗)
    assert a.city == "baotou" and ("达贸旗", "达茂旗") in a.corrections
    # a typo picked under another reading of its character (调: tiao), or a real word sounding exactly like
    # a term (财物: 财务), is repaired; a real word merely close to one is not (工信 of 工信部 is no 共性)
    assert ("调件", "条件") in answer(kb, "包头的申报调件有哪些", TODAY).corrections
    assert ("财物", "财务") in answer(kb, "威海申报要交财物报表吗", TODAY).corrections
    assert not answer(kb, "工信部的通知在哪看", TODAY).corrections


@pytest.mark.parametrize("q", ["", "   ", "😀😀😀", "？？？！！", "\x00\x07\x1b[31m", "啊" * 10_000, "hello there",
                               "威海 申报 conditions 是什么？？", "\u202e第十二条"])
def test_bad_input_gets_a_short_chinese_reply(kb, q):
    a = answer(kb, q, TODAY)
    assert a.answer and len(a.answer) < 2000
    assert any("\u4e00" <= ch <= "\u9fff" for ch in a.answer)


def test_followups_are_offered_and_exist_in_that_measure(kb):
    a = answer(kb, "包头哪些情况会撤销称号", TODAY)
    assert a.followups and all("复核" not in f for f in a.followups)  # 包头 has no re-review


def test_a_city_whose_measure_is_silent_says_so_and_points_elsewhere(kb):
    a = answer(kb, "包头的示范企业多久复核一次", TODAY)
    assert a.abstained and a.citations == [] and a.city == "baotou"
    assert "没有这方面的规定" in a.answer and "第十八条" in a.answer


@pytest.mark.parametrize("q", ["示范企业每年能拿多少奖金", "今年的申报截止日期是几月几号", "威海市工信局的联系电话是多少",
                               "专精特新企业怎么申报", "国家级服务型制造示范企业怎么申报", "亩产效益评价的评分标准是什么"])
def test_questions_for_facts_the_measures_do_not_hold_are_declined(kb, q):
    a = answer(kb, q, TODAY)
    assert a.abstained and a.citations == [], a.answer


def test_situation_words_do_not_make_an_eligibility_question_foreign(kb):
    a = answer(kb, "我们厂去年因为废水超标被通报过，还能申报威海的示范企业吗", TODAY)
    assert not a.abstained and a.citations[0].article == 12


def test_a_list_question_gets_the_whole_list(kb):
    a = answer(kb, "包头的申报条件有哪些", TODAY)
    assert all(label in a.answer for label in ("（一）", "（二）", "（三）"))


def test_random_input_never_raises(kb):
    import random
    rng = random.Random(7)
    alphabet = [chr(c) for c in [*range(0x20, 0x7f), *range(0x4e00, 0x4e80), *range(0x3000, 0x3020),
                                 0x0, 0x7, 0x1b, 0x202e, 0xfeff, 0xff08, 0x1f600]]
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        for city in (None, "baotou", "unknown-id"):
            a = answer(kb, text, TODAY, city)
            assert a.answer and (not a.abstained or a.citations == [])


def test_an_unknown_foreign_word_is_left_uncovered(kb):
    assert answer(kb, "ChatGPT是什么东西", TODAY).abstained
    assert cited(answer(kb, "威海 review 多久一次", TODAY))[0] == ("weihai", 18)


def test_a_topic_in_the_background_does_not_put_the_answer_off_topic(kb):
    # 复核 only tells what happened; the question is about applying again (威海 第二十条)
    a = answer(kb, "去年复核没通过被撤销了，隔多久才能重新申请", TODAY, "weihai")
    assert cited(a) == [("weihai", 20)]


def test_names_and_wordings_match_on_token_boundaries(kb):
    # 高企 (another programme) is no part of 提高企业
    a = answer(kb, "要提高企业的服务能力，威海申报条件是什么", TODAY)
    assert not a.abstained and a.reason != "other_programme" and cited(a)[0] == ("weihai", 12)
    assert answer(kb, "高企申报条件是什么", TODAY).reason == "other_programme"
    # 元 of 多元化 is no amount of money: the measures name none, so this is declined, whatever 多元化 matches
    assert kb.analyzer.occurs("奖励10万元", "万元") and not kb.analyzer.occurs("多元化服务", "元")
    assert answer(kb, "多元化服务能拿多少钱", TODAY).abstained


def test_a_real_word_is_never_repaired_into_another(kb):
    assert kb.analyzer.query("经营才够两年能申报吗").corrections == []
    assert kb.analyzer.query("被案要多久").corrections == [("被案", "备案")]


def test_every_answer_and_decline_says_what_decided_it(kb):
    for q in ("威海的示范企业多久复核一次？", "今天天气怎么样", "专精特新怎么申报", "上海的示范企业怎么申报",
              "威海办法第20条讲的什么"):
        a = answer(kb, q, TODAY)
        assert a.reason and a.trace, q
        assert {"reason", "trace"} <= set(a.as_dict())
    assert answer(kb, "今天天气怎么样", TODAY).reason.startswith(("low_probability", "no_candidate"))
