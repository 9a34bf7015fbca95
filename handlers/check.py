"""The eligibility self-check: one question at a time, then a summary, then the verdict card.

State (state["check"], stored in SQLite by the runtime, so a restart resumes where the user was):
  city      the measure whose rules apply (from the registration place, or the conversation's city)
  facts     answers read so far (typed values; None for skipped ones)
  skipped   facts answered with 跳过 / 不知道
  history   facts in the order answered (for 返回)
  pending   the fact asked now, or None
  phase     ask | summary | done
  all       after a failing condition the user asked to go on with the remaining questions
The rules and the engine decide what to ask (rules/engine.py); this module only talks.
"""
from __future__ import annotations

import datetime as dt
import re

from handlers import words
from handlers.context import Context
from handlers.direct import looks_like_place, place_of
from handlers.help import place_example
from handlers.message import Button, Event, Incoming, Reply, Result
from knowledge.kb import to_cn_number
from knowledge.numerals import cn_to_int
from knowledge.qa import answer as qa_answer
from knowledge.kb import city_measures, in_force_on
from knowledge.qa import place_resolver
from rules import engine
from rules import facts as factmod
from rules.facts import AnswerError

TRIGGERS = ("自测", "开始自测", "重新自测", "资格自测", "申报自测", "自我评估", "资格预判", "预判", "我要自测", "能否申报")
_TRIGGER_RE = re.compile(r"^(我|我们|我司|我们公司|我们企业|我们厂|我公司|本公司|企业)?(能|可以|能不能|可不可以|是否能|够不够资格)"
                         r"(申报|申请)(吗|么|不|没|嘛)?$")
BACK = ("返回", "上一步", "上一题", "后退", "back")
SKIP = ("跳过", "不知道", "不清楚", "不确定", "skip", "pass")
CANCEL = words.CANCEL
RESTART = ("重新开始", "重来", "从头开始", "重新测", "restart")
EXPLAIN = ("?", "？", "说明", "解释", "什么意思", "啥意思", "是什么意思", "什么是", "help")
CONFIRM = words.YES + ("查看结论", "结论", "看结论")
MORE = ("继续", "继续回答", "继续答题", "接着", "接着答")
_REDO_RE = re.compile(r"^(?:重填|重新填|修改|改|更正|重答)第?([0-9一二三四五六七八九十两]+)(?:题|项|个)?$")
VERDICT_TITLE = {"eligible": "✅ 符合申报的基本条件", "ineligible": "❌ 不符合申报条件",
                 "incomplete": "❔ 还不能判断"}


def is_trigger(text: str) -> bool:
    bare = text.strip().strip("!！?？。.~～ ")
    return bare in TRIGGERS or bool(_TRIGGER_RE.match(bare))


def active(state: dict) -> bool:
    return (state.get("check") or {}).get("phase") in ("ask", "summary")


def wants_to_correct(state: dict, text: str) -> bool:
    """重填第N题 after the verdict card reopens the finished self-check."""
    return (state.get("check") or {}).get("phase") == "done" and bool(_REDO_RE.match(factmod.clean(text)))


# ---- entry points ----------------------------------------------------------------------------------
def start(msg: Incoming, state: dict, ctx: Context, resume: bool = True) -> Result:
    pre = state.pop("prefill", None) or {}
    if pre.get("on") and pre["on"] < (ctx.today - dt.timedelta(days=1)).isoformat():
        pre = {}  # what was said more than a day ago is not assumed still true
    given = {k: v for k, v in (pre.get("facts") or {}).items() if k in factmod.load_facts() and v is not None}
    said = _said(given)
    if resume and active(state) and state["check"].get("facts"):
        for key, value in given.items():
            _set(state["check"], key, value)
        if given and state["check"]["phase"] == "ask":
            return _next(state, ctx, f"已记下：{said}。继续上次的自测。")
        return _reply(state, ctx, "继续上次的自测（回复“重新开始”可从头来）。")
    city = pre.get("city") or state.get("city")  # the city the facts were said about, else the conversation's
    if city in ctx.kb.measures:  # its measure in force today
        city = in_force_on(ctx.kb.measures, city, ctx.today)
    city = city if city in engine.available() else None
    state["check"] = {"city": city, "facts": dict(given), "skipped": [], "history": list(given),
                      "pending": "registered_in", "phase": "ask", "all": False}
    intro = ("开始申报条件自测：我一次问一个问题，最后给出逐项预判（不是认定结果）。\n"
             "随时可以回复：说明（解释这一题）、跳过、返回、重填第N题、重新开始、取消。")
    if given:
        intro += f"\n您已经说过的不再问：{said}。"
    return _reply(state, ctx, intro, event=Event("check", {"stage": "start", "city": city}))


