"""`policybot kb import`: a measure from its published document, raw as extracted, into the knowledge base's format."""
import datetime as dt
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from knowledge import importer
from knowledge.importer import ImportFailure, import_document, import_text
from knowledge.kb import SOURCE_DIR
from knowledge.parser import ParseError, parse_measure

ROOT = Path(__file__).resolve().parent.parent
RAW = Path(__file__).parent / "data" / "raw"

# A small measure as a PDF extraction gives it: a notice header, lines wrapped at a fixed width, blank lines,
# page numbers, a cross-reference (第二十七条规定) and a back-reference (第三条) that a line break put first,
# an item label continuing a sentence, and 自发布之日起实施，试行两年.
SAMPLE = """
测试市工业和信息化局文件

测工信发〔2023〕5 号

测试市工业和信息化局关于印发《测试市服务型制造示范企业认
定管理办法》的通知

各县区工信局，测试高新区、测试经开区管委会：
现将办法印发给你们，请遵照执行。

测试市工业和信息化局
2023 年 3 月 15 日

测试市服务型制造示范企业认定管理办法
第一章 总则
第一条 为促进服务型制造发展，根据上级有关文件精神，结合本
市实际，制定本办法。
第二条 本办法适用于在本市依法注册的制造业企业，包括测试
高新区内的企业。

- 2 -

第三条 申报企业应具备以下条件：
（一）在本市注册，正常经营两年（含）以上，且符合本办法
第二十七条规定的其他要求；
（二）近三年内实施服务型制造项目不少于 2 个，符合本办法
第三条（一）项的企业优先；
（三）服务收入占比不低于 15%。
第二章 附则
第四条 示范企业发生更名、重组等重大调整的，应在办理相关手续
后 20 个工作日内报市工业和信息化局备案。
第五条 本办法自发布之日起实施，试行两年。
"""


def _articles(text: str):
    parsed = parse_measure(text)
    return parsed.title, [(a.number, a.chapter_title, a.text) for a in parsed.articles]


@pytest.mark.parametrize("mid", ["baotou", "weihai"])
def test_the_raw_extraction_imports_into_the_same_articles_as_the_hand_cleaned_text(mid):
    result = import_document(RAW / f"{mid}.txt", existing={})
    assert result.id == mid  # the city's name in pinyin
    assert _articles(result.text) == _articles((SOURCE_DIR / "measures" / f"{mid}.txt").read_text(encoding="utf-8"))


def test_the_notice_header_becomes_metadata():
    meta = import_document(RAW / "weihai.txt", existing={}).meta
    assert meta["title"] == "威海市服务型制造示范企业认定管理办法"
    assert meta["issuer"] == "威海市工业和信息化局"
    assert meta["document_number"] == "威工信发〔2021〕34号"
    assert meta["issued_on"] == dt.date(2021, 7, 20)
    assert (meta["in_force_from"], meta["in_force_until"]) == (dt.date(2021, 9, 1), dt.date(2026, 8, 31))
    assert meta["status_note"].startswith("第二十五条：本办法自2021年9月1日起施行")
    city = meta["city"]
    assert (city["name"], city["short"], city["province"]) == ("威海市", "威海", "山东省")
    # districts from the gazetteer, zones from the notice's addressees
    for name in ("环翠区", "文登区", "荣成市", "荣成", "乳山市", "高区", "经区", "临港区", "综保区", "南海新区"):
        assert name in city["districts"], name
    assert "威海市" not in city["districts"]


def test_no_date_in_the_document_leaves_the_validity_unknown_and_says_so():
    result = import_document(RAW / "baotou.txt", existing={})
    meta = result.meta
    assert meta["issued_on"] is None and meta["in_force_from"] is None and meta["in_force_until"] is None
    assert meta["validity_years"] == 2
    assert meta["city"]["name"] == "包头市" and "稀土高新区" in meta["city"]["districts"]
    assert "固阳县" in meta["city"]["districts"] and "白云鄂博" in meta["city"]["districts"]
    assert meta["city"]["authority"] == "包头市工业和信息化局"  # the bureau the articles name
    todo = "\n".join(result.todo)
    assert "in_force_from" in todo and "in_force_until" in todo and "issued_on" in todo


