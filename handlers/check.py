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

import re

from handlers.context import Context
from handlers.help import place_example
from handlers.message import Button, Event, Incoming, Reply, Result
from knowledge.kb import to_cn_number
from knowledge.numerals import cn_to_int
from knowledge.qa import answer as qa_answer
from knowledge.kb import city_measures, in_force_on
from knowledge.qa import place_resolver, resolve_city
from rules import engine
from rules import facts as factmod
from rules.facts import AnswerError

TRIGGERS = ("自测", "开始自测", "重新自测", "资格自测", "申报自测", "自我评估", "资格预判", "预判", "我要自测", "能否申报")
_TRIGGER_RE = re.compile(r"^(我|我们|我司|我们公司|我们企业|我们厂|我公司|本公司|企业)?(能|可以|能不能|可不可以|是否能|够不够资格)"
                         r"(申报|申请)(吗|么|不|没|嘛)?$")
BACK = ("返回", "上一步", "上一题", "后退", "back")
SKIP = ("跳过", "不知道", "不清楚", "不确定", "skip", "pass")
CANCEL = ("取消", "退出", "退出自测", "结束", "不测了", "cancel")
RESTART = ("重新开始", "重来", "从头开始", "重新测", "restart")
EXPLAIN = ("?", "？", "说明", "解释", "什么意思", "啥意思", "是什么意思", "什么是", "help")
CONFIRM = ("确认", "确定", "查看结论", "结论", "看结论", "没问题", "对", "是", "好", "好的", "ok")
MORE = ("继续", "继续回答", "继续答题", "接着", "接着答")
_REDO_RE = re.compile(r"^(?:重填|重新填|修改|改|更正|重答)第?([0-9一二三四五六七八九十两]+)(?:题|项|个)?$")
PLACE_SUFFIX_RE = re.compile(r"(省|市|区|县|旗|盟|州|镇|乡|开发区|高新区)$")
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
    if resume and active(state) and state["check"].get("facts"):
        return _reply(state, ctx, "继续上次的自测（回复“重新开始”可从头来）。")
    city = state.get("city")
    if city in ctx.kb.measures:  # the conversation's city: its measure in force today
        city = in_force_on(ctx.kb.measures, city, ctx.today)
    city = city if city in engine.available() else None
    state["check"] = {"city": city, "facts": {}, "skipped": [], "history": [], "pending": "registered_in",
                      "phase": "ask", "all": False}
    intro = ("开始申报条件自测：我一次问一个问题，最后给出逐项预判（不是认定结果）。\n"
             "随时可以回复：说明（解释这一题）、跳过、返回、重填第N题、重新开始、取消。")
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


def on_button(msg: Incoming, arg: str, state: dict, ctx: Context) -> Result:
    ck = state.get("check") or {}
    action, _, rest = arg.partition(":")
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
            value = text == "yes"
        else:
            value = factmod.read(fact, text, ctx.today)
    except AnswerError as exc:
        return _unreadable(msg, text, str(exc), state, ctx)
    if value is None:
        return _skip(state, ctx)
    prefix = ""
    if key == "registered_in":
        city = resolve_city(ctx.kb, value, ctx.today)
        if city and ck.get("city") in ctx.kb.measures and ck["city"] in city_measures(ctx.kb.measures, city):
            city = ck["city"]  # the city being checked, whichever of its measures the place resolved to
        if city is None and not _looks_like_place(value, ctx):
            return _unreadable(msg, text, f"请写注册地所在的城市或区市、旗县区名称，例如：{place_example(ctx.kb)}。", state, ctx)
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
    return _next(state, ctx, prefix)


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
    return bool(PLACE_SUFFIX_RE.search(text)) or any(p in text for p in ctx.kb.other_places)


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


def render_card(v: engine.Verdict) -> str:
    """The verdict card: the same text in every channel and in `policybot check`."""
    rs = v.ruleset
    title = VERDICT_TITLE[v.verdict]
    if v.verdict == "incomplete":
        title += f"（还缺{len(v.missing)}项信息）"
    lines = [f"【申报条件自测 · 预判】{rs.city}：{title}",
             f"依据{rs.title and '《' + rs.title + '》'}，预判日期 {v.as_of.isoformat()}"]
    for r in v.results:
        c = r.condition
        if r.status == engine.PASS:
            detail = r.answer or r.reason
        elif r.status == engine.REVIEW:
            detail = "由评审认定" + (f"，可准备：{c.evidence}" if c.evidence else "")
        else:
            detail = r.reason
        if c.judged_by == "review" and r.status != engine.REVIEW:
            detail += "（由评审认定，您的回答仅供参考）"
        lines.append(f"{engine.STATUS_MARK[r.status]} {c.label}：{detail}（{c.where()}）")
    changes = [r for r in v.results if r.status in (engine.FAIL, engine.UNKNOWN) and r.change]
    if changes:
        lines.append("怎样改变结果：")
        for r in changes:
            tip = r.change if r.status == engine.FAIL or not r.reason.startswith("缺少") \
                else f"补充{r.reason.removeprefix('缺少')}后即可判断。"
            lines.append(f"· {r.condition.label}：{tip}")
    lines.extend(v.notes)
    return "\n".join(lines)


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
    proofs = []
    for c in rs.conditions:
        proof = re.sub(r"（第.+?）$", "", c.evidence or "")
        if proof and not any(proof in t for t in listed) and proof not in proofs:
            proofs.append(proof)
    if proofs:
        lines.append("证明各项条件的材料：")
        lines.extend(f"· {p}" for p in proofs)
    lines.append(f"以上依据{'《' + rs.title + '》'}，具体以当年申报通知为准。")
    return "\n".join(lines)
