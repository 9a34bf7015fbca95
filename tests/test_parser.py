import pytest

from knowledge.kb import article_refs, to_cn_number
from knowledge.numerals import arabize, cn_to_int
from knowledge.parser import ParseError, parse_measure


@pytest.mark.parametrize("text,value", [("十二", 12), ("二十", 20), ("二十一", 21), ("一百零五", 105), ("两", 2),
                                        ("一千二百万", 12_000_000), ("二〇二一", 2021), ("15", 15), ("条", None)])
def test_chinese_numerals(text, value):
    assert cn_to_int(text) == value


@pytest.mark.parametrize("n", [1, 9, 10, 12, 19, 20, 21, 25, 99, 100, 105, 110, 120])
def test_article_numbers_round_trip(n):
    assert cn_to_int(to_cn_number(n)) == n


def test_arabize_touches_counted_numerals_only():
    assert arabize("两年") == "2年"
    assert arabize("三十个工作日") == "30个工作日"
    assert arabize("百分之十五") == "15%"
    assert arabize("第十四条") == "第十四条"
    assert arabize("一站式统一") == "一站式统一"


def test_article_refs():
    assert article_refs("第十二条和第20条") == [12, 20]
    assert article_refs("没有条款") == []


def test_real_measures_segmented(kb):
    baotou, weihai = kb.measures["baotou"], kb.measures["weihai"]
    assert sorted(baotou.articles) == list(range(1, 17))
    assert sorted(weihai.articles) == list(range(1, 26))
    assert weihai.articles[12].chapter_title == "申报条件"
    assert baotou.articles[1].chapter_title == "总则"  # 总 则 in the source, spaces folded
    labels = [p.label for p in weihai.articles[12].paragraphs if p.label]
    assert labels == ["1.", "2.", "3.", "（1）", "（2）", "（3）"]
    assert [p.level for p in weihai.articles[12].paragraphs if p.label] == [1, 1, 1, 2, 2, 2]
    assert len([p for p in baotou.articles[7].paragraphs if p.label]) == 9
    # lines broken by extraction are re-joined: no article paragraph ends mid-sentence
    assert "三年内不得重新申请" in weihai.articles[20].text


def test_parser_rejects_gaps_and_empty():
    with pytest.raises(ParseError):
        parse_measure("标题\n第一条 甲。\n第三条 乙。")
    with pytest.raises(ParseError):
        parse_measure("")
    with pytest.raises(ParseError):
        parse_measure("只有标题\n没有条文")


def test_metadata(kb):
    import datetime as dt
    w, b = kb.measures["weihai"], kb.measures["baotou"]
    assert w.meta["document_number"] == "威工信发〔2021〕34号"
    assert w.status(dt.date(2026, 8, 31)) == "in_force"
    assert w.status(dt.date(2026, 9, 1)) == "expired"
    assert b.meta["issued_on"] is None and b.status(dt.date(2026, 11, 22)) == "unknown"
