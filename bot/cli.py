"""The `policybot` command (CONTRACT.md): chat, ask, kb …

Bad arguments or input exit with status 2 and one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import logging
import sys
from pathlib import Path

from bot.config import ConfigError, Settings


class UsageError(Exception):
    """Bad arguments or input: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise UsageError(f"{self.prog}: {message}")


DATE_RANGE = (dt.date(1900, 1, 1), dt.date(2100, 12, 31))  # what the calendars and the rules can reckon with


def _parse_date(text: str) -> dt.date:
    """A date argument: YYYY-MM-DD (or 2024/6/1, 2024.6.1, read as the chat reads dates), 1900–2100."""
    try:
        value = dt.date.fromisoformat(text)
    except ValueError:
        from rules.facts import AnswerError, parse_date
        try:
            iso = parse_date(text, past=False)
        except AnswerError:
            iso = ""
        if len(iso) != 10:
            raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
        value = dt.date.fromisoformat(iso)
    if not DATE_RANGE[0] <= value <= DATE_RANGE[1]:
        raise argparse.ArgumentTypeError(f"date out of range (1900-01-01 to 2100-12-31): {text!r}")
    return value


def _session_id(text: str) -> str:
    text = text.strip()
    if not text or len(text) > 100 or not text.isprintable():
        raise argparse.ArgumentTypeError("a session id is 1 to 100 printable characters")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="policybot", description="服务型制造示范企业政策助手")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    chat = sub.add_parser("chat", help="interactive chat in the terminal")
    chat.add_argument("--user", help="user id for this chat (default: your login name)")

    ask = sub.add_parser("ask", help="one policy question, one answer ('-' reads one per line from stdin)")
    ask.add_argument("--city", help="the city: a measure id, the city's name, or one of its districts or zones (policybot kb list)")
    ask.add_argument("--json", action="store_true", help="JSON output")
    ask.add_argument("--as-of", type=_parse_date, help="answer as on this date (default: today, Asia/Shanghai)")
    ask.add_argument("--session", type=_session_id,
                     help="conversation id kept across calls: follow-ups (那包头呢, 这个要几份) resolve against it")
    ask.add_argument("question", nargs="+", help="the question, or - for stdin")

    ev = sub.add_parser("eval", help="score question sets: top-1, top-3, declines, per city, kind and reason")
    ev.add_argument("files", nargs="*", type=Path, help="question sets (default: the repository's test sets)")
    ev.add_argument("--leave-out", metavar="MEASURE", help="as if that measure had never been seen (no examples of its own)")
    ev.add_argument("--measures", metavar="DIR", type=Path, action="append", default=[],
                    help="add the measures of DIR (raw extracted <id>.txt) to a temporary base")
    ev.add_argument("--as-of", type=_parse_date, help="answer as on this date (default: 2026-11-22, the sets' date)")
    ev.add_argument("--misses", action="store_true", help="list every miss")
    ev.add_argument("--json", action="store_true", help="JSON output")

    check = sub.add_parser("check", help="eligibility pre-judgement from a YAML file of facts")
    check.add_argument("--city", required=True, help="the city: a measure id, the city's name, or one of its districts or zones (policybot kb list)")
    check.add_argument("--answers", required=True, type=Path, help="YAML (or JSON) mapping of facts, CONTRACT.md")
    check.add_argument("--as-of", type=_parse_date, help="judge as on this date (default: today, Asia/Shanghai)")
    check.add_argument("--json", action="store_true", help="JSON output")

    rem = sub.add_parser("reminders", help="awarded enterprises and their reminders")
    rem_sub = rem.add_subparsers(dest="reminders_command", required=True, parser_class=_Parser)
    imp = rem_sub.add_parser("import", help="import the list of awarded enterprises (CSV), idempotent by credit code")
    imp.add_argument("file", type=Path)
    imp.add_argument("--invite", action="store_true",
                     help="print a one-time binding code for each new enterprise (credit code, name, code)")
    inv = rem_sub.add_parser("invite", help="a one-time binding code with which an enterprise's staff claim its "
                                            "record in chat")
    inv.add_argument("credit_code")
    inv.add_argument("--days", type=int, default=30, help="days the code stays valid (30)")
    cl = rem_sub.add_parser("claims", help="claims waiting for an operator's approval")
    cl.add_argument("--json", action="store_true")
    for verb, what in (("approve", "approve a pending claim: the claimant gets the enterprise's reminders"),
                       ("refuse", "refuse a pending claim")):
        decide = rem_sub.add_parser(verb, help=what)
        decide.add_argument("claim_id", type=int)
        decide.add_argument("--by", default=os.environ.get("USER") or "operator", help="who decides (recorded)")
    lst = rem_sub.add_parser("list", help="the subscribed enterprises and their next reminder")
    lst.add_argument("--json", action="store_true")
    due = rem_sub.add_parser("due", help="reminders to be sent in the next N days (and overdue ones)")
    due.add_argument("--days", type=int, default=7)
    due.add_argument("--json", action="store_true")

    sub.add_parser("serve", help="run every configured channel and the reminder loop in one process")

    kf = sub.add_parser("kf", help="微信客服 (WeChat users reach the bot through WeCom customer service)")
    kf_sub = kf.add_subparsers(dest="kf_command", required=True, parser_class=_Parser)
    link = kf_sub.add_parser("link", help="a contact link and a QR code PNG that open the chat in WeChat")
    link.add_argument("--city", help="preselect this city for whoever comes through the link (id or name)")
    link.add_argument("--account", help="the open_kfid of the customer-service account (default: the first one)")
    link.add_argument("--out", type=Path, help="the QR code PNG (default: kf-link[-CITY].png here)")
    sub.add_parser("doctor", help="check the configuration and say what is missing")

    kb = sub.add_parser("kb", help="the knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True, parser_class=_Parser)
    build = kb_sub.add_parser("build", help="build the knowledge base from knowledge/")
    build.add_argument("--source", type=Path, help="a folder laid out like knowledge/ (default: the package's, "
                       "plus the questions operators taught, operator_examples.yaml beside the database)")
    build.add_argument("--out", type=Path, help="where to write it (default: beside POLICYBOT_DB)")
    build.add_argument("--if-stale", action="store_true", help="only when missing or out of date")
    imp_kb = kb_sub.add_parser("import", help="a measure from its published document (.txt as extracted, .docx, .pdf)")
    imp_kb.add_argument("file", type=Path)
    imp_kb.add_argument("--id", help="the measure's id (default: the city's name in pinyin)")
    imp_kb.add_argument("--to", type=Path, help="the measures folder to write to (default: the package's knowledge/measures)")
    imp_kb.add_argument("--force", action="store_true", help="overwrite an existing <id>.txt / <id>.yaml")
    imp_kb.add_argument("--dry-run", action="store_true", help="print the cleaned text and the draft, write nothing")
    kb_sub.add_parser("list", help="list the measures")
    show = kb_sub.add_parser("show", help="print one article")
    show.add_argument("measure")
    show.add_argument("article")

    ops = sub.add_parser("operators", help="accounts of the operator console (/admin/ of serve)")
    ops_sub = ops.add_subparsers(dest="operators_command", required=True, parser_class=_Parser)
    add = ops_sub.add_parser("add", help="add an operator, or set a new password (logs their sessions out)")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", required=True,
                     help="read the password from the first line of stdin (never from the command line)")
    ops_sub.add_parser("list", help="the operators")
    rm = ops_sub.add_parser("remove", help="remove an operator (and end their sessions)")
    rm.add_argument("name")

    rl = sub.add_parser("rules", help="the self-check rules of a measure")
    rl_sub = rl.add_subparsers(dest="rules_command", required=True, parser_class=_Parser)
    rd = rl_sub.add_parser("draft", help="draft rules/<id>.yaml from the measure's conditions article (marked for review)")
    rd.add_argument("measure", help="the measure id (policybot kb list)")
    rd.add_argument("--to", type=Path, help="the rules folder to write to (default: the package's rules/)")
    rd.add_argument("--force", action="store_true", help="overwrite an existing rules/<id>.yaml")

    dl = sub.add_parser("deadlines", help="the record-filing deadline and the re-review schedule")
    dl_sub = dl.add_subparsers(dest="deadlines_command", required=True, parser_class=_Parser)
    filing = dl_sub.add_parser("filing", help="the record-filing deadline after a name change or restructuring")
    filing.add_argument("--changed-on", type=_parse_date, required=True, help="the day the procedures were completed")
    filing.add_argument("--city", help="the city whose measure applies (its own period and article)")
    filing.add_argument("--json", action="store_true", help="JSON output")
    review = dl_sub.add_parser("review", help="the re-review schedule of an awarded enterprise")
    review.add_argument("--city", required=True, help="the city: a measure id, the city's name, or one of its districts or zones (policybot kb list)")
    review.add_argument("--awarded-on", type=_parse_date, required=True, help="the day the title was awarded")
    review.add_argument("--as-of", type=_parse_date, help="as on this date (default: today, Asia/Shanghai)")
    review.add_argument("--json", action="store_true", help="JSON output")
    return p


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args = build_parser().parse_args(argv)
        settings = Settings.load()
        from bot import logsafe
        logsafe.install(settings)
        return COMMANDS[args.command](args, settings)
    except UsageError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"policybot: configuration: {exc}", file=sys.stderr)
        return 2
    except OverflowError:  # a date or a span beyond what the calendar reckons with (--days 10**9)
        print("policybot: date out of range", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


# ---- commands -------------------------------------------------------------------------------------
def _kb(settings: Settings):
    from bot import teach
    from knowledge.kb import KnowledgeBaseError
    try:
        return teach.load(settings.db, settings.kb_path)
    except KnowledgeBaseError as exc:
        raise UsageError(f"policybot: knowledge base: {exc}") from None


def _store(settings: Settings):
    from bot.storage import Store
    try:
        return Store(settings.db)
    except Exception as exc:  # noqa: BLE001 - sqlite3 and OS errors alike: say which file
        raise UsageError(f"policybot: cannot open the database {settings.db}: {exc}") from None


def _city(kb, text: str | None, as_of: dt.date | None = None) -> str | None:
    """The measure id a --city names: of a city with several measures, the one in force on `as_of`."""
    if text is None:
        return None
    from knowledge.qa import resolve_city
    mid = resolve_city(kb, text, as_of)
    if not mid:
        known = ", ".join(f"{m.id} ({m.city_short})" for m in kb.measures.values())
        raise UsageError(f"policybot: unknown city {text!r}; known: {known}")
    return mid


def cmd_chat(args, settings: Settings) -> int:
    from bot.channels.console import ConsoleChannel
    from bot.runtime import Dispatcher
    dispatcher = Dispatcher(settings, _store(settings), _kb(settings))
    return ConsoleChannel(dispatcher, args.user).run()


def cmd_ask(args, settings: Settings) -> int:
    from bot.clock import today_shanghai
    from handlers.ask import render, with_facts
    from knowledge.qa import answer
    kb = _kb(settings)
    as_of = args.as_of or today_shanghai()
    city = _city(kb, args.city, as_of)
    store = _store(settings)
    if args.question == ["-"]:
        questions = (line.rstrip("\r\n") for line in sys.stdin)
    else:
        questions = iter([" ".join(args.question)])
    session = store.get_session(args.session) if args.session else None
    for q in questions:
        extra = {}
        if session is None:
            a = answer(kb, q, as_of, city)
        else:  # a conversation: the previous turn and the conversation's city come from the database
            from knowledge.conversation import Turn, respond
            from knowledge.qa import cities_in
            here = city or (session.get("city") if session.get("city") in kb.measures else None)
            previous = Turn.from_dict(session.get("last"))
            if previous and city:  # --city given: a follow-up is about that city
                previous.city, previous.scope = city, []
            a, turn, res = respond(kb, q, as_of, here, previous)
            named = cities_in(kb, q)
            session = {"city": named[0] if len(named) == 1 else here, "last": turn.as_dict()}
            store.set_session(args.session, session)
            extra = {"session": args.session, "followup": res.kind, "resolved": res.query if res.kind else None}
        a, direct = with_facts(kb, a, q, as_of, city or (session or {}).get("city"))
        if direct:
            extra["facts"] = {k: r.value for k, r in direct.found.facts.items()}
        store.log_question("cli", args.session, q, a.city, a.abstained, a.reason,
                           a.citations[0].title if a.citations else None, trace=a.trace)
        if args.json:
            print(json.dumps({**a.as_dict(), **extra}, ensure_ascii=False), flush=True)
        else:
            text = a.answer if direct else render(a)
            if a.followups:
                text += "\n您还可以问：" + " / ".join(a.followups)
            print(text + "\n", flush=True)
    return 0


def cmd_eval(args, settings: Settings) -> int:
    from knowledge.evaluate import AS_OF, EvalError, run
    from knowledge.kb import KnowledgeBaseError
    for f in args.files:
        if not f.is_file():
            raise UsageError(f"policybot: eval: no such file {f}")
    try:
        base = None if args.leave_out or args.measures else _kb(settings)
        report = run(args.files, args.leave_out, args.measures, args.as_of or AS_OF, base)
    except (EvalError, KnowledgeBaseError) as exc:
        raise UsageError(f"policybot: eval: {exc}") from None
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
    else:
        print(report.text(misses=args.misses))
    return 0


def cmd_check(args, settings: Settings) -> int:
    import yaml

    from bot.clock import today_shanghai
    from handlers.check import render_card
    from knowledge.qa import place_resolver
    from rules import engine
    kb = _kb(settings)
    as_of = args.as_of or today_shanghai()
    city = _city(kb, args.city, as_of)
    if city not in engine.available():
        if (engine.RULES_DIR / f"{city}.yaml").exists():
            raise UsageError(f"policybot: rules/{city}.yaml is a draft still marked for review: check it and remove "
                             "its review flags first")
        raise UsageError(f"policybot: no eligibility rules for {city} (rules/{city}.yaml)")
    from rules.facts import TextDateLoader as Loader  # dates stay text: 2019-13-01 is reported by the fact reader
    try:
        raw = yaml.load(args.answers.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 - a SafeLoader
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"policybot: cannot read {args.answers}: {reason}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UsageError(f"policybot: {args.answers} must be a mapping of facts (key: value), not {type(raw).__name__}")
    as_of = args.as_of or today_shanghai()
    rules = engine.load(city)
    facts, ignored, unreadable = engine.read_all_facts(rules, raw, as_of)
    if facts.get("registered_in") is not None:  # 不在…, a province: not one place, asked again rather than guessed
        from handlers.direct import place_of
        if place_of(kb, as_of)(facts["registered_in"]) is None:
            unreadable.append({"fact": "registered_in", "text": str(raw.get("registered_in")),
                               "reason": "请写注册地所在的城市或区县名称（一个地方）。"})
            del facts["registered_in"]
    if unreadable and not args.json:  # never judged on a guess; --json reports them and judges the rest
        raise UsageError(f"policybot: {args.answers}: " + "；".join(f"{u['fact']}: {u['reason']}" for u in unreadable))
    verdict = engine.evaluate(rules, facts, as_of, place_resolver(kb, city, as_of))
    if ignored:
        verdict.notes.append("未使用的字段（不是已知的事实名）：" + "、".join(ignored))
    if args.json:
        print(json.dumps({**verdict.as_dict(), "facts": facts, "unreadable": unreadable}, ensure_ascii=False))
    else:
        print(render_card(verdict))
    return 0


def cmd_reminders(args, settings: Settings) -> int:
    from bot.clock import today_shanghai
    kb, store, today = _kb(settings), _store(settings), today_shanghai()
    if args.reminders_command == "import":
        from bot.importer import ImportError_, import_file
        try:
            report = import_file(args.file, store, kb, today, settings.reminder_leads, invite=args.invite)
        except ImportError_ as exc:
            raise UsageError(f"policybot: reminders import: {exc}") from None
        for line, problem in report.refused:
            print(f"{args.file}:{line}: {problem}", file=sys.stderr)
        print(f"imported {args.file}: {report.new} new, {report.updated} updated, {report.unchanged} unchanged, "
              f"{len(report.refused)} refused; {report.reminders} reminders planned")
        for credit_code, name, code in report.codes:
            print(f"{credit_code}\t{name}\t{code}")
        for credit_code, name, contact in report.unconfirmed:
            print(f"{args.file}: {credit_code} {name}: its contact {contact} subscribed in chat before this list and is "
                  "not confirmed by it; check it (reminders list), or give the contact in the file", file=sys.stderr)
        return 0
    if args.reminders_command == "invite":
        from handlers.remind import check_credit_code
        code, problem = check_credit_code(args.credit_code)
        if problem:
            raise UsageError(f"policybot: reminders invite: {args.credit_code}: not a valid credit code")
        if not 1 <= args.days <= 365:
            raise UsageError("policybot: reminders invite: --days must be 1 to 365")
        try:
            binding = store.issue_binding_code(code, days=args.days)
        except KeyError:
            raise UsageError(f"policybot: reminders invite: no enterprise with credit code {code} "
                             "(import it first)") from None
        sub = store.subscription_by_code(code)
        print(binding)
        print(f"{sub['name']} ({code}): one-time binding code, valid {args.days} days; earlier unused codes no "
              "longer work. In chat: 提醒 → city, name, credit code → this code.", file=sys.stderr)
        return 0
    if args.reminders_command == "claims":
        rows = store.pending_claims()
        if args.json:
            print(json.dumps(rows, ensure_ascii=False))
        else:
            for r in rows:
                print(f"{r['id']}\t{r['created_at'][:16]}\t{r['credit_code']}\t{r['name']}\t"
                      f"claimed as {r['claimed_name'] or '-'}\t{r['channel']}:{r['user_id']}\t"
                      f"{'has a contact' if r['has_contact'] else 'no contact'}")
            print(f"{len(rows)} pending claim(s)", file=sys.stderr)
        return 0
    if args.reminders_command in ("approve", "refuse"):
        decided = store.decide_claim(args.claim_id, args.reminders_command == "approve", args.by)
        if decided is None:
            raise UsageError(f"policybot: reminders {args.reminders_command}: no pending claim {args.claim_id}")
        if decided["status"] == "approved":
            from bot.reminders import schedule
            schedule(store, kb, decided["subscription_id"], today, settings.reminder_leads)
        print(f"claim {args.claim_id} {decided['status']}")
        return 0
    if args.reminders_command == "list":
        upcoming = {}
        for r in store.upcoming("9999-12-31"):
            upcoming.setdefault(r["subscription_id"], r)
        rows = []
        for s in store.all_subscriptions():
            nxt = upcoming.get(s["id"])
            rows.append({"credit_code": s["credit_code"], "name": s["name"], "city": s["city"],
                         "awarded_on": s["awarded_on"], "channel": s["channel"], "user_id": s["user_id"],
                         "next_reminder": {"kind": nxt["kind"], "due_on": nxt["due_on"], "send_on": nxt["send_on"]}
                         if nxt else None})
        if args.json:
            print(json.dumps(rows, ensure_ascii=False))
        else:
            print("credit_code\tname\tcity\tawarded_on\tcontact\tnext_reminder")
            for r in rows:
                n = r["next_reminder"]
                contact = f"{r['channel']}:{r['user_id']}" if r["channel"] else "no contact"
                print(f"{r['credit_code']}\t{r['name']}\t{r['city']}\t{r['awarded_on']}\t{contact}\t"
                      + (f"{n['send_on']} {n['kind']} {n['due_on']}" if n else "-"))
        return 0
    if args.days < 0:
        raise UsageError("policybot: reminders due: --days must be 0 or more")
    until = (today + dt.timedelta(days=args.days)).isoformat()
    rows = [{"send_on": r["send_on"], "kind": r["kind"], "due_on": r["due_on"], "lead_days": r["lead_days"],
             "name": r["name"], "credit_code": r["credit_code"], "city": r["city"], "channel": r["channel"],
             "user_id": r["user_id"], "overdue": r["send_on"] < today.isoformat(),
             "waiting": r["status"] == "waiting"} for r in store.upcoming(until)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        print("send_on\tkind\tdue_on\tname\tcredit_code\tcontact")
        for r in rows:
            contact = f"{r['channel']}:{r['user_id']}" if r["channel"] else "no contact (phone them)"
            if r["waiting"]:  # 微信客服 outside its 48 hours: waits for the customer's next message
                contact = f"no channel: phone them (waits for {r['channel']}:{r['user_id']} to write)"
            print(f"{r['send_on']}{' overdue' if r['overdue'] else ''}\t{r['kind']}\t{r['due_on']}\t{r['name']}\t"
                  f"{r['credit_code']}\t{contact}")
        print(f"{len(rows)} reminder(s) due by {until}", file=sys.stderr)
    return 0


def cmd_serve(args, settings: Settings) -> int:
    import asyncio

    from bot import serve
    logging.getLogger().setLevel(getattr(logging, os.environ.get("POLICYBOT_LOG_LEVEL", "INFO").upper(), logging.INFO))
    for problem in settings.problems():
        print(f"policybot: configuration: {problem}", file=sys.stderr)
    kb = _kb(settings)
    try:
        asyncio.run(serve.run(settings, kb))
    except OSError as exc:  # the port is taken, the address does not exist
        raise UsageError(f"policybot: cannot serve on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
    return 0


def cmd_kf(args, settings: Settings) -> int:
    """`kf link`: kf/account/list, then kf/add_contact_way (scene = the city's id), and a QR code PNG."""
    import asyncio

    from bot.channels.base import Transient
    from bot.channels.wechat_kf import scene_for
    from bot.channels.wecom_api import KfRefused, WecomApi
    if not settings.wecom_enabled:
        raise UsageError("policybot: kf link needs WECOM_CORP_ID, WECOM_AGENT_ID and WECOM_SECRET (the app listed "
                         "under 微信客服-可调用接口的应用)")
    city = None
    if args.city is not None:
        city = _city(_kb(settings), args.city)
        try:
            scene_for(city)
        except ValueError as exc:
            raise UsageError(f"policybot: kf link: {exc}") from None
    api = WecomApi(settings.wecom_corp_id, settings.wecom_secret, settings.wecom_agent_id, settings.wecom_api_base_url)

    async def make() -> tuple[dict, str]:
        try:
            accounts = await api.kf_account_list()
            if args.account:
                accounts = [a for a in accounts if a.get("open_kfid") == args.account]
            if not accounts:
                raise UsageError("policybot: kf link: no 微信客服 account " + (
                    f"{args.account!r} " if args.account else "") + "that this app may manage (微信客服 → API)")
            account = accounts[0]
            return account, await api.kf_add_contact_way(account["open_kfid"], city or "")
        finally:
            await api.close()

    try:
        account, url = asyncio.run(make())
    except (KfRefused, Transient) as exc:
        raise UsageError(f"policybot: kf link: WeCom refused: {exc}") from None
    import segno
    out = args.out or Path(f"kf-link{'-' + city if city else ''}.png")
    try:
        segno.make(url, error="m").save(str(out), scale=10, border=4)
    except OSError as exc:
        raise UsageError(f"policybot: kf link: cannot write {out}: {exc.strerror or exc}") from None
    print(url)
    print(f"account: {account.get('name') or '-'} ({account['open_kfid']}); city: {city or 'none (asked in chat)'}; "
          f"QR code: {out}", file=sys.stderr)
    return 0


def cmd_doctor(args, settings: Settings) -> int:
    from knowledge import kb as kbmod
    lines, ok = [], True

    def say(good: bool, text: str) -> None:
        nonlocal ok
        ok = ok and good
        lines.append(("ok    " if good else "MISSING ") + text)

    say(True, f"database: {settings.db}")
    try:
        _store(settings)
    except UsageError as exc:
        say(False, str(exc))
    from bot import teach
    try:
        stale = kbmod.is_stale(settings.kb_path, teach.source_dir(settings.db, settings.kb_path))
    except kbmod.KnowledgeBaseError:
        stale = True
    say(not stale, f"knowledge base: {settings.kb_path}" + (" (missing or stale: run `policybot kb build`)" if stale else ""))
    say(True, f"HTTP server of serve: http://{settings.host}:{settings.port} (/healthz)")
    if settings.telegram_enabled:
        mode = f"webhook {settings.telegram_webhook_url}" if settings.telegram_webhook_url else "long polling"
        say(True, f"Telegram: on ({mode})")
    else:
        lines.append("off   Telegram: set TELEGRAM_BOT_TOKEN to turn it on")
    if settings.wecom_enabled:
        say(True, f"WeCom: on (corp {settings.wecom_corp_id}, agent {settings.wecom_agent_id}); callback URL "
                  f"http://{settings.host}:{settings.port}/wecom/callback")
        lines.append("ok    微信客服: on with WeCom (kf_msg_or_event on the same callback); the app must be listed under "
                     "微信客服 → API → 可调用接口的应用; `policybot kf link` makes the link")
    else:
        lines.append("off   WeCom: set WECOM_CORP_ID, WECOM_AGENT_ID and WECOM_SECRET (and WECOM_TOKEN, WECOM_AES_KEY) "
                     "to turn it on")
    for problem in settings.problems():
        say(False, problem)
    lines.append(f"operators: {', '.join(sorted(settings.admins)) or 'none (set POLICYBOT_ADMINS=channel:user_id)'}")
    try:
        accounts = [op["name"] for op in _store(settings).operators()]
    except (UsageError, Exception):  # noqa: BLE001 - the database line above already says what is wrong
        accounts = []
    lines.append(f"console: http://{settings.host}:{settings.port}/admin/ ("
                 + (f"accounts: {', '.join(accounts)})" if accounts else
                    "no account yet: policybot operators add NAME --password-stdin)"))
    print("\n".join(lines))
    return 0 if ok else 1


def cmd_kb(args, settings: Settings) -> int:
    from knowledge import kb as kbmod
    if args.kb_command == "build":
        out = args.out or settings.kb_path
        # without --source: the folder this base was built from (kb build --source DIR --out FILE), else knowledge/;
        # the base this database's processes use (POLICYBOT_KB) also gets what operators taught (bot/teach.py)
        from bot import teach
        try:
            if Path(out).resolve() == Path(settings.kb_path).resolve():
                source = teach.source_dir(settings.db, out, base=args.source)
            else:
                source = args.source or kbmod.built_from(out) or kbmod.SOURCE_DIR
        except kbmod.KnowledgeBaseError as exc:
            raise UsageError(f"policybot: kb build: {exc}") from None
        if args.if_stale and not kbmod.is_stale(out, source):
            print(f"knowledge base up to date: {out}", file=sys.stderr)
            return 0
        try:
            built = kbmod.build(source, out)
        except kbmod.KnowledgeBaseError as exc:
            raise UsageError(f"policybot: kb build: {exc}") from None
        s = built.stats
        print(f"built {out}: {s['measures']} measures, {s['articles']} articles, {s['units']} passages, "
              f"{s['terms']} terms in {s['build_seconds']:.1f} s")
        drafts = [m.id for m in built.measures.values() if m.meta.get("review")]
        if drafts:  # imported by `kb import` and not yet checked: in use, but say so
            print(f"note: metadata still marked review: true (drafted by kb import): {', '.join(drafts)}",
                  file=sys.stderr)
        return 0
    if args.kb_command == "import":
        return _kb_import(args)
    kb = _kb(settings)
    if args.kb_command == "list":
        from bot.clock import today_shanghai
        today = today_shanghai()
        for m in kb.measures.values():
            meta = m.meta
            span = f"{meta.get('in_force_from') or '?'} – {meta.get('in_force_until') or '?'}"
            new = kbmod.successor(kb.measures, m.id)
            print(f"{m.id}\t{m.citation_title}\t{meta.get('document_number') or '-'}\t{len(m.articles)}条\t"
                  f"{span}\t{m.status(today)}" + (f"\treplaced by {new.id}" if new else ""))
        return 0
    # show
    mid = _city(kb, args.measure)
    from knowledge.numerals import cn_to_int
    raw = args.article.strip().removeprefix("第").removesuffix("条")
    number = cn_to_int(raw)
    m = kb.measures[mid]
    if number is None or number not in m.articles:
        raise UsageError(f"policybot: {mid} has articles 1-{max(m.articles)}, not {args.article!r}")
    art = m.articles[number]
    chapter = f"第{kbmod.to_cn_number(art.chapter_number)}章 {art.chapter_title}\n" if art.chapter_number else ""
    print(f"{m.cite(number)}\n{chapter}{art.text}")
    return 0


def cmd_operators(args, settings: Settings) -> int:
    from bot.console import auth
    store = _store(settings)
    if args.operators_command == "list":
        for op in store.operators():
            print(f"{op['name']}\tcreated {op['created_at'][:19]}\tlast login {(op['last_login_at'] or '-')[:19]}")
        return 0
    problem = auth.name_problem(args.name)
    if problem:
        raise UsageError(f"policybot: operators: {problem}")
    if args.operators_command == "remove":
        if not store.remove_operator(args.name):
            raise UsageError(f"policybot: operators: no operator {args.name!r}")
        print(f"removed operator {args.name}")
        return 0
    if sys.stdin.isatty():
        import getpass
        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    problem = auth.password_problem(password)
    if problem:
        raise UsageError(f"policybot: operators add: {problem}")
    new = store.add_operator(args.name, auth.hash_password(password))
    print(f"{'added' if new else 'new password for'} operator {args.name}")
    return 0


def _kb_import(args) -> int:
    from knowledge import importer
    from knowledge.kb import SOURCE_DIR
    target = args.to or SOURCE_DIR / "measures"
    try:
        result = importer.import_document(args.file, args.id, importer.existing_measures(target))
        if args.dry_run:
            print(result.text)
            print(importer.render_yaml(result))
        else:
            txt, meta = importer.write_measure(result, target, force=args.force)
            print(f"imported {args.file.name} as {result.id}: {txt} + {meta}")
    except importer.ImportFailure as exc:
        raise UsageError(f"policybot: kb import: {str(exc).splitlines()[0]}") from None
    print(f"《{result.meta['title']}》 {result.articles} articles; in force {result.meta.get('in_force_from') or '?'} – "
          f"{result.meta.get('in_force_until') or '?'}")
    from knowledge.parser import parse_measure
    from rules.extract import read_deadlines
    rules = read_deadlines([(a.number, a.text) for a in parse_measure(result.text).articles])
    filing, review, title = rules["filing"], rules["review"], rules["title_validity"]
    print("deadlines read from its articles: "
          + (f"filing {filing['days']} {filing['unit']} (第{filing['article']}条)" if filing else "filing: none found")
          + "; " + (f"review every {review['interval_years']} years (第{review['article']}条)" if review.get("interval_years")
                    else "no periodic review")
          + "; " + (f"title valid {title['years']} years (第{title['article']}条)" if title else "no title validity"))
    for note in result.notes:
        print(f"note: {note}")
    if result.todo:
        print("to review:")
        for item in result.todo:
            print(f"  - {item}")
    if not args.dry_run:
        print("then: policybot kb build")
    return 0


def cmd_rules(args, settings: Settings) -> int:
    import yaml

    from rules import draft as drafting
    from rules.engine import RULES_DIR
    from rules.extract import measure_articles, read_deadlines
    kb = _kb(settings)
    if args.measure not in kb.measures:
        known = ", ".join(kb.measures)
        raise UsageError(f"policybot: rules draft: no measure {args.measure!r}; known: {known}")
    measure = kb.measures[args.measure]
    try:
        d = drafting.draft(measure)
    except ValueError as exc:
        raise UsageError(f"policybot: rules draft: {exc}") from None
    folder = args.to or RULES_DIR
    path = Path(folder) / f"{measure.id}.yaml"
    if path.exists() and not args.force:
        raise UsageError(f"policybot: rules draft: {path} exists; --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(drafting.render(d), encoding="utf-8")
    conditions = d.data["conditions"]
    tested = sum(1 for c in conditions if c.get("test"))
    print(f"drafted {path}: {len(conditions)} conditions from {measure.cite(d.article)}, {tested} with a fact to test, "
          f"{len(conditions) - tested} left to the bureau's review; all marked review: true")
    print("the chat uses these rules only once every review flag is removed")
    deadlines = read_deadlines(measure_articles(measure))
    print("deadlines read from its articles (for rules/deadlines.yaml, measures:):")
    print(yaml.safe_dump({measure.id: deadlines}, allow_unicode=True, sort_keys=False, width=120).rstrip())
    return 0


def cmd_deadlines(args, settings: Settings) -> int:
    from rules.calendar import CalendarError
    from rules.deadlines import DeadlineError, filing_deadline, filing_text, review_schedule, review_text
    kb = _kb(settings)
    try:
        if args.deadlines_command == "filing":
            from knowledge.kb import current_ids
            ids = [_city(kb, args.city, args.changed_on)] if args.city else \
                current_ids(kb.measures, list(kb.measures), args.changed_on)
            measures = [kb.measures[i] for i in ids]  # the measures in force on the day of the change
            result = filing_deadline(args.changed_on, measures=measures)
            text = filing_text(result, kb.measures)
        else:
            from bot.clock import today_shanghai
            as_of = args.as_of or today_shanghai()
            measure = kb.measures[_city(kb, args.city, as_of)]
            result = review_schedule(measure, args.awarded_on, as_of)
            text = review_text(result, measure)
    except (CalendarError, DeadlineError) as exc:
        raise UsageError(f"policybot: deadlines: {exc}") from None
    print(json.dumps(result.as_dict(), ensure_ascii=False) if args.json else text)
    return 0


COMMANDS = {"chat": cmd_chat, "ask": cmd_ask, "eval": cmd_eval, "check": cmd_check, "reminders": cmd_reminders,
            "serve": cmd_serve, "doctor": cmd_doctor, "kf": cmd_kf, "kb": cmd_kb, "deadlines": cmd_deadlines,
            "rules": cmd_rules, "operators": cmd_operators}

if __name__ == "__main__":
    sys.exit(main())