def test_cross_references_that_start_a_line_are_not_headings():
    with pytest.raises(ParseError):  # the parser alone refuses the raw text
        parse_measure(SAMPLE)
    result = import_text(SAMPLE, id="ceshi", existing={})
    title, articles = _articles(result.text)
    assert title == "测试市服务型制造示范企业认定管理办法"
    assert [a[0] for a in articles] == [1, 2, 3, 4, 5]
    art3 = parse_measure(result.text).articles[2]
    assert [p.label for p in art3.paragraphs] == [None, "（一）", "（二）", "（三）"]
    assert art3.paragraphs[1].text == "在本市注册，正常经营两年（含）以上，且符合本办法第二十七条规定的其他要求；"
    assert art3.paragraphs[2].text == "近三年内实施服务型制造项目不少于2个，符合本办法第三条（一）项的企业优先；"
    assert articles[0][2] == "为促进服务型制造发展，根据上级有关文件精神，结合本市实际，制定本办法。"
    assert "- 2 -" not in result.text and "2 -" not in result.text
    assert any("第二十七条" in n for n in result.notes)


def test_published_on_with_a_trial_period_runs_from_the_notice_date():
    result = import_text(SAMPLE, id="ceshi", existing={})
    meta = result.meta
    assert meta["document_number"] == "测工信发〔2023〕5号"
    assert meta["issued_on"] == dt.date(2023, 3, 15)
    assert meta["issuer"] == "测试市工业和信息化局"
    assert meta["in_force_from"] == dt.date(2023, 3, 15)  # 自发布之日起实施, the notice's date
    assert meta["in_force_until"] == dt.date(2025, 3, 14)  # 试行两年
    assert any("自发布之日起" in t for t in result.todo)
    assert meta["city"]["districts"] == ["测试高新区", "测试经开区"]


def test_without_a_city_of_the_gazetteer_the_id_must_be_given():
    with pytest.raises(ImportFailure, match="--id"):
        import_text(SAMPLE, existing={})
    result = import_text(SAMPLE, id="mou", existing={})
    assert result.id == "mou" and result.meta["city"]["name"] is None
    assert any(t.startswith("city:") for t in result.todo)


def test_a_second_measure_of_a_city_gets_a_new_id_and_is_marked_as_successor():
    existing = {"weihai": {"title": "旧办法", "city": {"name": "威海市"}}}
    result = import_document(RAW / "weihai.txt", existing=existing)
    assert result.id == "weihai2021" and result.meta["supersedes"] == "weihai"
    same = {"weihai": {"title": "威海市服务型制造示范企业认定管理办法", "document_number": "威工信发〔2021〕34号",
                       "issued_on": dt.date(2021, 7, 20), "city": {"name": "威海市"}}}
    with pytest.raises(ImportFailure, match="already held as weihai"):
        import_document(RAW / "weihai.txt", existing=same)


@pytest.mark.parametrize("text", ["", "这是一段普通文字。\n没有条款。", "第一章 总则\n第二条 没有第一条。"])
def test_what_cannot_be_parsed_is_refused(text):
    with pytest.raises(ImportFailure):
        import_text(text, id="x1", existing={})


def test_docx_is_read(tmp_path):
    docx = pytest.importorskip("docx")
    d = docx.Document()
    for line in (RAW / "baotou.txt").read_text(encoding="utf-8").splitlines():
        d.add_paragraph(line)
    path = tmp_path / "m.docx"
    d.save(str(path))
    result = import_document(path, existing={})
    assert _articles(result.text) == _articles((SOURCE_DIR / "measures" / "baotou.txt").read_text(encoding="utf-8"))


def test_text_pdf_is_read(tmp_path):
    pytest.importorskip("reportlab")
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))  # a CJK font reportlab ships (no file needed)
    path = tmp_path / "m.pdf"
    c = canvas.Canvas(str(path), pagesize=A4)
    lines = [ln for ln in SAMPLE.splitlines() if ln.strip()]
    y, page = 800, 1
    for line in lines:
        if line.strip() == "- 2 -" or y < 60:
            c.setFont("STSong-Light", 10)
            c.drawString(280, 30, f"- {page} -")
            c.showPage()
            y, page = 800, page + 1
            if line.strip() == "- 2 -":
                continue
        c.setFont("STSong-Light", 12)
        c.drawString(50, y, line)
        y -= 20
    c.save()
    result = import_document(path, id="ceshi", existing={})
    assert _articles(result.text) == _articles(import_text(SAMPLE, id="ceshi", existing={}).text)
    assert result.meta["document_number"] == "测工信发〔2023〕5号"


def test_unsupported_or_missing_files_are_refused(tmp_path):
    (tmp_path / "m.odt").write_text("x")
    with pytest.raises(ImportFailure, match="unsupported"):
        import_document(tmp_path / "m.odt")
    with pytest.raises(ImportFailure, match="no such file"):
        import_document(tmp_path / "none.txt")
    (tmp_path / "bad.pdf").write_bytes(b"not a pdf at all")
    with pytest.raises(ImportFailure, match="bad.pdf"):
        import_document(tmp_path / "bad.pdf")


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env=env or os.environ)


