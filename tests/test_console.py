"""The operator console over HTTP: authentication, CSRF, access rights, the pages, the teach loop end to end,
feedback in chat, the CSV upload and the export. Always runs (no browser needed)."""
from __future__ import annotations

import csv
import io
import re

import pytest
import requests
import yaml
from console_harness import PASSWORD, csrf_of, login, server  # noqa: F401 (server is a fixture)

from bot import teach
from helpers import credit_code as _code

GET_PAGES = ["/admin/", "/admin/unanswered", "/admin/unanswered/1", "/admin/subscriptions", "/admin/measures",
             "/admin/export/questions.csv", "/admin/nosuchpage"]
POST_ACTIONS = ["/admin/logout", "/admin/unanswered/link", "/admin/unanswered/out-of-scope",
                "/admin/subscriptions/upload", "/admin/claims/decide", "/admin/nosuchaction"]
# declined by the shipped knowledge base; 威海 第二十一条 (备案 after a change) is what answers it
TAUGHT = "企业搬迁到别的城市了称号还有效吗"


def test_login_form_follows_the_contract(server):
    page = requests.get(server.url + "/admin/login")
    assert page.status_code == 200 and "登录" in page.text
    for field in ('name="username"', 'name="password"', 'type="hidden" name="csrf_token"'):
        assert field in page.text
    assert "<script" not in page.text and "http://" not in page.text.replace(server.url, "")  # nothing from outside


