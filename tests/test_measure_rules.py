"""Deadlines and re-reviews per measure, read from its own articles; a base built from another folder."""
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from knowledge import importer
from knowledge import kb as kbmod
from rules.deadlines import DeadlineError, filing_deadline, filing_text, load_rules, measure_rules, review_schedule
from rules.extract import measure_articles, read_deadlines

ROOT = Path(__file__).resolve().parent.parent
DEV = Path(__file__).parent / "data" / "dev"
EXPECTED = yaml.safe_load((DEV / "deadlines_expected.yaml").read_text(encoding="utf-8"))
D = dt.date.fromisoformat


@pytest.fixture(scope="module")
def dev_source(tmp_path_factory):
    """knowledge/ plus issue 6's dev measures, imported raw with no hand editing."""
    source = tmp_path_factory.mktemp("src") / "knowledge"
    shutil.copytree(kbmod.SOURCE_DIR, source, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    for path in sorted(DEV.glob("*.txt")):
        result = importer.import_document(path, existing=importer.existing_measures(source / "measures"))
        importer.write_measure(result, source / "measures")
    return source


@pytest.fixture(scope="module")
def dev_kb_file(dev_source):
    out = dev_source.parent / "kb.pickle"
    kbmod.build(dev_source, out)
    return out


@pytest.fixture(scope="module")
def dev_kb(dev_kb_file):
    return kbmod.read(dev_kb_file)


def _check(rules: dict, want: dict):
    filing = rules["filing"]
    assert {k: filing[k] for k in ("days", "unit", "article")} == want["filing"]
    review = rules["review"]
    assert review["interval_years"] == want["review"]["interval_years"]
    if "article" in want["review"]:
        assert review["article"] == want["review"]["article"]
    if "consequence_article" in want["review"]:
        assert review["consequence"]["article"] == want["review"]["consequence_article"]
    if "says_article" in want["review"]:
        assert [s["article"] for s in review["says"]] == [want["review"]["says_article"]]
    if want["title_validity"] is None:
        assert not rules["title_validity"]
    else:
        assert {k: rules["title_validity"][k] for k in ("years", "article")} == want["title_validity"]


@pytest.mark.parametrize("mid", sorted(EXPECTED))
def test_rules_are_read_from_the_measures_own_articles(dev_kb, mid):
    m = dev_kb.measures[mid]
    _check(read_deadlines(measure_articles(m)), EXPECTED[mid])
    _check(measure_rules(m), EXPECTED[mid])  # the rules in use: rules/deadlines.yaml where it has them
    assert measure_rules(m)["source"] == ("rules" if mid in load_rules()["measures"] else "articles")


def test_filing_per_measure(dev_kb):
    m = dev_kb.measures
    luoyang = filing_deadline(D("2026-03-02"), measures=[m["luoyang"]])
    assert (luoyang.deadline, luoyang.working_days, luoyang.articles) == \
        (D("2026-03-23"), 15, [{"measure": "luoyang", "article": 25}])
    assert filing_deadline(D("2026-03-02"), measures=[m["foshan"]]).deadline == D("2026-03-16")
    mianyang = filing_deadline(D("2026-03-02"), measures=[m["mianyang"]])
    assert (mianyang.deadline, mianyang.working_days, mianyang.unit) == (D("2026-04-01"), None, "days")
    # 30 calendar days ending on 清明 (4/4-4/6 2026): the next working day (民法典第二百零三条)
    assert filing_deadline(D("2026-03-07"), measures=[m["mianyang"]]).deadline == D("2026-04-07")
    assert "30日" in filing_text(mianyang, m) and "自然日" in filing_text(mianyang, m)
    both = filing_deadline(D("2026-03-02"), measures=[m["baotou"], m["weihai"]])
    assert both.working_days == 30 and len(both.articles) == 2
    with pytest.raises(DeadlineError, match="指定城市"):
        filing_deadline(D("2026-03-02"), measures=list(m.values()))


def test_review_per_measure(dev_kb):
    m = dev_kb.measures
    luoyang = review_schedule(m["luoyang"], D("2024-06-01"), D("2026-11-22"))
    assert (luoyang.interval_years, luoyang.next_review) == (3, D("2027-06-01"))
    mianyang = review_schedule(m["mianyang"], D("2024-06-01"), D("2026-11-22"))
    assert mianyang.next_review is None and mianyang.title_valid_until == D("2027-05-31")
    assert any("有效期内不再组织复核" in n for n in mianyang.notes)
    assert any("称号有效期三年" in n for n in mianyang.notes)
    foshan = review_schedule(m["foshan"], D("2024-06-01"), D("2026-11-22"))
    assert (foshan.interval_years, foshan.next_review, foshan.title_valid_until) == (2, D("2028-06-01"), D("2028-05-31"))


def _run(env, *args):
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_kb_build_source_out_then_policybot_kb_keeps_the_measures(dev_source, tmp_path):
    out = tmp_path / "kb.pickle"
    env = dict(os.environ, POLICYBOT_DB=str(tmp_path / "p.db"), POLICYBOT_KB=str(out))
    built = _run(env, "kb", "build", "--source", str(dev_source), "--out", str(out))
    assert built.returncode == 0, built.stderr
    assert kbmod.read(out).fingerprint == kbmod.fingerprint(dev_source)  # not rebuilt from knowledge/
    again = _run(env, "kb", "build", "--if-stale")
    assert "up to date" in again.stderr
    filing = _run(env, "deadlines", "filing", "--changed-on", "2026-03-02", "--city", "涧西区", "--json")
    assert filing.returncode == 0, filing.stderr
    data = json.loads(filing.stdout)
    assert (data["deadline"], data["working_days"], data["articles"]) == ("2026-03-23", 15, [{"measure": "luoyang", "article": 25}])
    review = _run(env, "deadlines", "review", "--city", "绵阳", "--awarded-on", "2024-06-01", "--as-of", "2026-11-22", "--json")
    assert review.returncode == 0 and json.loads(review.stdout)["next_review"] is None
    mixed = _run(env, "deadlines", "filing", "--changed-on", "2026-03-02")
    assert mixed.returncode == 2 and "指定城市" in mixed.stderr and len(mixed.stderr.strip().splitlines()) == 1
    # a source changed after the build: the base is stale against the folder it was built from
    (dev_source / "measures" / "luoyang.yaml").write_text(
        (dev_source / "measures" / "luoyang.yaml").read_text(encoding="utf-8") + "\n# touched\n", encoding="utf-8")
    assert kbmod.is_stale(out)
    assert "luoyang" in kbmod.load(out).measures  # rebuilt from the same folder, not from knowledge/


@pytest.mark.parametrize("text, years", [
    ("对示范企业实行动态管理，每年开展一次运行评价，示范企业应于每年3月底前报送年度报告。", 1),
    ("示范企业实行每三年复核制度。", 3),
    ("市工业和信息化局每两年组织一次抽查复核，抽查比例不低于30%。", 2),
    ("认定工作每年开展一次。", None),  # the yearly call for applications is no re-review
    ("示范主体应于每年4月30日前报送年度报告。", None),
])
def test_review_cycles_as_measures_word_them(text, years):
    from rules.extract import read_review
    assert read_review([(9, text)])["interval_years"] == years


@pytest.mark.parametrize("text, days, unit", [
    ("示范企业发生更名、重组等重大调整的，应在办理相关手续后20个工作日内报市工业和信息化局备案。", 20, "working_days"),
    ("示范单位发生名称变更的，应当自变更之日起三十日内向市经信局报告。", 30, "days"),
    ("公示期为7个工作日。", None, None),  # not a filing period
])
def test_filing_periods_as_measures_word_them(text, days, unit):
    from rules.extract import read_filing
    rule = read_filing([(9, text)])
    assert (rule["days"], rule["unit"]) == (days, unit) if days else rule is None


def test_a_limited_title_is_reminded_before_it_ends(dev_kb):
    from bot.reminders import compose, plan
    m = dev_kb.measures["mianyang"]  # no review; the title is valid 3 years (第十八条)
    sub = {"awarded_on": "2024-06-01", "changed_on": None, "source": "chat"}
    steps = plan(sub, m, D("2026-11-22"), (30, 0))
    assert {(s["kind"], s["due_on"]) for s in steps} == {("title", "2027-05-31")}
    text, late = compose({"kind": "title", "due_on": "2027-05-31", "send_on": "2027-05-01", "name": "某公司"}, m,
                         D("2027-05-01"))
    assert "称号到期提醒" in text and "有效期3年" in text and "第十八条" in text and not late
    text, _ = compose({"kind": "filing", "due_on": "2026-04-01", "send_on": "2026-03-30", "name": "某公司",
                       "change_kind": "rename"}, m, D("2026-03-30"))
    assert "须在30日内备案" in text and "工作日" not in text
    luoyang, _ = compose({"kind": "filing", "due_on": "2026-03-23", "send_on": "2026-03-20", "name": "某公司"},
                         dev_kb.measures["luoyang"], D("2026-03-20"))
    assert "须在15个工作日内备案" in luoyang and "第二十五条" in luoyang


def test_the_chat_counts_a_reported_change_under_the_citys_own_period(dev_kb):
    from handlers.context import Context
    from handlers.core import handle
    from handlers.message import Incoming
    ctx = Context(dev_kb, D("2026-03-05"))
    said = "我们更名了，2026年3月2日办完手续"
    one = handle(Incoming("console", "u1", text=said), {"city": "luoyang"}, ctx)
    text = one.replies[0].text
    assert "2026-03-23" in text and "第二十五条" in text and "30个工作日" not in text
    calendar = handle(Incoming("console", "u1", text=said), {"city": "mianyang"}, ctx).replies[0].text
    assert "2026-04-01" in calendar and "自然日" in calendar
    every = handle(Incoming("console", "u2", text=said), {}, ctx).replies[0].text
    for city, deadline in (("洛阳", "2026-03-23"), ("佛山", "2026-03-16"), ("绵阳", "2026-04-01"), ("包头", "2026-04-14")):
        assert city in every and deadline in every, (city, every)