def on_text(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    ck = state["check"]
    t = factmod.clean(text)
    if t in CANCEL:
        return cancel(state)
    if t in RESTART:
        return start(msg, state, ctx, resume=False)
    if t in BACK:
        return _back(state, ctx)
    m = _REDO_RE.match(t)
    if m:
        return _redo(state, ctx, m.group(1))
    if ck["phase"] == "summary":
        if t in CONFIRM:
            return verdict(state, ctx)
        if t in MORE:
            return _more(state, ctx)
        return _reply(state, ctx, "回复“确认”查看结论，或“重填第N题”修改某一题。")
    if t in EXPLAIN or (t.endswith(("什么意思", "啥意思", "怎么算")) and len(t) <= 12):
        return _explain(state, ctx)
    if t in SKIP:
        return _skip(state, ctx)
    return _answer(msg, text, state, ctx)


def _said(facts: dict) -> str:
    defs = factmod.load_facts()
    return "，".join(f"{defs[k].name}{factmod.show(defs[k], v)}" for k, v in facts.items())


def on_button(msg: Incoming, arg: str, state: dict, ctx: Context) -> Result:
    ck = state.get("check") or {}
    action, _, rest = arg.partition(":")
    if action == "prefill":
        if not state.get("prefill"):
            return Result([Reply("这个按钮已过期。回复“自测”可以开始申报条件自测。")], state)
        return start(msg, state, ctx)
    if action == "restart":
        return start(msg, state, ctx, resume=False)
    if action == "docs" and ck.get("city"):
        return _docs(state, ctx)
    if not active(state):
        return Result([Reply("这次自测已经结束。回复“自测”可以重新开始。")], state)
    if action == "verdict" and ck["phase"] == "summary":
        return verdict(state, ctx)
    if action == "more" and ck["phase"] == "summary":
        return _more(state, ctx)
    if action == "city" and rest in engine.available() and ck.get("pending") == "registered_in":
        ck["city"] = state["city"] = rest
        ck["facts"]["registered_in"] = None
        if "registered_in" not in ck["skipped"]:
            ck["skipped"].append("registered_in")
        return _next(state, ctx, f"好的，按{ctx.kb.measures[rest].city_short}的办法自测，注册地一项按“待确认”处理。")
    if action == "skip" and rest == ck.get("pending"):
        return _skip(state, ctx)
    if action == "a":
        key, _, value = rest.partition(":")
        if key == ck.get("pending"):
            return _answer(msg, value, state, ctx)
    return _reply(state, ctx, "这个按钮已过期。")


def accepts(text: str, state: dict, ctx: Context) -> bool:
    """Would the self-check take this text as its answer? (Otherwise a question is answered instead.)"""
    ck = state.get("check") or {}
    t = factmod.clean(text)
    if t in CANCEL or t in RESTART or t in BACK or t in SKIP or _REDO_RE.match(t):
        return True
    if ck.get("phase") != "ask" or not ck.get("pending"):
        return t in CONFIRM or t in MORE
    if t in EXPLAIN or (t.endswith(("什么意思", "啥意思", "怎么算")) and len(t) <= 12):
        return True
    key = ck["pending"]
    if key == "registered_in":
        return _exact_place(ctx, t)
    try:
        return factmod.read(_facts_def(key), text, ctx.today) is not None
    except AnswerError:
        return False


def _exact_place(ctx: Context, text: str) -> bool:
    """A place name and nothing else (荣成市, 威海), not a sentence that names one."""
    t = text.strip().lower()
    return t in ctx.kb.measures or bool(ctx.kb.places.get(t) or ctx.kb.places.get(t.removesuffix("市"))) \
        or (len(t) <= 12 and _looks_like_place(t, ctx))


def prompt(state: dict, ctx: Context) -> Result:
    """The question under way, asked again."""
    return _reply(state, ctx)


def cancel(state: dict) -> Result:
    state.pop("check", None)
    return Result([Reply("已退出自测，本次填写的内容已清除。需要时回复“自测”重新开始。")], state)


# ---- steps -----------------------------------------------------------------------------------------
def _facts_def(key: str) -> factmod.Fact:
    return factmod.load_facts()[key]


def _ruleset(state: dict) -> engine.Ruleset | None:
    city = state["check"].get("city")
    return engine.load(city) if city else None


def _city_of(ctx: Context, state: dict):
    """Places resolved for the in_city test: one of the checked measure's city is that measure."""
    return place_resolver(ctx.kb, (state.get("check") or {}).get("city") or "", ctx.today)


def _evaluate(state: dict, ctx: Context) -> engine.Verdict:
    ck = state["check"]
    return engine.evaluate(_ruleset(state), ck["facts"], ctx.today, _city_of(ctx, state), interview=True,
                           skipped=ck["skipped"])


def _number_of(state: dict, key: str) -> int:
    rs = _ruleset(state)
    questions = rs.questions if rs else ["registered_in"]
    return questions.index(key) + 1 if key in questions else 0


def _answer(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    ck = state["check"]
    key = ck["pending"]
    fact = _facts_def(key)
    try:
        if fact.type == "bool" and text in ("yes", "no"):
            read = factmod.Reading(text == "yes")
        else:
            read = factmod.reading(fact, text, ctx.today)
    except AnswerError as exc:
        return _unreadable(msg, text, str(exc), state, ctx)
    value = read.value
    if value is None:
        return _skip(state, ctx)
    # a range or an estimate is recorded by its lower bound, and the user is told so
    prefix = f"已记为{factmod.show(fact, value)}（{read.note}）。" if read.note else ""
    if key == "registered_in":
        where = place_of(ctx.kb, ctx.today)(value)  # a measure id, "other", or None (不在…, a province: not one place)
        if where is None:
            return _unreadable(msg, text, f"请写注册地所在的城市或区市、旗县区名称，例如：{place_example(ctx.kb)}。", state, ctx)
        city = None if where == "other" else where
        if city and ck.get("city") in ctx.kb.measures and ck["city"] in city_measures(ctx.kb.measures, city):
            city = ck["city"]  # the city being checked, whichever of its measures the place resolved to
        if city in engine.available() and city != ck.get("city"):
            if ck.get("city"):
                prefix = f"注册地在{ctx.kb.measures[city].city_short}，改按{ctx.kb.measures[city].city_short}的办法自测。"
            ck["city"] = city
            state["city"] = city
        elif city is not None and city not in engine.available():  # a measure in the base without rules yet
            state.pop("check")
            return Result([Reply(f"{ctx.kb.measures[city].city_short}的办法已收录，但还没有整理自测规则。"
                                 f"可以直接问申报条件，例如：{ctx.kb.measures[city].city_short}申报需要什么条件？")], state)
        elif city is None:  # registered outside every covered city: no measure here applies to it
            state.pop("check")
            covered = "、".join(dict.fromkeys(m.meta.get("city", {}).get("name", m.id) for m in ctx.kb.measures.values()))
            rules = [engine.load(c) for c in engine.available() if c in ctx.kb.measures]
            basis = "；".join(f"{rs.cite(rs.conditions[0].article)}要求在{rs.city}依法注册" for rs in rules
                             if rs.conditions and rs.conditions[0].id == "registered")
            return Result([Reply(f"目前只能按{covered}的办法自测。注册在“{value}”的企业不在这些城市的市级示范申报范围内"
                                 f"（{basis}），请关注注册地当地工信部门的政策。")], state)
    _set(ck, key, value)
    also = _also_said(ck, key, text, ctx)
    if also:
        prefix = (prefix + "\n" if prefix else "") + f"也记下了：{_said(also)}（不再问）。"
    return _next(state, ctx, prefix)


def _also_said(ck: dict, key: str, text: str, ctx: Context) -> dict:
    """Other facts the answer gives (主营3000万，服务收入400万，去年增长了15%): recorded, so they are not asked."""
    if not re.search(r"[，,；;。]", text):
        return {}
    rs = engine.load(ck["city"]) if ck.get("city") in engine.available() else None
    if rs is None:
        return {}
    found = factmod.facts_in(text, ctx.today, engine.thresholds([rs]))
    also = {k: r.value for k, r in found.facts.items()
            if k != key and k in rs.questions and k not in ck["facts"] and not (r.inexact and rs.facts[k].type == "date")}
    for k, v in also.items():
        _set(ck, k, v)
    return also


def _set(ck: dict, key: str, value) -> None:
    ck["facts"][key] = value
    if key in ck["skipped"]:
        ck["skipped"].remove(key)
    if key in ck["history"]:
        ck["history"].remove(key)
    ck["history"].append(key)


def _skip(state: dict, ctx: Context) -> Result:
    ck = state["check"]
    key = ck["pending"]
    if key == "registered_in" and not ck.get("city"):
        buttons = [Button(m.city_short, f"ck:city:{m.id}") for m in ctx.kb.measures.values()
                   if m.id in engine.available()]
        return Result([Reply(f"需要先知道按哪个城市的办法自测：请写注册地（例如：{place_example(ctx.kb)}），或选择城市。", buttons)],
                      state)
    ck["facts"][key] = None
    if key not in ck["skipped"]:
        ck["skipped"].append(key)
    if key in ck["history"]:
        ck["history"].remove(key)
    ck["history"].append(key)
    return _next(state, ctx, "已跳过，这一项按“待确认”处理。")


def _back(state: dict, ctx: Context) -> Result:
    ck = state["check"]
    if not ck["history"]:
        return _reply(state, ctx, "已经是第一题了。")
    key = ck["history"].pop()
    ck["facts"].pop(key, None)
    if key in ck["skipped"]:
        ck["skipped"].remove(key)
    ck["pending"], ck["phase"] = key, "ask"
    return _reply(state, ctx, "好的，回到上一题。")


def _redo(state: dict, ctx: Context, number_text: str) -> Result:
    ck = state["check"]
    rs = _ruleset(state)
    n = cn_to_int(number_text)
    questions = rs.questions if rs else ["registered_in"]
    if n is None or not 1 <= n <= len(questions):
        return _reply(state, ctx, f"没有第{number_text}题，题号是1到{len(questions)}。")
    key = questions[n - 1]
    if key not in ck["facts"] and key != ck.get("pending"):
        return _reply(state, ctx, f"第{n}题还没有回答过，不用重填。")
    ck["facts"].pop(key, None)
    if key in ck["skipped"]:
        ck["skipped"].remove(key)
    ck["pending"], ck["phase"] = key, "ask"
    return _reply(state, ctx, f"好的，重填第{n}题。")


def _more(state: dict, ctx: Context) -> Result:
    state["check"]["all"] = True
    return _next(state, ctx, "好的，继续回答其余问题。")


def _next(state: dict, ctx: Context, prefix: str = "") -> Result:
    ck = state["check"]
    v = _evaluate(state, ctx)
    remaining = [k for k in engine.open_facts(v, ck["skipped"]) if k not in ck["facts"]]
    nxt = remaining[0] if ck.get("all") and remaining else v.next_fact
    if not nxt and v.verdict != "ineligible":  # a fact that only adds a note (a priority) is asked last
        nxt = next((k for k in v.ruleset.note_facts if k not in ck["facts"]), None)
    if nxt:
        ck["pending"], ck["phase"] = nxt, "ask"
        return _reply(state, ctx, prefix)
    ck["pending"], ck["phase"] = None, "summary"
    return _summary(state, ctx, v, prefix, more=bool(remaining) and not ck.get("all"))


def _unreadable(msg: Incoming, text: str, hint: str, state: dict, ctx: Context) -> Result:
    """An answer that does not fit: a policy question gets its answer; anything else is asked again."""
    if len(text) >= 6 and any(ch in text for ch in "?？吗么啥什怎哪几多"):
        a = qa_answer(ctx.kb, text, ctx.today, state["check"].get("city"))
        if not a.abstained:
            return _reply(state, ctx, a.answer + "\n\n（自测还在进行，请接着回答：）")
    return _reply(state, ctx, f"没看懂这个回答。{hint}")


def _looks_like_place(text: str, ctx: Context) -> bool:
    return looks_like_place(ctx.kb, text)


# ---- what the user sees ----------------------------------------------------------------------------
def _place_names(ctx: Context, measure: str | None) -> str:
    m = ctx.kb.measures.get(measure) if measure else None
    if m is not None:
        districts = [str(d) for d in (m.meta.get("city") or {}).get("districts") or [] if str(d).endswith(("区", "县", "市", "旗"))]
        return "、".join(districts[:3])
    return place_example(ctx.kb)



def _reply(state: dict, ctx: Context, prefix: str = "", event: Event | None = None) -> Result:
    """The prefix (if any), then the pending question with its number, example and buttons."""
    ck = state["check"]
    if ck["phase"] == "summary":
        return _summary(state, ctx, _evaluate(state, ctx), prefix, more=False)
    if ck["phase"] != "ask" or not ck.get("pending"):
        return Result([Reply(prefix or "回复“自测”开始申报条件自测。")], state)
    key = ck["pending"]
    fact = _facts_def(key)
    rs = _ruleset(state)
    city = rs.city if rs else "本市"
    n = _number_of(state, key)
    total = len(rs.questions) if rs else 0
    head = f"第{n}题" + (f"（共{total}题，只问影响结论的）" if n == 1 and total else "")
    lines = [prefix] if prefix else []
    lines.append(f"{head}：{fact.ask.format(city=city)}")
    if fact.type == "place":  # districts of the city being checked (or of the cities held), not a fixed list
        names = _place_names(ctx, rs.measure if rs else None)
        if names:
            lines.append(f"例如：{names}")
    elif fact.example:
        lines.append(f"例如：{fact.example}")
    buttons: list[Button] = []
    if fact.type == "bool":
        buttons = [Button("是", f"ck:a:{key}:yes"), Button("否", f"ck:a:{key}:no")]
    elif fact.type == "choice":
        buttons = [Button(label, f"ck:a:{key}:{k}") for k, label in fact.choices.items()]
    if fact.type not in ("int", "percent", "share", "amount"):  # typed numbers must not press numbered buttons
        buttons.append(Button("跳过", f"ck:skip:{key}"))
    result = Result([Reply("\n".join(lines), buttons)], state)
    if event:
        result.events.append(event)
    return result


def _explain(state: dict, ctx: Context) -> Result:
    ck = state["check"]
    fact = _facts_def(ck["pending"])
    rs = _ruleset(state)
    where = ""
    if rs:
        conds = rs.fact_articles(fact.key)
        if conds:
            cites = []
            for c in conds:
                cite = f"{rs.cite(c.article)}" + (f"第{c.item}项" if c.item and c.item[0].isdigit() else (c.item or ""))
                if cite not in cites:
                    cites.append(cite)
            where = "\n依据：" + "；".join(cites)
    return _reply(state, ctx, f"“{fact.name}”：{fact.explain}{where}")


def _summary(state: dict, ctx: Context, v: engine.Verdict, prefix: str, more: bool) -> Result:
    ck = state["check"]
    rs = v.ruleset
    lines = [prefix] if prefix else []
    lines.append(f"请核对您的回答（{rs.city}）：")
    for i, key in enumerate(rs.questions, 1):
        if key in ck["facts"]:
            fact = _facts_def(key)
            shown = "跳过" if key in ck["skipped"] else factmod.show(fact, ck["facts"][key])
            lines.append(f"{i}. {fact.name}：{shown}")
    lines.append("无误请回复“确认”查看结论；要修改请回复“重填第N题”。")
    buttons = [Button("查看结论", "ck:verdict")]
    if more:
        lines.append("已有条件不符合，其余问题不影响结论；想逐项了解可回复“继续”。")
        buttons.append(Button("继续回答其余问题", "ck:more"))
    buttons.append(Button("重新开始", "ck:restart"))
    return Result([Reply("\n".join(lines), buttons)], state)


def verdict(state: dict, ctx: Context) -> Result:
    ck = state["check"]
    v = _evaluate(state, ctx)
    ck["phase"], ck["pending"] = "done", None
    buttons = [Button("📄 申报材料清单", "ck:docs"), Button("🔁 重新自测", "ck:restart")]
    event = Event("check", {"stage": "verdict", "city": v.ruleset.measure, "verdict": v.verdict})
    return Result([Reply(render_card(v), buttons)], state, [event])


CARD_LINES = 15  # at most, before the checklist, on chat channels
CARD_MARK = {engine.PASS: "✅", engine.FAIL: "❌", engine.UNKNOWN: "❔", engine.REVIEW: "📝"}


def render_card(v: engine.Verdict) -> str:
    """The verdict card: the same text in every channel and in `policybot check`.

    Validity first, then one line per condition with the enterprise's own answer and what it means (the
    plain yes/no conditions that hold share one line), what would change the result, and the notes; kept
    to 15 lines or so on chat channels, the proofs are in the checklist (each listed once).
    """
    rs = v.ruleset
    title = VERDICT_TITLE[v.verdict]
    if v.verdict == "incomplete":
        title += f"（还缺{len(v.missing)}项信息）"
    lines = [f"【申报条件自测 · 预判】{rs.city}：{title}（{v.as_of.isoformat()}）"]
    status_notes = [n for n in v.notes if n.startswith("注意：")]
    lines.extend(status_notes)
    plain = [r for r in v.results if r.status == engine.PASS and _is_plain(r.condition)]
    if len(plain) < 2:
        plain = []
    missing = [r for r in v.results if r.status == engine.UNKNOWN and not r.answer]  # nothing of theirs to show
    if len(missing) < 2:
        missing = []
    for r in v.results:
        if missing and r is missing[0]:
            names = "、".join(_short(m.condition.label) for m in missing)
            lines.append(f"❔ 还未回答：{names}（{_items([m.condition for m in missing])}）")
        if r in missing:
            continue
        if plain and r is plain[0]:
            said = "；".join(_answer_word(v, p.condition) for p in plain)
            lines.append(f"✅ {said}（{_items([p.condition for p in plain])}）")
        if r in plain:
            continue
        c = r.condition
        sep = " —— " if set(c.test or {}) == {"fact", "is"} and v.facts.get(c.test["fact"]) is not None else "："
        lines.append(f"{CARD_MARK[r.status]} {c.label}{sep}{_detail(v, r)}（{c.where()}）")
    # what would change the result: for a failing verdict the failed conditions only (what is still unknown
    # cannot save it), otherwise what is missing, in one line
    failed = [r for r in v.results if r.status == engine.FAIL and r.change]
    unknown = [r for r in v.results if r.status == engine.UNKNOWN and r.condition.judged_by != "review"]
    tips_at = len(lines)
    if failed:
        lines.append("怎样改变结果：")
        lines.extend(f"· {r.change}" for r in failed)
    elif unknown:
        names = []
        for r in unknown:
            for k in r.needs or []:
                name = f"“{v.ruleset.facts[k].name}”"
                if name not in names:
                    names.append(name)
        lines.append("怎样改变结果：补充" + "、".join(names) + "后即可判断。" if names else
                     "怎样改变结果：" + "；".join(r.change for r in unknown if r.change))
    others = [n for n in v.notes if n not in status_notes and not n.startswith("以下由专家评审认定")]
    lines.append(f"依据《{rs.title}》。" + "".join(others))
    if len(lines) > CARD_LINES and failed:  # many failures: the ways to change the result in one line
        tips = "；".join(f"{i}. {r.change.rstrip('。')}" for i, r in enumerate(failed, 1))
        lines[tips_at:tips_at + 1 + len(failed)] = [f"怎样改变结果：{tips}。"]
    return "\n".join(lines)


def _is_plain(c: engine.Condition) -> bool:
    return bool(c.test) and set(c.test) == {"fact", "is"} and c.judged_by != "review"


def _short(label: str) -> str:
    return re.split(r"[，,（(]", label)[0]


def _items(conds: list[engine.Condition]) -> str:
    """第十二条第1、2、3项 for conditions of one article's items (each article once)."""
    by_article: dict[int, list[str]] = {}
    for c in conds:
        items = by_article.setdefault(c.article, [])
        for i in (c.item or "").split("、"):
            if i and i not in items:
                items.append(i)
    out = []
    for article, items in by_article.items():
        items.sort(key=lambda i: (len(i), i))
        if items and all(i.isdigit() for i in items):
            out.append(f"第{to_cn_number(article)}条第{'、'.join(items)}项")
        else:
            out.append(f"第{to_cn_number(article)}条{''.join(items)}")
    return "；".join(out)


def _answer_word(v: engine.Verdict, c: engine.Condition) -> str:
    """The enterprise's own yes/no as it would say it (有/没有, 是/否)."""
    key = c.test["fact"]
    value = v.facts.get(key)
    fact = v.ruleset.facts[key]
    words = [w.strip() for w in fact.example.split("/")]
    yes = "有" if "有" in words else "是"
    no = "没有" if "没有" in words else "否"
    return f"{fact.name}：{yes if value else no}"


def _detail(v: engine.Verdict, r: engine.ConditionResult) -> str:
    c = r.condition
    test = c.test or {}
    if r.status == engine.REVIEW:
        return "由评审认定"
    if "any_of" in test:
        parts = []
        for t in test["any_of"]:
            if v.facts.get(t.get("fact")) is None:
                continue
            status, _, reason = engine.check_test(v.ruleset, t, v.facts, v.as_of)
            parts.append(reason)
        detail = "；".join(parts) or r.reason
        if r.status == engine.PASS:
            detail += "，满足其一即可"
        elif r.status == engine.UNKNOWN and parts:
            detail += "；" + r.reason
    elif set(test) == {"fact", "is"}:
        value = v.facts.get(test["fact"])
        detail = r.reason if value is None else _answer_word(v, c)
    elif "years_before" in test and r.answer:
        detail = f"{r.answer}成立，{r.reason}"
    elif "ban" in test and r.status == engine.PASS:
        detail = r.reason + "，不受限制" if "未曾" in r.reason else r.reason
    else:
        detail = r.reason or r.answer
    if c.judged_by == "review":
        detail = "由评审认定（未回答）" if r.status == engine.UNKNOWN else detail + "（由评审认定，您的回答仅供参考）"
    return detail


def _docs(state: dict, ctx: Context) -> Result:
    rs = _ruleset(state)
    return Result([Reply(render_checklist(rs))], state)


def render_checklist(rs: engine.Ruleset) -> str:
    lines = [f"申报材料清单（{rs.city}）："]
    listed = []
    for e in rs.evidence:
        item = e.get("item") or ""
        lines.append(f"· {e['text']}（第{to_cn_number(e['article'])}条{item}）")
        listed.append(e["text"])
    proofs = _proofs([re.sub(r"（第.+?）$", "", c.evidence or "") for c in rs.conditions], listed)
    if proofs:
        lines.append("证明各项条件的材料：")
        lines.extend(f"· {p}" for p in proofs)
    lines.append(f"以上依据{'《' + rs.title + '》'}，具体以当年申报通知为准。")
    return "\n".join(lines)


def _proofs(evidence: list[str], listed: list[str]) -> list[str]:
    """Each proof once: 营业执照复印件, 营业执照（经营范围）and 营业执照（成立日期）are one document."""
    heads: dict[str, dict] = {}
    for text in evidence:
        if not text or any(text in t for t in listed):
            continue
        for piece in (re.split(r"及|；", text) if "、" not in text else [text]):
            piece = piece.strip()
            if not piece:
                continue
            m = re.match(r"^(.*?)(复印件)?(?:（(.+?)）)?$", piece)
            head, copy, note = m.group(1), m.group(2), m.group(3)
            entry = heads.setdefault(head, {"copy": False, "notes": []})
            entry["copy"] |= bool(copy)
            if note and note not in entry["notes"]:
                entry["notes"].append(note)
    out = []
    for head, e in heads.items():
        if any(head in t for t in listed):
            continue
        out.append(head + ("复印件" if e["copy"] else "") + (f"（{'、'.join(e['notes'])}）" if e["notes"] else ""))
    return out
