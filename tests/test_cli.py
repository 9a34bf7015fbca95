"""The policybot command as operators and scripts use it (a real process)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def env(tmp_path_factory, kb_file):
    d = tmp_path_factory.mktemp("cli")
    return dict(os.environ, POLICYBOT_DB=str(d / "p.db"), POLICYBOT_KB=str(kb_file))


def run(env, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_ask_json_stdin_one_object_per_line_in_order(env):
    questions = ["威海复核多久一次", "", "今天天气怎么样", "包头更名后多久备案", "😀"]
    r = run(env, "ask", "--json", "-", stdin="\n".join(questions) + "\n")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["question"] for x in lines] == questions
    assert lines[0]["citations"][0]["article"] == 18 and lines[0]["city"] == "weihai"
    assert lines[2]["abstained"] is True and lines[2]["citations"] == []
    assert lines[3]["citations"][0] == {"measure": "baotou", "article": 13,
                                        "title": "《包头市级服务型制造示范企业认定管理办法（试行）》第十三条"}


def test_ask_with_city_option(env):
    r = run(env, "ask", "--city", "荣成市", "--json", "更名后多久备案")
    assert json.loads(r.stdout)["citations"][0]["measure"] == "weihai"


def test_declined_questions_are_logged_for_operators(env):
    run(env, "ask", "企业所得税怎么交")
    from bot.storage import Store
    rows = Store(env["POLICYBOT_DB"]).unanswered()
    row = next(r for r in rows if r["question"] == "企业所得税怎么交")
    assert row["reason"] and row["trace"]  # what decided the decline, for the operators


def test_an_old_question_log_gets_the_trace_column(tmp_path):
    import sqlite3
    from bot.storage import Store
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table questions (id integer primary key, asked_at text, channel text, user_id text, "
                     "question text, city text, abstained integer, reason text, citation text)")
        conn.execute("insert into questions (asked_at, channel, question, abstained, reason) values "
                     "('2026-11-20T10:00:00+08:00', 'cli', '奖金多少', 1, 'out_of_scope')")
    store = Store(path)
    assert "trace" in store.db["questions"].columns_dict
    store.log_question("cli", None, "奖金多少", None, True, "low_probability:coverage", None, trace="weihai:3 p=0.10")
    row = store.unanswered()[0]
    assert row["times"] == 2 and row["reason"] == "low_probability:coverage" and row["trace"] == "weihai:3 p=0.10"


@pytest.mark.parametrize("args", [["ask", "--city", "济南", "问题"], ["ask", "--as-of", "2026-13-01", "问题"],
                                  ["kb", "show", "weihai", "99"], ["kb", "show", "nowhere", "1"], ["nosuch"], []])
def test_bad_arguments_exit_2_with_one_line(env, args):
    r = run(env, *args)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_kb_list_and_show(env):
    r = run(env, "kb", "list")
    assert r.returncode == 0 and "baotou" in r.stdout and "weihai" in r.stdout and "expired" in r.stdout
    r = run(env, "kb", "show", "weihai", "十八")
    assert "每两年组织一次复核" in r.stdout and "第十八条" in r.stdout
    assert "每两年组织一次复核" in run(env, "kb", "show", "威海", "18").stdout


def test_chat_reads_piped_stdin_and_exits(env):
    r = run(env, "chat", stdin="威海申报需要什么条件？\n/quit\n")
    assert r.returncode == 0 and "第十二条" in r.stdout


CHECK_FACTS = """registered_in: 文登区
is_manufacturer: true
independent_legal_person: true
established_on: 2018-04-02
major_accident_2y: false
illegal_or_under_investigation: false
has_service_unit: true
service_projects_3y: 2
service_revenue_share: 9
revenue_growth: 12.5
"""


def test_check_json_follows_the_contract(env, tmp_path):
    answers = tmp_path / "a.yaml"
    answers.write_text(CHECK_FACTS, encoding="utf-8")
    r = run(env, "check", "--city", "威海市", "--answers", str(answers), "--as-of", "2026-11-22", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["city"] == "weihai" and out["as_of"] == "2026-11-22" and out["verdict"] == "eligible"
    assert out["failed"] == [] and out["missing"] == [] and out["measure_status"] == "expired"
    assert any("已过期" in n for n in out["notes"])


def test_check_text_is_the_verdict_card(env, tmp_path):
    answers = tmp_path / "a.yaml"
    answers.write_text(CHECK_FACTS.replace("service_projects_3y: 2", "service_projects_3y: 1"), encoding="utf-8")
    r = run(env, "check", "--city", "weihai", "--answers", str(answers), "--as-of", "2025-01-01")
    assert r.returncode == 0, r.stderr
    assert "不符合申报条件" in r.stdout and "第十二条" in r.stdout and "不少于2个" in r.stdout
    j = json.loads(run(env, "check", "--city", "weihai", "--answers", str(answers), "--as-of", "2025-01-01",
                       "--json").stdout)
    assert j["verdict"] == "ineligible" and j["measure_status"] == "in_force"
    assert [f["article"] for f in j["failed"]] == [{"measure": "weihai", "article": 12}]


@pytest.mark.parametrize("content,args", [
    ("established_on: 2019-13-01\n", ["--city", "weihai"]),
    ("- a list\n", ["--city", "weihai"]),
    ("key: [unclosed\n", ["--city", "baotou"]),
    ("service_projects_3y: many\n", ["--city", "weihai"]),
    ("is_manufacturer: true\n", ["--city", "青岛"]),
    ("is_manufacturer: true\n", ["--city", "weihai", "--as-of", "2026-02-30"]),
])
def test_check_bad_input_exits_2_with_one_line(env, tmp_path, content, args):
    answers = tmp_path / "bad.yaml"
    answers.write_text(content, encoding="utf-8")
    r = run(env, "check", "--answers", str(answers), *args)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_check_missing_file_exits_2(env, tmp_path):
    r = run(env, "check", "--city", "baotou", "--answers", str(tmp_path / "none.yaml"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_doctor_says_what_is_missing_in_plain_words(env):
    r = run(dict(env, WECOM_CORP_ID="ww123", TELEGRAM_BOT_TOKEN=""), "doctor")
    assert r.returncode == 1
    assert "WeCom needs WECOM_CORP_ID, WECOM_AGENT_ID and WECOM_SECRET together" in r.stdout
    assert "off   Telegram" in r.stdout
    ok = run(dict(env, WECOM_CORP_ID="", TELEGRAM_BOT_TOKEN="1:x"), "doctor")
    assert ok.returncode == 0 and "Telegram: on (long polling)" in ok.stdout


def test_bad_settings_exit_2_with_one_line(env):
    for bad in ({"POLICYBOT_PORT": "eighty"}, {"POLICYBOT_SEND_HOURS": "18-9"}, {"POLICYBOT_REMINDER_LEADS": "x"}):
        r = run(dict(env, **bad), "serve")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_reminders_cli(env, tmp_path):
    from stdnum.cn import uscc
    body = "91371000000000777"
    f = tmp_path / "list.csv"
    f.write_text(f"name,credit_code,city,awarded_on\n甲公司,{body + uscc.calc_check_digit(body)},威海,2024-12-10\n"
                 "乙公司,123,威海,2024-12-10\n", encoding="utf-8")
    r = run(env, "reminders", "import", str(f))
    assert r.returncode == 0 and "1 new" in r.stdout and "1 refused" in r.stdout and ":3:" in r.stderr
    r = run(env, "reminders", "due", "--days", "30", "--json")
    rows = json.loads(r.stdout)
    assert {row["kind"] for row in rows} >= {"review", "expiry"} and all(row["channel"] is None for row in rows)
    assert run(env, "reminders", "import", str(tmp_path / "none.csv")).returncode == 2
    (tmp_path / "bad.csv").write_text("foo,bar\n1,2\n", encoding="utf-8")
    bad = run(env, "reminders", "import", str(tmp_path / "bad.csv"))
    assert bad.returncode == 2 and "missing column" in bad.stderr


@pytest.mark.parametrize("args", [["deadlines", "filing", "--changed-on", "9999-12-31"],
                                  ["deadlines", "review", "--city", "weihai", "--awarded-on", "2024-06-01",
                                   "--as-of", "9999-12-31"],
                                  ["deadlines", "review", "--city", "weihai", "--awarded-on", "0001-01-01"],
                                  ["deadlines", "filing", "--changed-on", "2100-12-31"],
                                  ["check", "--city", "weihai", "--answers", "x.yaml", "--as-of", "9999-12-31"],
                                  ["ask", "--as-of", "9999-12-31", "问题"],
                                  ["reminders", "due", "--days", "999999999"]])
def test_every_date_out_of_range_is_one_line_and_exit_2(env, args):
    r = run(env, *args)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def test_check_answers_as_typed_with_facts_and_unreadable(env, tmp_path):
    answers = tmp_path / "typed.yaml"
    answers.write_text("registered_in: 荣成市\nservice_revenue_share: 主营3000万，服务收入400万\n"
                       "established_on: 2022.3.15\nservice_projects_3y: 三四个\nrevenue_growth: 涨了不少\n",
                       encoding="utf-8")
    j = json.loads(run(env, "check", "--city", "weihai", "--answers", str(answers), "--as-of", "2026-12-01",
                       "--json").stdout)
    assert j["facts"]["service_revenue_share"] == pytest.approx(13.33)
    assert j["facts"]["established_on"] == "2022-03-15" and j["facts"]["service_projects_3y"] == 3
    assert [u["fact"] for u in j["unreadable"]] == ["revenue_growth"] and "revenue_growth" not in j["facts"]
    assert j["verdict"] != "eligible"
    text = run(env, "check", "--city", "weihai", "--answers", str(answers), "--as-of", "2026-12-01")
    assert text.returncode == 2 and "revenue_growth" in text.stderr and text.stdout == ""


def test_reminders_import_reads_dates_as_excel_writes_them_and_list_has_a_header(env, tmp_path):
    from stdnum.cn import uscc
    body = "91371000000000888"
    f = tmp_path / "excel.csv"
    f.write_text(f"name,credit_code,city,awarded_on\n丙公司,{body + uscc.calc_check_digit(body)},威海,2024/6/1\n",
                 encoding="utf-8")
    r = run(env, "reminders", "import", str(f))
    assert r.returncode == 0 and "1 new" in r.stdout, r.stderr
    listed = run(env, "reminders", "list")
    assert listed.stdout.splitlines()[0].startswith("credit_code\tname\tcity\tawarded_on")
    assert "丙公司\tweihai\t2024-06-01" in listed.stdout