def test_cli_writes_the_text_and_a_draft_then_the_base_builds(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(SOURCE_DIR, source, ignore=shutil.ignore_patterns("*.py", "__pycache__", "measures"))
    (source / "measures").mkdir()
    out = _run("kb", "import", str(RAW / "weihai.txt"), "--to", str(source / "measures"))
    assert out.returncode == 0, out.stderr
    assert "weihai" in out.stdout and "to review" in out.stdout and "高区" in out.stdout
    meta = yaml.safe_load((source / "measures" / "weihai.yaml").read_text(encoding="utf-8"))
    assert meta["document_number"] == "威工信发〔2021〕34号" and meta["review"] is True
    again = _run("kb", "import", str(RAW / "weihai.txt"), "--to", str(source / "measures"))
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1 and "Traceback" not in again.stderr
    from knowledge import kb as kbmod
    built = kbmod.build(source, tmp_path / "kb.pickle")
    assert sorted(built.measures["weihai"].articles) == list(range(1, 26))


def test_cli_refuses_with_one_line(tmp_path):
    (tmp_path / "x.txt").write_text("你好\n", encoding="utf-8")
    out = _run("kb", "import", str(tmp_path / "x.txt"), "--to", str(tmp_path))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "第一条" in out.stderr
    assert not list(tmp_path.glob("*.yaml"))


def test_zones_are_read_from_lists_and_articles():
    assert importer.find_zones("各区市工信局，高区、经区、临港区、综保区经发局，南海新区科技金融局", "威海") == \
        ["高区", "经区", "临港区", "综保区", "南海新区"]
    assert importer.find_zones("各旗县区工信局、稀土高新区经信委负责组织本地区", "包头") == ["稀土高新区"]
    assert importer.find_zones("鼓励开发区内的企业", None) == []


DEV = Path(__file__).parent / "data" / "dev"
DEV_EXPECTED = yaml.safe_load((DEV / "import_expected.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("mid", sorted(DEV_EXPECTED))
def test_dev_measures_import_with_no_hand_editing(mid):
    want = DEV_EXPECTED[mid]
    result = import_document(DEV / f"{mid}.txt", existing={})
    parsed = parse_measure(result.text)
    assert result.id == mid
    assert parsed.title == want["title"]
    assert [a.number for a in parsed.articles] == list(range(1, want["articles"] + 1))
    meta = result.meta
    for key in ("title", "issuer", "document_number", "issued_on", "in_force_from", "in_force_until"):
        assert meta[key] == want[key], key
    assert meta["city"]["name"] == want["city"]
    for place in want["places"]:
        assert place in meta["city"]["districts"], place
    for number, section in (want.get("sections") or {}).items():
        assert parsed.articles[number - 1].section_title == section
    # no heading, page number or header line leaked into an article
    for art in parsed.articles:
        for p in art.paragraphs:
            assert not re.match(r"^第[一二三四五六七八九十]+[章节]", p.text), (art.number, p.text)
            assert "主动公开" not in p.text and "的通知" not in p.text, (art.number, p.text)


def test_a_joint_notice_names_both_issuers_and_the_first_as_authority():
    raw = SAMPLE.replace("测试市工业和信息化局\n2023 年", "测试市工业和信息化局　　　　测试市财政局\n2023 年")
    result = import_text(raw, id="ceshi", existing={})
    assert result.meta["issuer"] == "测试市工业和信息化局、测试市财政局"


def test_in_force_some_days_after_publication():
    raw = SAMPLE.replace("本办法自发布之日起实施，试行两年。", "本办法自印发之日起30日后施行。")
    meta = import_text(raw, id="ceshi", existing={}).meta
    assert meta["in_force_from"] == dt.date(2023, 4, 14) and meta["in_force_until"] is None


def test_the_draft_yaml_loads_back_without_aliases():
    result = import_document(RAW / "weihai.txt", existing={})
    text = importer.render_yaml(result)
    assert "&id" not in text and "*id" not in text
    assert yaml.safe_load(text)["in_force_until"] == dt.date(2026, 8, 31)


def test_a_note_under_the_title_and_a_running_header_are_left_out():
    raw = SAMPLE.replace("测试市服务型制造示范企业认定管理办法\n第一章", "测试市服务型制造示范企业认定管理办法\n（2023年3月15日印发）\n第一章")
    pages = raw.split("- 2 -")
    raw = "测试市工业和信息化局文件\n" + pages[0] + "\n- 2 -\n测试市工业和信息化局文件\n" + pages[1] + "\n测试市工业和信息化局文件\n"
    result = import_text(raw, id="ceshi", existing={})
    assert _articles(result.text) == _articles(import_text(SAMPLE, id="ceshi", existing={}).text)
    assert "工业和信息化局文件" not in result.text and any("repeated" in n for n in result.notes)
