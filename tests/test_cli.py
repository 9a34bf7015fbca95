"""The policybot command as operators and scripts use it (a real process)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    e = dict(os.environ, POLICYBOT_DB=str(d / "p.db"))
    subprocess.run([sys.executable, "-m", "bot.cli", "kb", "build"], env=e, check=True, capture_output=True, cwd=ROOT)
    return e


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
    assert any(r["question"] == "企业所得税怎么交" for r in rows)


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
