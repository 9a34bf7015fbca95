"""The bureau's operator console, under /admin/ of `policybot serve`: server-rendered Chinese pages, no script,
nothing loaded from elsewhere.

- /admin/login, /admin/logout: accounts of `policybot operators add`; see auth.py for sessions, CSRF, rate limit.
- /admin/: questions per day (answered, declined), top articles and topics, satisfaction (👍/👎), reminders.
- /admin/unanswered: declined and 👎 questions; link one to an article (an example question) or mark it out of
  scope (a near-miss): bot/teach.py keeps it, rebuild.py rebuilds the knowledge base in the background.
- /admin/subscriptions: the awarded enterprises, their next reminders, the delivery log; a CSV upload checked as
  `reminders import` (bot/importer.py); pending claims approved or refused.
- /admin/measures: each measure, its validity, its articles; /admin/export/questions.csv the question log.

Every route goes through `Console._guard`: no page and no action without a live session, every POST with its CSRF
token, security headers on every answer, and a Chinese error page instead of a traceback.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import math
import re
from pathlib import Path
from urllib.parse import quote

import jinja2
from aiohttp import web

from bot import teach
from bot.clock import now_shanghai, today_shanghai
from bot.console import auth, charts
from bot.console.rebuild import Rebuilder

log = logging.getLogger(__name__)
PREFIX = "/admin"
UPLOAD_LIMIT = 2 * 1024 * 1024  # bytes; a list of awarded enterprises is a few KB
REASONS = {"out_of_scope": "超出办法范围", "uncovered_city": "未收录的城市", "no_article": "所问条文不存在",
           "empty": "空问题", "too_long": "问题太长", "not_chinese": "非中文", "low_probability": "没有把握的条文",
           "no_candidate": "没有相关条文", "other_programme": "其他政策或项目", "other_city_only": "仅其他城市有规定",
           "document_number": "问的是引用文件", "document_content": "问的是引用文件"}


def reason_label(reason: str | None) -> str:
    """A decline reason in Chinese; a detailed one (low_probability:ex_article) by its kind, detail in brackets."""
    reason = reason or ""
    kind, _, detail = reason.partition(":")
    label = REASONS.get(reason) or REASONS.get(kind)
    if not label:
        return reason
    return f"{label}（{detail}）" if detail and reason not in REASONS else label
KINDS = {"review": "复核", "filing": "备案截止", "expiry": "办法到期"}
STATUS = {"in_force": "有效", "expired": "已到期", "unknown": "有效期未知"}
CHANNELS = {"telegram": "Telegram", "wecom": "企业微信", "wechat_kf": "微信客服", "console": "终端"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


SESSION = web.RequestKey("console_session", object) if hasattr(web, "RequestKey") else "console_session"
FORM = web.RequestKey("console_form", object) if hasattr(web, "RequestKey") else "console_form"


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Console:
    def __init__(self, settings, store, get_kb, set_kb, today=today_shanghai):
        self.settings = settings
        self.store = store
        self.get_kb = get_kb
        self.today = today
        self.sessions = auth.Sessions(store)
        self.limiter = auth.LoginLimiter()
        self.rebuilder = Rebuilder(settings, store, set_kb, today)
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                                      autoescape=True, undefined=jinja2.StrictUndefined)
        self.env.filters["reason"] = reason_label
        self.env.filters["channel"] = lambda c: CHANNELS.get(c or "", c or "")
        self.env.filters["kind"] = lambda k: KINDS.get(k or "", k or "")
        self.env.filters["status"] = lambda s: STATUS.get(s or "", s or "")
        self.env.filters["t"] = lambda iso: (iso or "")[:16].replace("T", " ")

    # ---- routing and the guard --------------------------------------------------------------------------
    def routes(self) -> list:
        g = self._guard
        return [
            web.get(PREFIX, _to_dashboard),
            web.get(PREFIX + "/login", g(self.login_form, login=False)),
            web.post(PREFIX + "/login", g(self.login, login=False)),
            web.post(PREFIX + "/logout", g(self.logout)),
            web.get(PREFIX + "/", g(self.dashboard)),
            web.get(PREFIX + "/unanswered", g(self.unanswered)),
            web.get(PREFIX + "/unanswered/{qid:\\d+}", g(self.link_form)),
            web.post(PREFIX + "/unanswered/link", g(self.link)),
            web.post(PREFIX + "/unanswered/out-of-scope", g(self.out_of_scope)),
            web.get(PREFIX + "/subscriptions", g(self.subscriptions)),
            web.post(PREFIX + "/subscriptions/upload", g(self.upload, multipart=True)),
            web.post(PREFIX + "/claims/decide", g(self.decide_claim)),
            web.get(PREFIX + "/measures", g(self.measures)),
            web.get(PREFIX + "/export/questions.csv", g(self.export_questions)),
            web.route("*", PREFIX + "/{tail:.*}", g(self.not_found)),
        ]

    def _guard(self, handler, login: bool = True, multipart: bool = False):
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                session = self.sessions.get(request.cookies.get(auth.SESSION_COOKIE))
                request[SESSION] = session
                if login and not session:
                    if request.method in ("GET", "HEAD"):
                        target = request.path_qs if request.path.startswith(PREFIX + "/") else PREFIX + "/"
                        return self._headers(_redirect(f"{PREFIX}/login?next={quote(target, safe='')}"))
                    raise Refused(403, "请先登录。")
                if request.method not in ("GET", "HEAD") and not multipart:
                    form = await request.post()
                    request[FORM] = form
                    expected = session["csrf"] if session else request.cookies.get(auth.LOGIN_CSRF_COOKIE)
                    if not auth.same(form.get("csrf_token"), expected):
                        raise Refused(403, "表单已过期或来源不明（缺少有效的 CSRF 令牌），请刷新页面后重试。")
                response = await handler(request)
            except Refused as exc:
                response = self._page(request, "error.html", {"message": exc.message}, status=exc.status)
            except web.HTTPRequestEntityTooLarge:
                response = self._page(request, "error.html", {"message": "提交的内容太大。"}, status=413)
            except web.HTTPException:
                raise
            except Exception:  # noqa: BLE001 - an operator sees a Chinese page, the log gets the traceback
                log.exception("console: %s %s failed", request.method, request.path)
                response = self._page(request, "error.html", {"message": "服务器内部错误，已记录日志。请稍后再试。"},
                                      status=500)
            return self._headers(response)
        return guarded

    @staticmethod
    def _headers(response: web.StreamResponse) -> web.StreamResponse:
        for k, v in HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    def _page(self, request: web.Request, template: str, context: dict, status: int = 200) -> web.Response:
        session = request.get(SESSION)
        html = self.env.get_template(template).render(
            operator=session["operator"] if session else None, csrf=session["csrf"] if session else "",
            path=request.path, **context)
        return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)

    def _secure(self, request: web.Request) -> bool:
        return bool(self.settings.console_secure_cookie or request.secure
                    or request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower() == "https")

    # ---- login and logout ------------------------------------------------------------------------------------
    async def login_form(self, request: web.Request, message: str = "", status: int = 200,
                         username: str = "") -> web.Response:
        if request.get(SESSION) and not message:
            return _redirect(PREFIX + "/")
        token = auth.new_token()
        nxt = request.query.get("next") or (request.get(FORM) or {}).get("next") or ""
        response = self._page(request, "login.html", {"login_csrf": token, "message": message, "next": _safe_next(nxt),
                                                      "username": username}, status=status)
        response.set_cookie(auth.LOGIN_CSRF_COOKIE, token, path=PREFIX + "/login", httponly=True, samesite="Strict",
                            secure=self._secure(request), max_age=3600)
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = request[FORM]
        name = str(form.get("username") or "").strip()[:80]
        password = str(form.get("password") or "")[:1024]
        keys = (f"ip:{request.remote}", f"name:{name.lower()}")
        wait = self.limiter.blocked_for(*keys)
        if wait > 0:
            return await self.login_form(request, f"登录失败次数过多，请 {math.ceil(wait / 60)} 分钟后再试。", 429, name)
        op = self.store.operator(name) if name else None
        if not auth.verify_password(op["password_hash"] if op else None, password):
            self.limiter.failed(*keys)
            log.warning("console: failed login for %r from %s", name, request.remote)
            return await self.login_form(request, "用户名或密码错误。", 401, name)
        self.limiter.succeeded(keys[1])
        if auth.needs_rehash(op["password_hash"]):
            self.store.add_operator(name, auth.hash_password(password))
        token, _ = self.sessions.start(name)
        response = _redirect(_safe_next(str(form.get("next") or "")) or PREFIX + "/")
        response.set_cookie(auth.SESSION_COOKIE, token, path=PREFIX, httponly=True, samesite="Strict",
                            secure=self._secure(request))
        response.del_cookie(auth.LOGIN_CSRF_COOKIE, path=PREFIX + "/login")
        log.warning("console: %s logged in", name)
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        self.sessions.end(request.cookies.get(auth.SESSION_COOKIE))
        response = _redirect(PREFIX + "/login")
        response.del_cookie(auth.SESSION_COOKIE, path=PREFIX)
        return response

    async def not_found(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            raise Refused(405, "不支持此操作。")
        return self._page(request, "error.html", {"message": "没有这个页面。"}, status=404)

    # ---- the dashboard -----------------------------------------------------------------------------------------
    async def dashboard(self, request: web.Request) -> web.Response:
        period = _int(request.query.get("days"), 30, 1, 366)
        today = self.today()
        first = today - dt.timedelta(days=period - 1)
        since = first.isoformat()
        labels = charts.days(first, today)
        per_day = {r["day"]: r for r in self.store.daily_questions(since)}
        answered = [per_day.get(d, {}).get("answered") or 0 for d in labels]
        declined = [per_day.get(d, {}).get("declined") or 0 for d in labels]
        up = sum(r["up"] or 0 for r in per_day.values())
        down = sum(r["down"] or 0 for r in per_day.values())
        sent_by_day = {r["day"]: r for r in self.store.daily_deliveries(since)}
        sent = [sent_by_day.get(d, {}).get("sent") or 0 for d in labels]
        kb = self.get_kb()
        cited = self.store.top_citations(since, 10)
        topics: dict[str, int] = {}
        for row in self.store.top_citations(since, 1000):
            topic = _topic_of(kb, row["citation"])
            topics[topic] = topics.get(topic, 0) + row["times"]
        reminders = self.store.reminder_counts()
        context = {
            "days": period, "since": since, "asked": sum(answered) + sum(declined), "answered": sum(answered),
            "declined": sum(declined), "up": up, "down": down,
            "satisfaction": f"{100 * up / (up + down):.0f}%" if up + down else "—",
            "questions_chart": charts.stacked_bars(f"近{period}天每日提问", labels,
                                                   [("已回答", charts.GREEN, answered), ("未能回答", charts.ORANGE, declined)],
                                                   width=1100, height=260),
            "articles_chart": charts.horizontal_bars("引用最多的条文", [(r["citation"], r["times"]) for r in cited]),
            "topics_chart": charts.horizontal_bars("提问最多的主题", sorted(topics.items(), key=lambda kv: -kv[1])[:10],
                                                   charts.GREEN),
            "reasons": self.store.decline_reasons(since),
            "reminders": reminders, "sent": sum(sent), "late": sum((r["late"] or 0) for r in sent_by_day.values()),
            "reminders_chart": charts.stacked_bars(f"近{period}天每日发送的提醒", labels, [("已发送", charts.BLUE, sent)],
                                                   width=540, height=180),
        }
        return self._page(request, "dashboard.html", context)

    # ---- unanswered questions and the teach loop ----------------------------------------------------------------
    async def unanswered(self, request: web.Request) -> web.Response:
        rows = self.store.review_queue(200)
        return self._page(request, "unanswered.html", {
            "rows": rows, "log": self.store.teach_log(15), "rebuilding": self.rebuilder.running,
            "cities": {m.id: m.city_short for m in self.get_kb().measures.values()},
            "taught": _int(request.query.get("taught"), 0, 0, 10**9)})

    async def link_form(self, request: web.Request) -> web.Response:
        row = self.store.question(int(request.match_info["qid"]))
        if not row:
            raise Refused(404, "没有这个问题（可能已被删除）。")
        kb = self.get_kb()
        query = (request.query.get("q") or row["question"])[:200]
        measure = request.query.get("measure") or ""
        measure = measure if measure in kb.measures else ""
        results = search_articles(kb, query, measure or None)
        return self._page(request, "link.html", {
            "q": row, "query": query, "measure": measure, "results": results,
            "measures": [(m.id, m.city_short, m.citation_title, len(m.articles)) for m in kb.measures.values()]})

    def _question_from_form(self, form) -> dict:
        qid = _int(form.get("question_id"), 0, 0, 10**12)
        row = self.store.question(qid) if qid else None
        if not row:
            raise Refused(400, "没有找到这个问题，请返回列表刷新后重试。")
        return row

    async def link(self, request: web.Request) -> web.StreamResponse:
        form, op = request[FORM], request[SESSION]["operator"]
        row = self._question_from_form(form)
        kb = self.get_kb()
        measure = str(form.get("measure") or "")
        article = _int(str(form.get("article") or "").strip().removeprefix("第").removesuffix("条"), 0, 0, 10**4)
        if measure not in kb.measures:
            raise Refused(400, "请选择办法。")
        if article not in kb.measures[measure].articles:
            raise Refused(400, f"{kb.measures[measure].citation_title}没有第{article or '?'}条，"
                               f"请填写 1–{max(kb.measures[measure].articles)} 之间的条号。")
        try:
            teach.add_example(teach.operator_file(self.settings.db), kb, row["question"], measure, article, op)
        except teach.TeachError as exc:
            raise Refused(400, str(exc)) from None
        self.store.resolve_question(row["question"], "linked", f"{measure}:{article}", op)
        teach_id = self.store.log_teach(op, "example", row["question"], measure, article)
        log.warning("console: %s linked question %s to %s article %s", op, row["id"], measure, article)
        self.rebuilder.request()
        return _redirect(f"{PREFIX}/unanswered?taught={teach_id}")

    async def out_of_scope(self, request: web.Request) -> web.StreamResponse:
        form, op = request[FORM], request[SESSION]["operator"]
        row = self._question_from_form(form)
        try:
            teach.add_near_miss(teach.operator_file(self.settings.db), row["question"], op)
        except teach.TeachError as exc:
            raise Refused(400, str(exc)) from None
        self.store.resolve_question(row["question"], "out_of_scope", None, op)
        teach_id = self.store.log_teach(op, "near_miss", row["question"], None, None)
        log.warning("console: %s marked question %s out of scope", op, row["id"])
        self.rebuilder.request()
        return _redirect(f"{PREFIX}/unanswered?taught={teach_id}")

    # ---- subscriptions, the upload, claims ----------------------------------------------------------------------
    def _subscriptions_context(self) -> dict:
        upcoming: dict[int, dict] = {}
        for r in self.store.upcoming("9999-12-31"):
            upcoming.setdefault(r["subscription_id"], r)
        subs = [{**s, "next": upcoming.get(s["id"])} for s in self.store.all_subscriptions(active_only=False)]
        claims_supported = hasattr(self.store, "pending_claims") and hasattr(self.store, "decide_claim")
        return {"subs": subs, "cities": {m.id: m.city_short for m in self.get_kb().measures.values()},
                "deliveries": self.store.recent_deliveries(50),
                "failed": self.store.failed_reminders(50), "counts": self.store.reminder_counts(),
                "claims": self.store.pending_claims() if claims_supported else [],
                "claims_supported": claims_supported, "report": None, "upload_error": None, "upload_name": None}

    async def subscriptions(self, request: web.Request) -> web.Response:
        return self._page(request, "subscriptions.html", self._subscriptions_context())

    async def upload(self, request: web.Request) -> web.Response:
        from bot.importer import ImportError_, import_data
        session = request[SESSION]
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError, KeyError):
            raise Refused(400, "上传格式不对（需要 multipart/form-data）。") from None
        csrf_ok, raw, name = False, None, ""
        while True:
            part = await reader.next()
            if part is None:
                break
            if part.name == "csrf_token":
                csrf_ok = auth.same((await part.read(decode=True))[:200].decode("utf-8", "replace"), session["csrf"])
            elif part.name == "file":
                if not csrf_ok:
                    break  # the token comes first in the form; a file before it is not read
                name = (part.filename or "")[:100]
                raw = bytearray()
                while chunk := await part.read_chunk(64 * 1024):
                    raw += chunk
                    if len(raw) > UPLOAD_LIMIT:
                        raise Refused(413, f"文件太大（上限 {UPLOAD_LIMIT // 1024 // 1024} MB）。")
        if not csrf_ok:
            raise Refused(403, "表单已过期或来源不明（缺少有效的 CSRF 令牌），请刷新页面后重试。")
        context = self._subscriptions_context()
        context["upload_name"] = name
        if not raw:
            context["upload_error"] = "请选择要上传的 CSV 文件。"
            return self._page(request, "subscriptions.html", context, status=400)
        try:
            report = import_data(bytes(raw), name or "upload.csv", self.store, self.get_kb(), self.today(),
                                 self.settings.reminder_leads)
        except ImportError_ as exc:
            context["upload_error"] = str(exc)
            return self._page(request, "subscriptions.html", context, status=400)
        log.warning("console: %s uploaded %s: %d new, %d updated, %d refused", session["operator"], name,
                    report.new, report.updated, len(report.refused))
        context = {**self._subscriptions_context(), "report": report, "upload_name": name}
        return self._page(request, "subscriptions.html", context)

    async def decide_claim(self, request: web.Request) -> web.StreamResponse:
        form, op = request[FORM], request[SESSION]["operator"]
        if not (hasattr(self.store, "pending_claims") and hasattr(self.store, "decide_claim")):
            raise Refused(404, "认领功能尚未启用。")
        claim_id = _int(form.get("claim_id"), 0, 0, 10**12)
        decision = form.get("decision")
        if not claim_id or decision not in ("approve", "refuse"):
            raise Refused(400, "请选择批准或拒绝。")
        if not any(c["id"] == claim_id for c in self.store.pending_claims()):
            raise Refused(409, "这条认领申请已处理或不存在。")
        self.store.decide_claim(claim_id, decision == "approve", op)
        log.warning("console: %s %s claim %s", op, "approved" if decision == "approve" else "refused", claim_id)
        return _redirect(PREFIX + "/subscriptions#claims")

    # ---- measures and the export -----------------------------------------------------------------------------------
    async def measures(self, request: web.Request) -> web.Response:
        kb, today = self.get_kb(), self.today()
        rows = [{"id": m.id, "title": m.citation_title, "city": m.city_short, "number": m.meta.get("document_number"),
                 "from": m.meta.get("in_force_from"), "until": m.meta.get("in_force_until"), "status": m.status(today),
                 "articles": len(m.articles)} for m in kb.measures.values()]
        additions = teach.read(teach.operator_file(self.settings.db))
        return self._page(request, "measures.html", {"rows": rows, "today": today, "additions": additions,
                                                      "total": sum(1 for _ in self.store.all_questions())})

    async def export_questions(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="questions-{self.today().isoformat()}.csv"'})
        self._headers(response)
        await response.prepare(request)
        columns = ["id", "asked_at", "channel", "user", "question", "city", "abstained", "reason", "citation",
                   "feedback", "feedback_reason", "resolution", "resolved_ref", "resolved_by", "resolved_at"]
        buf = io.StringIO()
        writer = csv.writer(buf)
        buf.write("\ufeff")  # Excel opens UTF-8 with a BOM correctly
        writer.writerow(columns)
        for i, row in enumerate(self.store.all_questions()):
            # the user as a short pseudonym: distinct askers can be counted, nobody is named
            user = hashlib.sha256(f"{row['channel']}:{row['user_id']}".encode()).hexdigest()[:12] if row["user_id"] else ""
            writer.writerow([_cell(v) for v in (row["id"], row["asked_at"], row["channel"], user, row["question"],
                                                row["city"], row["abstained"], row["reason"], row["citation"],
                                                row.get("feedback"), row.get("feedback_reason"), row.get("resolution"),
                                                row.get("resolved_ref"), row.get("resolved_by"), row.get("resolved_at"))])
            if i % 500 == 499:
                await response.write(buf.getvalue().encode("utf-8"))
                buf.seek(0)
                buf.truncate()
        await response.write(buf.getvalue().encode("utf-8"))
        await response.write_eof()
        return response


# ---- helpers ----------------------------------------------------------------------------------------------------
async def _to_dashboard(request: web.Request) -> web.Response:
    return _redirect(PREFIX + "/")


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _safe_next(target: str) -> str:
    """Only a path of the console itself (never //host or a scheme: no open redirect)."""
    return target if re.fullmatch(r"/admin/[\w\-./?=&%]*", target or "") and "//" not in target else ""


def _int(text, default: int, low: int, high: int) -> int:
    try:
        value = int(str(text).strip())
    except (TypeError, ValueError):
        return default
    return value if low <= value <= high else default


def _cell(value) -> str:
    """A CSV cell; text a spreadsheet would run as a formula (=, +, -, @ first) is quoted with a '."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _topic_of(kb, citation: str) -> str:
    """The chapter of a cited article (申报条件, 认定程序 …), from its title 《…》第N条."""
    store = getattr(kb, "cache", None)
    cache = store.setdefault("_console_topics", {}) if isinstance(store, dict) else {}
    if not cache:
        for m in kb.measures.values():
            for n, art in m.articles.items():
                cache[m.cite(n)] = art.chapter_title or "总则"
    return cache.get(citation, "其他")


def _bigrams(text: str) -> set[str]:
    text = re.sub(r"[^\w]", "", text)
    return {text[i:i + 2] for i in range(len(text) - 1)}


def search_articles(kb, query: str, measure: str | None = None, limit: int = 8) -> list[dict]:
    """Articles for the operator to choose from: 第N条 named in the query first, then by the character pairs
    they share with it (plain and independent of how the Q&A ranks)."""
    from knowledge.kb import article_refs
    refs = set(article_refs(query))
    grams = _bigrams(query)
    scored = []
    for m in kb.measures.values():
        if measure and m.id != measure:
            continue
        for n, art in m.articles.items():
            text = f"{art.chapter_title}{art.text}"
            shared = len(grams & _bigrams(text))
            score = (n in refs, shared)
            if n in refs or shared:
                scored.append((score, m, n, art))
    scored.sort(key=lambda s: (-s[0][0], -s[0][1], s[1].id, s[2]))
    return [{"measure": m.id, "article": n, "title": m.cite(n), "city": m.city_short, "chapter": art.chapter_title,
             "text": art.text if len(art.text) <= 240 else art.text[:240] + "……", "score": score[1]}
            for score, m, n, art in scored[:limit]]