def test_nothing_is_reachable_without_logging_in(server):
    s = requests.Session()
    for path in GET_PAGES:
        r = s.get(server.url + path, allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"].startswith("/admin/login"), path
    for path in POST_ACTIONS:
        r = s.post(server.url + path, data={"csrf_token": "x", "question_id": "1"}, allow_redirects=False)
        assert r.status_code == 403 and "请先登录" in r.text, path
    # a forged or stale cookie is no session
    s.cookies.set("pb_session", "forged", path="/admin")
    assert s.get(server.url + "/admin/", allow_redirects=False).status_code == 303


def test_login_sets_a_strict_httponly_cookie_and_opens_every_page(server):
    s = requests.Session()
    token = csrf_of(s.get(server.url + "/admin/login").text)
    r = s.post(server.url + "/admin/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token},
               allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/admin/"
    cookie = r.headers["Set-Cookie"]
    assert "pb_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    for path in GET_PAGES[:-1]:
        page = s.get(server.url + path, allow_redirects=False)
        assert page.status_code in (200, 404), path  # question 1 may not exist: a Chinese 404 page
        assert page.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in \
            page.headers["Content-Security-Policy"]
    nope = s.get(server.url + "/admin/nosuchpage")
    assert nope.status_code == 404 and "没有这个页面" in nope.text


def test_behind_https_the_cookie_is_secure(server):
    s = requests.Session()
    token = csrf_of(s.get(server.url + "/admin/login").text)
    r = s.post(server.url + "/admin/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token},
               headers={"X-Forwarded-Proto": "https"}, allow_redirects=False)
    assert r.status_code == 303 and "Secure" in r.headers["Set-Cookie"]


def test_login_needs_its_csrf_token_and_the_right_password(server):
    s = requests.Session()
    token = csrf_of(s.get(server.url + "/admin/login").text)
    no_token = s.post(server.url + "/admin/login", data={"username": "alice", "password": PASSWORD},
                      allow_redirects=False)
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    other = requests.post(server.url + "/admin/login",  # a token without its cookie (another site's form)
                          data={"username": "alice", "password": PASSWORD, "csrf_token": token}, allow_redirects=False)
    assert other.status_code == 403
    wrong = s.post(server.url + "/admin/login", data={"username": "alice", "password": "wrong password!",
                                                      "csrf_token": token}, allow_redirects=False)
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text and "pb_session" not in wrong.headers.get("Set-Cookie", "")
    unknown = s.post(server.url + "/admin/login", data={"username": "mallory", "password": PASSWORD,
                                                        "csrf_token": csrf_of(wrong.text)}, allow_redirects=False)
    assert unknown.status_code == 401 and "用户名或密码错误" in unknown.text


def test_login_attempts_are_rate_limited(server):
    s = requests.Session()
    page = s.get(server.url + "/admin/login").text
    for _ in range(5):
        r = s.post(server.url + "/admin/login", data={"username": "alice", "password": "guess guess",
                                                      "csrf_token": csrf_of(page)}, allow_redirects=False)
        assert r.status_code == 401
        page = r.text
    blocked = s.post(server.url + "/admin/login", data={"username": "alice", "password": PASSWORD,
                                                        "csrf_token": csrf_of(page)}, allow_redirects=False)
    assert blocked.status_code == 429 and "分钟后再试" in blocked.text and "pb_session" not in blocked.headers.get("Set-Cookie", "")


def test_logout_ends_the_session_and_needs_its_token(server):
    s = login(server)
    home = s.get(server.url + "/admin/")
    assert home.status_code == 200 and "退出登录" in home.text
    session_cookie = s.cookies.get("pb_session")
    refused = s.post(server.url + "/admin/logout", data={}, allow_redirects=False)
    assert refused.status_code == 403
    assert s.get(server.url + "/admin/", allow_redirects=False).status_code == 200  # still logged in
    out = s.post(server.url + "/admin/logout", data={"csrf_token": csrf_of(home.text)}, allow_redirects=False)
    assert out.status_code == 303
    replay = requests.Session()
    replay.cookies.set("pb_session", session_cookie, path="/admin")
    assert replay.get(server.url + "/admin/", allow_redirects=False).status_code == 303


def test_a_removed_operator_is_logged_out(server):
    s = login(server)
    assert s.get(server.url + "/admin/", allow_redirects=False).status_code == 200
    server.call(lambda: server.store.remove_operator("alice"))
    assert s.get(server.url + "/admin/", allow_redirects=False).status_code == 303


def test_every_state_change_is_refused_without_a_valid_csrf_token(server):
    server.ask(TAUGHT)
    qid = server.query("select id from questions")[0]["id"]
    s = login(server)
    for token in (None, "", "not-the-token"):
        data = {"question_id": str(qid), "measure": "weihai", "article": "21"}
        if token is not None:
            data["csrf_token"] = token
        for path in ("/admin/unanswered/link", "/admin/unanswered/out-of-scope", "/admin/claims/decide"):
            r = s.post(server.url + path, data=data, allow_redirects=False)
            assert r.status_code == 403 and "CSRF" in r.text, (path, token)
        files = {"file": ("a.csv", f"name,credit_code,city,awarded_on\n甲公司,{_code(1)},威海,2024-06-01\n")}
        up = s.post(server.url + "/admin/subscriptions/upload", files=files,
                    data={} if token is None else {"csrf_token": token}, allow_redirects=False)
        assert up.status_code == 403
    assert not teach.operator_file(server.db).exists()
    assert server.query("select resolution from questions")[0]["resolution"] is None
    assert server.query("select count(*) as n from subscriptions")[0]["n"] == 0
    # another operator's token is no good either
    server.add_operator("bob")
    bob = login(server, "bob")
    r = s.post(server.url + "/admin/unanswered/out-of-scope",
               data={"question_id": str(qid), "csrf_token": csrf_of(bob.get(server.url + "/admin/").text)},
               allow_redirects=False)
    assert r.status_code == 403


def test_the_teach_loop_end_to_end(server, kb, monkeypatch, capsys):
    """A declined question, linked in the console, is answered the next time it is asked, without a restart;
    the page says so, and the shipped sources are untouched."""
    shipped = (teach.kbmod.SOURCE_DIR / "measures" / "weihai.questions.yaml").read_bytes()
    before = server.ask(TAUGHT, user="asker")[0].text
    assert "无法回答" in before or "不在" in before
    s = login(server)
    page = s.get(server.url + "/admin/unanswered").text
    assert TAUGHT in page and "未能回答：" in page
    qid = int(re.search(r'href="/admin/unanswered/(\d+)"', page).group(1))
    link_page = s.get(server.url + f"/admin/unanswered/{qid}", params={"q": "更名 备案", "measure": "weihai"}).text
    assert "《威海市服务型制造示范企业认定管理办法》第二十一条" in link_page and "关联到此条" in link_page
    r = s.post(server.url + "/admin/unanswered/link", allow_redirects=False,
               data={"csrf_token": csrf_of(link_page), "question_id": qid, "measure": "weihai", "article": "21"})
    assert r.status_code == 303 and "taught=" in r.headers["Location"]
    server.rebuilt()
    after = server.ask(TAUGHT, user="someone-else")[0].text
    assert "第二十一条" in after and "无法回答" not in after
    page = s.get(server.url + r.headers["Location"]).text
    assert "已生效" in page and "现在回答《威海市服务型制造示范企业认定管理办法》第二十一条" in page
    assert f'<td class="q">{TAUGHT}</td>' not in page  # handled: off the list
    added = yaml.safe_load(teach.operator_file(server.db).read_text(encoding="utf-8"))
    assert added["examples"][0] | {"at": None} == {"q": TAUGHT, "measure": "weihai", "article": 21, "by": "alice",
                                                      "at": None}
    assert (teach.kbmod.SOURCE_DIR / "measures" / "weihai.questions.yaml").read_bytes() == shipped
    # a restarted process loads the same knowledge base (built from knowledge/ plus the operator's file)
    reloaded = teach.load(server.db, server.settings.kb_path, rebuild=False)
    assert reloaded.fingerprint == teach.kbmod.fingerprint(teach.source_dir(server.db, server.settings.kb_path))
    assert kb.fingerprint != reloaded.fingerprint
    from bot.cli import main  # and the CLI builds from the same sources: nothing to rebuild
    monkeypatch.setenv("POLICYBOT_DB", str(server.db))
    monkeypatch.setenv("POLICYBOT_KB", str(server.settings.kb_path))
    assert main(["kb", "build", "--if-stale"]) == 0
    assert "up to date" in capsys.readouterr().err


def test_out_of_scope_becomes_a_near_miss(server):
    server.ask("专家评审打分标准是什么", user="asker")
    s = login(server)
    page = s.get(server.url + "/admin/unanswered").text
    qid = int(re.search(r'href="/admin/unanswered/(\d+)"', page).group(1))
    r = s.post(server.url + "/admin/unanswered/out-of-scope", data={"csrf_token": csrf_of(page), "question_id": qid},
               allow_redirects=False)
    assert r.status_code == 303
    server.rebuilt()
    added = yaml.safe_load(teach.operator_file(server.db).read_text(encoding="utf-8"))
    assert [e["q"] for e in added["near_misses"]] == ["专家评审打分标准是什么"]
    near = yaml.safe_load((teach.source_dir(server.db, server.settings.kb_path) / "near_misses.yaml").read_text(encoding="utf-8"))
    assert "专家评审打分标准是什么" in near
    log = server.query("select * from teach_log")
    assert log[0]["status"] == "done" and log[0]["by"] == "alice"
    assert server.query("select resolution, resolved_by from questions")[0] == {"resolution": "out_of_scope",
                                                                                 "resolved_by": "alice"}


def test_bad_teach_input_gets_a_chinese_answer_not_a_500(server):
    server.ask(TAUGHT)
    qid = server.query("select id from questions")[0]["id"]
    s = login(server)
    token = csrf_of(s.get(server.url + "/admin/").text)
    for data, expected in [({"question_id": qid, "measure": "weihai", "article": "99"}, "没有第99条"),
                           ({"question_id": qid, "measure": "nowhere", "article": "1"}, "请选择办法"),
                           ({"question_id": "abc", "measure": "weihai", "article": "1"}, "没有找到这个问题"),
                           ({"question_id": 10**9, "measure": "weihai", "article": "1"}, "没有找到这个问题")]:
        r = s.post(server.url + "/admin/unanswered/link", data={**data, "csrf_token": token}, allow_redirects=False)
        assert r.status_code == 400 and expected in r.text, data
    assert s.get(server.url + "/admin/unanswered/999999").status_code == 404
    assert s.get(server.url + "/admin/?days=abc").status_code == 200


def test_feedback_in_chat_reaches_the_console(server):
    replies = server.ask("威海申报需要什么条件？")
    data = [b.data for r in replies for b in r.buttons]
    assert "fb:+:1" in data and "fb:-:1" in data
    server.ask("荣成的企业申报要满足哪些条件？")  # turn 2; the button of turn 1 still lands on turn 1
    ask_reason = server.press("fb:-:1")
    assert "哪里不对" in ask_reason[0].text
    assert "收到" in server.ask("没说材料要几份")[0].text
    assert "感谢" in server.ask("+")[0].text  # typed: the latest answer (turn 2)
    rows = server.query("select question, turn, feedback, feedback_reason from questions order by id")
    assert rows == [{"question": "威海申报需要什么条件？", "turn": 1, "feedback": -1, "feedback_reason": "没说材料要几份"},
                    {"question": "荣成的企业申报要满足哪些条件？", "turn": 2, "feedback": 1, "feedback_reason": None}]
    s = login(server)
    page = s.get(server.url + "/admin/unanswered").text
    assert "威海申报需要什么条件？" in page and "没帮助" in page and "没说材料要几份" in page
    assert "荣成的企业申报要满足哪些条件？" not in page
    dash = s.get(server.url + "/admin/").text
    assert "50%" in dash and "<svg" in dash


def test_a_declined_answer_has_no_vote_and_a_question_after_a_thumbs_down_is_answered(server):
    replies = server.ask("今天天气怎么样")
    assert not [b for r in replies for b in r.buttons if b.data.startswith("fb:")]
    assert "-" != server.ask("-")[0].text  # nothing to vote on: read as a question
    server.ask("威海申报需要什么条件？", user="u2")
    server.press("fb:-:1", user="u2")
    answer = server.ask("更名以后多久要备案？", user="u2")[0].text
    assert "工作日" in answer  # not swallowed as the reason
    rows = server.query("select feedback_reason from questions where user_id = 'u2' order by id")
    assert rows[0]["feedback_reason"] is None


def test_the_upload_imports_and_shows_errors_row_by_row(server):
    s = login(server)
    token = csrf_of(s.get(server.url + "/admin/subscriptions").text)
    body = ("企业名称,统一社会信用代码,城市,授牌日期,渠道,用户ID\n"
            f"甲公司,{_code(1)},荣成市,2024-06-01,wecom,zhangsan\n"
            f"乙公司,{_code(2)},包头,2025-01-10,,\n"
            "丙公司,91370000123456789X,威海,2024-06-01,,\n"
            f"丁公司,{_code(4)},济南,2024-06-01,,\n"
            f"戊公司,{_code(5)},威海,2024-13-01,,\n").encode("gb18030")
    r = s.post(server.url + "/admin/subscriptions/upload", data={"csrf_token": token},
               files={"file": ("名单.csv", body, "text/csv")})
    assert r.status_code == 200
    assert "新增 2 家" in r.text and "拒收 3 行" in r.text
    for line, problem in [(4, "统一社会信用代码"), (5, "济南"), (6, "授牌日期")]:
        assert re.search(rf"第{line}行</td><td>[^<]*{problem}", r.text), (line, problem)
    assert "甲公司" in r.text and "无联系方式" in r.text
    again = s.post(server.url + "/admin/subscriptions/upload", data={"csrf_token": token},
                   files={"file": ("名单.csv", body, "text/csv")})
    assert "未变 2 家" in again.text
    broken = s.post(server.url + "/admin/subscriptions/upload", data={"csrf_token": token},
                    files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")})
    assert broken.status_code == 400 and "缺少必填列" in broken.text
    empty = s.post(server.url + "/admin/subscriptions/upload", data={"csrf_token": token},
                   files={"file": ("x.csv", b"", "text/csv")})
    assert empty.status_code == 400 and "请选择" in empty.text
    binary = s.post(server.url + "/admin/subscriptions/upload", data={"csrf_token": token},
                    files={"file": ("x.csv", bytes(range(256)) * 4, "text/csv")})
    assert binary.status_code == 400 and "无法导入" in binary.text


def test_measures_and_the_question_log_export(server):
    server.ask("威海申报需要什么条件？")
    server.ask("=HYPERLINK(\"http://evil\")申报条件")
    s = login(server)
    page = s.get(server.url + "/admin/measures").text
    assert "weihai" in page and "已到期" in page and "baotou" in page and "下载提问记录" in page
    assert re.search(r"<td class=\"num\">2[0-9]</td>", page)  # article counts
    r = s.get(server.url + "/admin/export/questions.csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["id", "asked_at", "channel", "user", "question"]
    assert rows[1][4] == "威海申报需要什么条件？" and rows[1][3] and rows[1][3] != "u1"  # a pseudonym, not the id
    assert rows[2][4].startswith("'=")  # never run as a formula by a spreadsheet


def test_operators_cli(tmp_path, monkeypatch, capsys):
    import io as _io

    from bot.cli import main
    from bot.storage import Store
    monkeypatch.setenv("POLICYBOT_DB", str(tmp_path / "ops.db"))
    monkeypatch.setattr("sys.stdin", _io.StringIO("a long enough password\n"))
    assert main(["operators", "add", "alice", "--password-stdin"]) == 0
    stored = Store(tmp_path / "ops.db").operator("alice")
    assert stored["password_hash"].startswith("$argon2id$") and "a long enough" not in stored["password_hash"]
    monkeypatch.setattr("sys.stdin", _io.StringIO("short\n"))
    assert main(["operators", "add", "bob", "--password-stdin"]) == 2
    assert main(["operators", "add", "bad name!", "--password-stdin"]) == 2
    assert main(["operators", "add", "carol"]) == 2  # the password never comes from the command line
    capsys.readouterr()
    assert main(["operators", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1 and listed[0].startswith("alice\t")
    assert main(["operators", "remove", "alice"]) == 0
    assert main(["operators", "remove", "alice"]) == 2
    assert Store(tmp_path / "ops.db").operators() == []


def test_serve_carries_the_console(tmp_path, kb, kb_file):
    """`policybot serve`'s run(): the console is on its HTTP server, beside /healthz, and its rebuild swaps the
    knowledge base of the dispatcher the channels use."""
    import asyncio
    import shutil
    import socket

    from bot import serve
    from bot.config import Settings
    from bot.console import auth
    from bot.storage import Store

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    shutil.copy(kb_file, tmp_path / "kb.pickle")
    settings = Settings(db=tmp_path / "serve.db", kb=tmp_path / "kb.pickle", port=port)
    Store(settings.db).add_operator("alice", auth.hash_password(PASSWORD))

    async def scenario():
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve.run(settings, kb, stop, ready))
        await asyncio.wait_for(ready.wait(), 30)
        url = f"http://127.0.0.1:{port}"

        def http():
            assert requests.get(url + "/healthz").json()["ok"]
            s = requests.Session()
            page = s.get(url + "/admin/login")
            r = s.post(url + "/admin/login", data={"username": "alice", "password": PASSWORD,
                                                   "csrf_token": csrf_of(page.text)})
            assert r.status_code == 200 and "每日提问" in r.text
            assert requests.get(url + "/admin/", allow_redirects=False).status_code == 303
        await asyncio.to_thread(http)
        stop.set()
        await asyncio.wait_for(task, 30)
    asyncio.run(scenario())


def test_a_failed_rebuild_keeps_the_running_knowledge_base_and_says_so(server, monkeypatch):
    def broken(db, kb_path):
        raise teach.kbmod.KnowledgeBaseError("weihai.questions.yaml: broken")
    monkeypatch.setattr(teach, "build", broken)
    server.ask(TAUGHT)
    running = server.dispatcher.kb
    s = login(server)
    page = s.get(server.url + "/admin/unanswered").text
    qid = int(re.search(r'href="/admin/unanswered/(\d+)"', page).group(1))
    r = s.post(server.url + "/admin/unanswered/link", data={"csrf_token": csrf_of(page), "question_id": qid,
                                                           "measure": "weihai", "article": "21"})
    server.rebuilt()
    assert server.dispatcher.kb is running
    page = s.get(r.url).text
    assert "失败" in page and "仍使用原知识库" in page


def test_operator_additions_for_a_measure_no_longer_shipped_do_not_break_the_build(tmp_path, kb):
    f = teach.operator_file(tmp_path / "p.db")
    teach.add_example(f, kb, "示范企业名单多久公布一次", "weihai", 18, "alice")
    data = yaml.safe_load(f.read_text(encoding="utf-8"))
    data["examples"].append({"q": "别的城市的问题", "measure": "atlantis", "article": 1})
    f.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    source = teach.source_dir(tmp_path / "p.db")
    questions = yaml.safe_load((source / "measures" / "weihai.questions.yaml").read_text(encoding="utf-8"))
    assert "示范企业名单多久公布一次" in questions[18]
    assert not (source / "measures" / "atlantis.questions.yaml").exists()
    assert not list(source.rglob("*.py"))
    with pytest.raises(teach.TeachError):
        teach.add_example(f, kb, "问题", "weihai", 99, "alice")
    assert teach.source_dir(tmp_path / "p.db") == source  # unchanged content: the same folder, not rewritten


def test_operator_additions_go_on_top_of_the_folder_the_base_was_built_from(tmp_path, kb):
    import shutil
    src = tmp_path / "src"
    shutil.copytree(teach.kbmod.SOURCE_DIR, src, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (src / "measures" / "weihai.txt").write_text((src / "measures" / "weihai.txt").read_text(encoding="utf-8")
                                                 + "\n", encoding="utf-8")  # a folder of its own
    db = tmp_path / "data" / "p.db"
    assert teach.source_dir(db, base=src) == src  # nothing taught: the folder itself
    teach.add_example(teach.operator_file(db), kb, "示范企业名单多久公布一次", "weihai", 18, "alice")
    overlay = teach.source_dir(db, base=src)
    assert overlay != src and (overlay / teach.SHIPPED_FROM).read_text(encoding="utf-8") == str(src.resolve())
    assert (overlay / "measures" / "weihai.txt").read_bytes() == (src / "measures" / "weihai.txt").read_bytes()


@pytest.mark.skipif(not all(hasattr(__import__("bot.storage").storage.Store, m)
                            for m in ("add_claim", "pending_claims", "decide_claim")),
                    reason="claims of imported records (issue 8/11) are not in bot/storage.py")
def test_pending_claims_are_approved_or_refused(server):
    s = login(server)
    token = csrf_of(s.get(server.url + "/admin/subscriptions").text)
    body = f"name,credit_code,city,awarded_on\n威海甲机械有限公司,{_code(7)},威海,2024-06-01\n".encode()
    assert "新增 1 家" in s.post(server.url + "/admin/subscriptions/upload", data={"csrf_token": token},
                                 files={"file": ("a.csv", body, "text/csv")}).text
    first = server.call(lambda: server.store.add_claim(_code(7), "telegram", "777", claimed_name="甲机械"))
    second = server.call(lambda: server.store.add_claim(_code(7), "wecom", "mallory", claimed_name="冒名公司"))
    page = s.get(server.url + "/admin/subscriptions").text
    assert "待审核的认领申请" in page and "甲机械" in page and "冒名公司" in page
    assert s.post(server.url + "/admin/claims/decide", data={"claim_id": first, "decision": "approve"},
                  allow_redirects=False).status_code == 403
    r = s.post(server.url + "/admin/claims/decide", data={"csrf_token": token, "claim_id": first,
                                                          "decision": "approve"}, allow_redirects=False)
    assert r.status_code == 303
    r = s.post(server.url + "/admin/claims/decide", data={"csrf_token": token, "claim_id": second,
                                                          "decision": "refuse"}, allow_redirects=False)
    assert r.status_code == 303
    again = s.post(server.url + "/admin/claims/decide", data={"csrf_token": token, "claim_id": second,
                                                              "decision": "approve"}, allow_redirects=False)
    assert again.status_code == 409 and "已处理" in again.text
    sub = server.query("select channel, user_id from subscriptions")[0]
    assert sub == {"channel": "telegram", "user_id": "777"}
    decided = server.query("select id, status, decided_by from claims order by id")
    assert [(d["status"], d["decided_by"]) for d in decided] == [("approved", "alice"), ("refused", "alice")]
    page = s.get(server.url + "/admin/subscriptions").text
    assert "没有待审核的认领申请" in page
