"""`policybot rules draft`: the self-check rules drafted from a measure's conditions article, all marked for
review, and not used by the chat until the flags are removed."""
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from knowledge import importer
from knowledge.parser import parse_measure
from rules import draft as drafting
from rules import engine

ROOT = Path(__file__).resolve().parent.parent
DEV = Path(__file__).parent / "data" / "dev"


class _M:
    """A measure as rules.draft sees it, from a text (no knowledge base needed)."""
    def __init__(self, mid: str, text: str):
        parsed = parse_measure(text)
        self.id, self.title, self.meta = mid, parsed.title, {}
        self.articles = {a.number: a for a in parsed.articles}

    def cite(self, n: int) -> str:
        return f"《{self.title}》第{n}条"


def _dev(mid: str) -> _M:
    return _M(mid, importer.import_document(DEV / f"{mid}.txt", existing={}).text)


def _tests(d) -> dict:
    return {c["id"]: c.get("test") for c in d.data["conditions"]}


def test_weihai_draft_reads_what_the_reviewed_rules_say(kb):
    d = drafting.draft(kb.measures["weihai"])
    assert d.article == 12 and d.data["review"] is True
    assert all(c["review"] is True and c["article"] == 12 for c in d.data["conditions"])
    tests = _tests(d)
    assert tests["registered_in"] == {"fact": "registered_in", "in_city": True}
    assert tests["established_on"] == {"fact": "established_on", "years_before": 2}  # 两年(含)以上
    assert tests["service_projects_3y"] == {"fact": "service_projects_3y", "at_least": 2}  # 不少于2个
    group = next(c for c in d.data["conditions"] if "any_of" in (c.get("test") or {}))
    assert group["item"] == "3(1)-(3)"
    # 超过15%（含）: （含） includes the number; 10%（含）以上 too
    assert group["test"]["any_of"] == [{"fact": "service_revenue_share", "at_least": 15},
                                       {"fact": "revenue_growth", "at_least": 10},
                                       {"fact": "profit_growth", "at_least": 10}]
    reviewed = engine.load("weihai")  # the hand-made rules test the same facts
    reviewed_facts = {k for c in reviewed.conditions for k in engine._test_facts(c.test)}
    drafted_facts = {k for t in tests.values() for k in engine._test_facts(t)}
    assert drafted_facts <= reviewed_facts
    assert any(c.get("judged_by") == "review" and "组织机构健全" in c["label"] for c in d.data["conditions"])


def test_numbers_are_read_right_in_the_dev_measures():
    luoyang = drafting.draft(_dev("luoyang"))
    assert _tests(luoyang)["service_revenue_share"] == {"fact": "service_revenue_share", "above": 10}  # 超过10%
    assert _tests(luoyang)["established_on"] == {"fact": "established_on", "years_before": 3}  # 3年（含）以上
    # 还应满足以下条件之一 (article 7): one group citing its items, left to review where no fact fits
    group = [c for c in luoyang.data["conditions"] if c["article"] == 7]
    assert len(group) == 1 and group[0]["item"] == "一至四" and group[0]["label"].startswith("满足其一")
    # 近三年未发生…事故 is not the two-year fact: not mapped onto it
    assert "major_accident_2y" not in _tests(luoyang)
    foshan = _dev("foshan")
    assert drafting.read_definitions([(n, a.text) for n, a in foshan.articles.items()]) == \
        {"以上": True, "不低于": True, "不少于": True, "超过": False}
    assert _tests(drafting.draft(foshan))["service_revenue_share"] == {"fact": "service_revenue_share", "at_least": 15}


def test_a_measure_may_define_its_words_otherwise():
    text = ("测试办法\n第一条 申报企业应具备以下条件：\n（一）服务收入占营业收入比重超过20%。\n"
            "第二条 本办法所称“超过”含本数。\n")
    assert _tests(drafting.draft(_M("t", text)))["service_revenue_share"] == \
        {"fact": "service_revenue_share", "at_least": 20}
    plain = text.replace("第二条 本办法所称“超过”含本数。\n", "第二条 本办法自发布之日起施行。\n")
    assert _tests(drafting.draft(_M("t", plain)))["service_revenue_share"] == {"fact": "service_revenue_share", "above": 20}


def test_no_conditions_article_is_refused():
    with pytest.raises(ValueError, match="no article lists the conditions"):
        drafting.draft(_M("t", "测试办法\n第一条 本办法自发布之日起施行。\n"))


def test_a_draft_is_not_used_until_its_review_flags_are_removed(tmp_path, kb):
    rules_dir = tmp_path / "rules"
    shutil.copytree(engine.RULES_DIR, rules_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = rules_dir / "weihai.yaml"
    path.write_text(drafting.render(drafting.draft(kb.measures["weihai"])), encoding="utf-8")
    assert "weihai" not in engine.available(rules_dir)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["review"] = False
    for c in data["conditions"]:
        c.pop("review")
    reviewed = tmp_path / "reviewed"
    shutil.copytree(rules_dir, reviewed)
    (reviewed / "weihai.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert "weihai" in engine.available(reviewed)
    rs = engine.load("weihai", reviewed)  # a valid ruleset: every fact it tests is asked
    facts = {"registered_in": "荣成市", "is_manufacturer": True, "independent_legal_person": True,
             "established_on": "2020-01-01", "major_accident_2y": False, "illegal_or_under_investigation": False,
             "has_service_unit": True, "service_projects_3y": 2, "service_revenue_share": 15,
             "revenue_growth": 0, "profit_growth": 0}
    facts, _ = engine.read_facts(rs, facts, dt.date(2026, 11, 22))
    verdict = engine.evaluate(rs, facts, dt.date(2026, 11, 22), lambda t: "weihai")
    assert verdict.verdict in ("eligible", "incomplete") and not verdict.failed


def test_above_excludes_the_number():
    rs = engine.load("weihai")
    fact = rs.facts["service_revenue_share"]
    test = {"fact": "service_revenue_share", "above": 10}
    assert engine._leaf(rs, test, {"service_revenue_share": 10}, dt.date(2026, 1, 1), lambda t: None, False)[0] == engine.FAIL
    assert engine._leaf(rs, test, {"service_revenue_share": 10.5}, dt.date(2026, 1, 1), lambda t: None, False)[0] == engine.PASS
    assert fact.key == "service_revenue_share"


def test_cli_writes_the_draft_and_refuses_to_overwrite(tmp_path, kb_file):
    env = dict(os.environ, POLICYBOT_DB=str(tmp_path / "p.db"), POLICYBOT_KB=str(kb_file))
    run = lambda *a: subprocess.run([sys.executable, "-m", "bot.cli", *a], env=env, capture_output=True, text=True,  # noqa: E731
                                    cwd=ROOT, timeout=120)
    out = run("rules", "draft", "baotou", "--to", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "review" in out.stdout and "working_days" in out.stdout
    data = yaml.safe_load((tmp_path / "baotou.yaml").read_text(encoding="utf-8"))
    assert data["review"] is True and all(c["review"] for c in data["conditions"])
    assert {c["item"] for c in data["conditions"]} >= {"一", "二", "三"}
    again = run("rules", "draft", "baotou", "--to", str(tmp_path))
    assert again.returncode == 2 and "exists" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    unknown = run("rules", "draft", "nowhere", "--to", str(tmp_path))
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
