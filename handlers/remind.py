"""Reminders in chat: subscribe (提醒, /remind), report a change (我们更名了), list (/status), unsubscribe.

The handler talks and computes dates (pure: rules.deadlines); what is stored is returned as events
(`subscribe`, `change`, `unsubscribe`) that the runtime writes, then plans into reminder rows.
State: state["remind"] = {"step": city|name|code|bind|date|confirm|change_date|unsubscribe, "data": {...}}.
A credit code that is already on record (imported by the bureau, or subscribed by another account) is
bound only with a one-time binding code (`policybot reminders invite`) or by an operator approving the
claim; until then nothing about the record is shown or changed.
"""
from __future__ import annotations

import datetime as dt
import re

from stdnum.cn import uscc
from stdnum.exceptions import InvalidChecksum, InvalidFormat, InvalidLength

from handlers import words
from handlers.context import Context
from handlers.message import Button, Event, Incoming, Reply, Result
from knowledge.qa import resolve_city
from rules import facts as factmod
from rules.deadlines import DeadlineError, filing_deadline, filing_text, measure_rules, period_text, review_schedule
from rules.facts import AnswerError

SUBSCRIBE_WORDS = ("提醒", "订阅", "订阅提醒", "复核提醒", "开通提醒", "设置提醒", "我要订阅", "我要提醒")
UNSUBSCRIBE_WORDS = ("取消提醒", "退订", "取消订阅", "不要提醒了", "关闭提醒", "停止提醒")
STATUS_WORDS = ("我的提醒", "提醒列表", "查看提醒", "订阅状态")
CANCEL = words.CANCEL
YES = words.YES
_CHANGE_WORD = re.compile(r"更名|改名|改了名|换了名字|名字改了|名称变更|变更了名称|变更名称|重组|合并重组")
_DONE_WORD = re.compile(r"了|完成|办完|办好|已经|已")
_QUESTION_RE = re.compile(r"[?？吗么呢]|怎么|多久|几天|什么|啥|如何|是否")


def wants_subscribe(text: str) -> bool:
    return text.strip("!！。. ") in SUBSCRIBE_WORDS


def wants_unsubscribe(text: str) -> bool:
    return text.strip("!！。. ") in UNSUBSCRIBE_WORDS


def wants_status(text: str) -> bool:
    return text.strip("!！?？。. ") in STATUS_WORDS


def reports_change(text: str) -> bool:
    """我们更名了 / 公司重组手续办完了 (a report), not 更名后多久要备案？ (a question)."""
    return bool(_CHANGE_WORD.search(text) and _DONE_WORD.search(text)) and not _QUESTION_RE.search(text)


def active(state: dict) -> bool:
    return bool((state.get("remind") or {}).get("step"))


def accepts(text: str, state: dict, ctx: Context) -> bool:
    """Would the step under way take this text as its answer? A question it would not take is answered
    instead, and never stored as the company's name, city or code."""
    r = state.get("remind") or {}
    step, t = r.get("step"), factmod.clean(text)
    if t in CANCEL or wants_unsubscribe(text) or wants_status(text) or wants_subscribe(text):
        return True
    if step == "city":
        return t in ctx.kb.measures or bool(ctx.kb.places.get(t) or ctx.kb.places.get(t.removesuffix("市")))
    if step == "code":
        return check_credit_code(t)[1] is None
    if step in ("date", "change_date"):
        try:
            factmod.read_text("changed_on" if step == "change_date" else "awarded_on", text, ctx.today)
            return True
        except AnswerError:
            return False
    if step in ("confirm", "unsubscribe"):
        return words.is_yes(text) or words.is_no(text)
    return False  # a name is never a question


def prompt(state: dict, ctx: Context) -> Result:
    """The step under way, asked again."""
    r = state["remind"]
    if r["step"] == "change_date":
        word = "重组" if r["data"].get("kind") == "restructure" else "更名"
        return Result([Reply(f"{word}的相关手续是哪天办完的？")], state)
    if r["step"] == "change_name":
        return Result([Reply("更名后的企业名称是什么？（回复“跳过”保留原名称）")], state)
    if r["step"] == "unsubscribe":
        return Result([Reply("确定不再接收提醒吗？", [Button("确认退订", "rm:yes"), Button("保留", "rm:no")])], state)
    return _ask(state, ctx)


# ---- subscribe ---------------------------------------------------------------------------------------
def start(msg: Incoming, state: dict, ctx: Context) -> Result:
    state["remind"] = {"step": "city", "data": {}}
    return _ask(state, ctx, "订阅复核和备案提醒（示范企业用）。随时回复“取消”可退出。")


def on_text(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    r = state["remind"]
    t = factmod.clean(text)
    if t in CANCEL:
        state.pop("remind")
        return Result([Reply("已取消，没有保存任何信息。")], state)
    for wants, then in ((wants_unsubscribe, unsubscribe), (wants_status, status), (wants_subscribe, start)):
        if wants(text):  # another reminder request ends the half-finished one
            state.pop("remind")
            return then(msg, state, ctx)
    step, data = r["step"], r["data"]
    if step == "city":
        city = resolve_city(ctx.kb, t, ctx.today)
        if not city:
            return _ask(state, ctx, "没有找到这个城市。")
        data["city"] = city
        r["step"] = "name"
    elif step == "name":
        name = text.strip()
        if not 2 <= len(name) <= 60:
            return _ask(state, ctx, "企业名称应为2到60个字。")
        data["name"] = name
        r["step"] = "code"
    elif step == "code":
        code, problem = check_credit_code(t)
        if problem:
            return _ask(state, ctx, problem)
        taken = ctx.data.subscription_by_code(code) if ctx.data else None
        data["credit_code"] = code
        if taken and (taken.get("channel"), taken.get("user_id")) != (msg.channel, msg.user_id):
            r["step"] = "bind"  # a record that is not this user's: only a binding code or an operator binds it
            return _ask(state, ctx)
        if taken and taken.get("source") == "import":
            return _bound(state, taken, ctx, "这家企业已绑定到您的账号。")
        r["step"] = "date"
    elif step == "bind":
        return _bind(msg, text, state, ctx)
    elif step == "date":
        try:
            value = factmod.parse_date(text, ctx.today, year_needed=True)
        except AnswerError as exc:
            return _ask(state, ctx, str(exc))
        if len(value) != 10:
            return _ask(state, ctx, "请写到具体哪一天（授牌或认定文件的日期），例如：2024年6月1日。")
        measure = ctx.kb.measures[data["city"]]
        start_day = measure.meta.get("in_force_from")
        if start_day and dt.date.fromisoformat(value) < start_day:
            return _ask(state, ctx, f"这个日期早于{measure.citation_title}施行日期（{start_day.isoformat()}），请检查。")
        data["awarded_on"] = value
        r["step"] = "confirm"
    elif step == "confirm":
        if t in YES:
            return _subscribe(msg, state, ctx)
        return _ask(state, ctx, "请回复“确认”订阅，或“取消”。")
    elif step == "change_date":
        return _change_with_date(msg, text, state, ctx)
    elif step == "change_name":
        return _new_name(msg, text, state, ctx)
    elif step == "unsubscribe":
        if t in YES:
            return _unsubscribe_now(state, ctx)
        state.pop("remind")
        return Result([Reply("好的，提醒照常保留。")], state)
    return _ask(state, ctx)


def on_button(msg: Incoming, arg: str, state: dict, ctx: Context) -> Result:
    r = state.get("remind") or {}
    if arg.startswith("city:") and r.get("step") == "city":
        return on_text(msg, arg.split(":", 1)[1], state, ctx)
    if arg == "yes" and r.get("step") in ("confirm", "unsubscribe"):
        return on_text(msg, "确认", state, ctx)
    if arg == "apply" and r.get("step") == "bind":
        return on_text(msg, "申请", state, ctx)
    if arg == "no" and r.get("step"):
        return on_text(msg, "取消", state, ctx)
    return Result([Reply("这个按钮已过期。回复“提醒”订阅，或 /status 查看提醒。")], state)


def check_credit_code(text: str) -> tuple[str, str | None]:
    """The 18-character unified social credit code (GB 32100-2015), checked with its check digit."""
    code = uscc.compact(text.upper().replace("O", "0") if len(text.strip()) == 18 else text.upper())
    try:
        return uscc.validate(code), None
    except InvalidLength:
        return code, f"统一社会信用代码是18位，您输入的是{len(code)}位，请核对营业执照。"
    except InvalidChecksum:
        return code, "这个统一社会信用代码的校验位不对（第18位），可能输错了一位，请对照营业执照重新输入。"
    except InvalidFormat:
        return code, "统一社会信用代码只含数字和大写字母（不含I、O、Z、S、V），请对照营业执照重新输入。"


def _ask(state: dict, ctx: Context, prefix: str = "") -> Result:
    r = state["remind"]
    step, data = r["step"], r["data"]
    lines = [prefix] if prefix else []
    buttons: list[Button] = []
    if step == "city":
        lines.append("贵企业是哪个城市的示范企业？")
        buttons = [Button(m.city_short, f"rm:city:{m.id}") for m in ctx.kb.measures.values()]
    elif step == "name":
        lines.append("请输入企业名称（与营业执照一致）：")
    elif step == "code":
        lines.append("请输入统一社会信用代码（18位，见营业执照）：")
    elif step == "date":
        lines.append("请输入获得示范企业称号的日期（授牌或认定文件日期），例如：2024年6月1日：")
    elif step == "bind":
        lines.append("这家企业已在主管部门的名单中，或已由其他账号订阅。为防止他人冒用，请输入主管部门（工信局）发给贵企业的"
                     f"{BIND_LENGTH}位绑定码；没有绑定码可回复“申请”，由工作人员核实后开通。回复“取消”退出。")
        buttons = [Button("申请人工核实", "rm:apply"), Button("取消", "rm:no")]
    elif step == "confirm":
        measure = ctx.kb.measures[data["city"]]
        lines.append(f"请确认：{measure.city_short}｜{data['name']}｜{data['credit_code']}｜授牌日期 {data['awarded_on']}")
        lines.append(_plan_text(data, ctx))
        lines.append("回复“确认”订阅。我们只保存这些信息用于提醒，随时可回复“取消提醒”或 /forget 删除。")
        buttons = [Button("确认订阅", "rm:yes"), Button("取消", "rm:no")]
    return Result([Reply("\n".join(lines), buttons)], state)


def _plan_text(data: dict, ctx: Context) -> str:
    measure = ctx.kb.measures[data["city"]]
    hours = f"{ctx.send_hours[0]}:00-{ctx.send_hours[1]}:00"
    try:
        s = review_schedule(measure, dt.date.fromisoformat(data["awarded_on"]), ctx.today)
    except DeadlineError as exc:
        return f"提醒安排：{exc}"
    parts = []
    if s.next_review:
        sends = [s.next_review - dt.timedelta(days=d) for d in ctx.leads]
        sends = [d.isoformat() for d in sends if d >= ctx.today]
        parts.append(f"下次复核预计在{s.next_review.isoformat()}，" +
                     (f"将于{'、'.join(sends)}提醒（{hours}）。" if sends else "已来不及按计划提前提醒，请留意主管部门通知。"))
    else:
        parts.append(s.notes[0] if s.notes else "没有可推算的复核日期。")
    if s.title_valid_until and s.title_valid_until >= ctx.today:
        parts.append(f"示范称号预计于{s.title_valid_until.isoformat()}届满，届时也会提醒。")
    example = (ctx.today - dt.timedelta(days=3)).strftime("%Y年%-m月%-d日")
    parts.append(f"发生更名、重组时告诉我（例如“我们更名了，{example}办完手续”），我会计算{_period(measure)}的备案截止日并提醒。")
    until = measure.meta.get("in_force_until")
    if until and until < ctx.today:
        parts.append(f"注意：{measure.citation_title}已于{until.isoformat()}到期，此后的复核以新办法或主管部门通知为准。")
    if ctx.push_window_hours:
        parts.append(window_note(ctx.push_window_hours))
    return "".join(parts)


def window_note(hours: int) -> str:
    """What a subscriber on a channel that can write only after the user's own message must know."""
    return (f"请注意：在这里我只能在您最近一次给我发消息后的{hours}小时内主动发提醒。到期时如果超过了{hours}小时，"
            "提醒会在您下次发消息时一并发给您，主管部门也可能电话联系您；建议不时发一条消息（例如 /status）查看提醒。")


def _subscribe(msg: Incoming, state: dict, ctx: Context) -> Result:
    data = dict(state.pop("remind")["data"])
    state["city"] = data["city"]
    event = Event("subscribe", {**data, "channel": msg.channel, "user_id": msg.user_id})
    return Result([Reply("已订阅提醒。" + _plan_text(data, ctx) + "\n回复 /status 查看提醒。")], state, [event])


# ---- claims of a record the bureau imported (or another account subscribed) -----------------------------
BIND_LENGTH = 10
BIND_TRIES = 5
APPLY_WORDS = ("申请", "申请人工核实", "人工核实", "人工审核", "申请审核")


def _bind(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    """The binding code (or a request for an operator). Nothing about the record is shown before it binds."""
    r = state["remind"]
    data = r["data"]
    t = factmod.clean(text)
    if t in APPLY_WORDS:
        state.pop("remind")
        event = Event("claim", {"credit_code": data["credit_code"], "claimed_name": data.get("name")})
        return Result([Reply("已提交申请。主管部门工作人员核实后即为您开通提醒（通过后回复 /status 可查看）。"
                             "也可联系工信局索取绑定码，回复“提醒”后输入。")], state, [event])
    code = "".join(ch for ch in text.upper() if ch.isalnum())
    if ctx.data and len(code) == BIND_LENGTH and ctx.data.binding_code_valid(data["credit_code"], code):
        state.pop("remind")
        event = Event("claim", {"credit_code": data["credit_code"], "code": code, "claimed_name": data.get("name")})
        sub = ctx.data.subscription_by_code(data["credit_code"]) or {}
        return _bound(state, sub, ctx, "绑定成功。", [event])
    r["tries"] = r.get("tries", 0) + 1
    if r["tries"] >= BIND_TRIES:
        state.pop("remind")
        return Result([Reply("绑定码多次不正确，已退出。请向主管部门（工信局）核实绑定码，或回复“提醒”后选择“申请人工核实”。")],
                      state)
    return _ask(state, ctx, "绑定码不正确或已失效。")


def _bound(state: dict, sub: dict, ctx: Context, head: str, events: list | None = None) -> Result:
    """The record as the bureau keeps it (its name and award date are not changed from chat)."""
    state.pop("remind", None)
    data = {"city": sub.get("city"), "awarded_on": sub.get("awarded_on")}
    lines = [f"{head}{sub.get('name', '')}（授牌 {sub.get('awarded_on', '')}）的提醒将发给您。名称、日期以主管部门名单为准。"]
    if data["city"] in ctx.kb.measures and data["awarded_on"]:
        state["city"] = data["city"]
        lines.append(_plan_text(data, ctx))
    lines.append("回复 /status 查看提醒。")
    return Result([Reply("\n".join(lines))], state, events or [])


# ---- changes (更名、重组) ----------------------------------------------------------------------------
def report_change(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    kind = "restructure" if "重组" in text else "rename"
    dates = [d for d in factmod.find_dates(factmod.normalise(text), ctx.today) if d.value]  # 上周五, 11月2日 …
    state["remind"] = {"step": "change_date", "data": {"kind": kind}}
    named = re.search(r"(?:更名为|改名为|改名叫|名称变更为|改成了?|更名成)[“\"]?([^，,。；;”\"]{2,60}?)[”\"]?(?:了|，|,|。|$)", text)
    if named:
        state["remind"]["data"]["new_name"] = named.group(1).strip()
    if len(dates) == 1:
        return _change_with_date(msg, dates[0].value, state, ctx)
    word = "重组" if kind == "restructure" else "更名"
    example = (ctx.today - dt.timedelta(days=3)).strftime("%Y年%-m月%-d日")
    periods = {_period(m) for m in _change_measures(msg, state, ctx)}
    period = f"从次日起算{periods.pop()}的备案期限；" if len(periods) == 1 else ""
    return Result([Reply(f"{word}的相关手续是哪天办完的？例如：{example}（{period}回复“取消”退出）")], state)


def _period(measure) -> str:
    """30个工作日 / 30日: the measure's own filing period (rules.deadlines)."""
    rule = measure_rules(measure).get("filing")
    return period_text(rule["days"], rule["unit"]) if rule else "规定期限"


def _change_measures(msg: Incoming, state: dict, ctx: Context) -> list:
    """The measures a reported change falls under: the subscribed enterprises' cities, else the city of the
    conversation, else every city's current measure."""
    subs = ctx.data.subscriptions(msg.channel, msg.user_id) if ctx.data else []
    cities = [s["city"] for s in subs if s["city"] in ctx.kb.measures]
    if not cities and state.get("city") in ctx.kb.measures:
        cities = [state["city"]]
    if not cities:
        cities = list(ctx.kb.measures)
    return [ctx.kb.measures[c] for c in dict.fromkeys(cities)]


def _change_with_date(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    data = state["remind"]["data"]
    try:
        value = factmod.read_text("changed_on", text, ctx.today).value  # 11月2日: the last 2 November
        if value is None:
            raise AnswerError("请写手续办完的日期，例如：11月2日或2026年11月2日。")
        if len(value) != 10:
            raise AnswerError("请写到具体哪一天，例如：11月2日或2026年11月2日。")
        changed_on = dt.date.fromisoformat(value)
        measures = _change_measures(msg, state, ctx)
        groups: dict = {}
        for m in measures:  # one answer per distinct period (包头 and 威海 share one; another city may not)
            rule = measure_rules(m).get("filing")
            groups.setdefault((rule["days"], rule["unit"]) if rule else None, []).append(m)
        results = [(filing_deadline(changed_on, measures=ms), ms) for key, ms in groups.items() if key]
    except (AnswerError, DeadlineError, ValueError) as exc:
        return Result([Reply(f"{exc}" if isinstance(exc, AnswerError) else f"无法计算：{exc}")], state)
    if not results:
        return Result([Reply("该办法没有规定更名、重组后的备案期限，请向主管部门咨询。")], state)
    state.pop("remind")
    subs = ctx.data.subscriptions(msg.channel, msg.user_id) if ctx.data else []
    texts = []
    for result, ms in results:
        head = f"【{'、'.join(m.city_short for m in ms)}】" if len(results) > 1 else ""
        texts.append(head + filing_text(result, ctx.kb.measures))
    text_out = "\n".join(texts)
    result = min((r for r, _ in results), key=lambda r: r.deadline)
    if result.deadline < ctx.today:
        text_out += f"\n注意：截止日{result.deadline.isoformat()}已过，请尽快联系所在地工信部门补办备案。"
    if not subs:
        return Result([Reply(text_out + "\n（您还没有订阅提醒；回复“提醒”订阅后，我可以在截止前提醒您。）")], state)
    events = [Event("change", {"subscription_id": s["id"], "changed_on": value, "kind": data["kind"]}) for s in subs]
    names = "、".join(s["name"] for s in subs)
    sends = [d.isoformat() for d in (result.deadline - dt.timedelta(days=n) for n in ctx.leads) if d >= ctx.today]
    plan = f"将于{'、'.join(sends)}提醒" if sends else "截止日已过，不再提醒"
    reply = f"{text_out}\n已为{names}设置备案提醒：{plan}。"
    if data["kind"] == "rename":
        new_name = data.get("new_name")
        if new_name:
            events.extend(Event("rename", {"subscription_id": s["id"], "name": new_name}) for s in subs)
            reply += f"\n企业名称已更新为“{new_name}”。"
        else:
            state["remind"] = {"step": "change_name", "data": {"ids": [s["id"] for s in subs]}}
            reply += "\n更名后的企业名称是什么？（提醒和 /status 将使用新名称；回复“跳过”保留原名称）"
    return Result([Reply(reply)], state, events)


def _new_name(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    ids = state["remind"]["data"]["ids"]
    name = text.strip()
    if factmod.clean(name) in ("跳过", "不用", "skip", "保留", "保留原名"):
        state.pop("remind")
        return Result([Reply("好的，保留原名称。")], state)
    if not 2 <= len(name) <= 60:
        return Result([Reply("企业名称应为2到60个字（回复“跳过”保留原名称）。")], state)
    state.pop("remind")
    return Result([Reply(f"企业名称已更新为“{name}”。回复 /status 查看提醒。")], state,
                  [Event("rename", {"subscription_id": i, "name": name}) for i in ids])


# ---- status and unsubscribe --------------------------------------------------------------------------
def status(msg: Incoming, state: dict, ctx: Context) -> Result:
    subs = ctx.data.subscriptions(msg.channel, msg.user_id) if ctx.data else []
    if not subs:
        return Result([Reply("您还没有订阅提醒。示范企业可回复“提醒”订阅复核和备案提醒。")], state)
    upcoming = ctx.data.upcoming(msg.channel, msg.user_id, 800)
    lines = ["您的提醒："]
    for s in subs:
        measure = ctx.kb.measures.get(s["city"])
        lines.append(f"· {s['name']}（{measure.city_short if measure else s['city']}，授牌 {s['awarded_on']}）")
        mine = [r for r in upcoming if r["subscription_id"] == s["id"]]
        dues = {}
        for r in mine:
            if r.get("status") == "waiting":  # the channel could not reach the user when it was due
                continue
            dues.setdefault((r["kind"], r["due_on"]), []).append(r["send_on"])
        for (kind, due), sends in sorted(dues.items(), key=lambda x: x[0][1]):
            label = {"review": "复核", "filing": "备案截止", "expiry": "办法到期", "title": "称号到期"}.get(kind, kind)
            lines.append(f"  {label} {due}：将于 {'、'.join(sorted(sends))} 提醒")
        waiting = [r for r in mine if r.get("status") == "waiting"]
        if waiting:
            lines.append(f"  另有{len(waiting)}条提醒到期时未能送达，随本条回复补发")
        if not mine:
            lines.append("  暂无待发提醒")
    lines.append("回复“取消提醒”可退订；报告更名、重组请说“我们更名了”。")
    return Result([Reply("\n".join(lines))], state)


def unsubscribe(msg: Incoming, state: dict, ctx: Context) -> Result:
    subs = ctx.data.subscriptions(msg.channel, msg.user_id) if ctx.data else []
    if not subs:
        return Result([Reply("您没有订阅提醒。")], state)
    state["remind"] = {"step": "unsubscribe", "data": {"ids": [s["id"] for s in subs]}}
    names = "、".join(s["name"] for s in subs)
    return Result([Reply(f"确定不再接收{names}的提醒吗？", [Button("确认退订", "rm:yes"), Button("保留", "rm:no")])], state)


def _unsubscribe_now(state: dict, ctx: Context) -> Result:
    ids = state.pop("remind")["data"]["ids"]
    return Result([Reply("已退订，不会再发送提醒。需要时回复“提醒”重新订阅。")], state,
                  [Event("unsubscribe", {"subscription_id": i}) for i in ids])
