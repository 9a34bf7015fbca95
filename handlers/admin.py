"""Operator commands in chat (/stats, /unanswered, /due), for the users listed in POLICYBOT_ADMINS only."""
from __future__ import annotations

from handlers.context import Context
from handlers.message import Incoming, Reply, Result

REFUSAL = "抱歉，这个命令仅限主管部门管理员使用。"
KIND = {"review": "复核", "filing": "备案截止", "expiry": "办法到期", "title": "称号到期"}


def handle(msg: Incoming, name: str, arg: str, state: dict, ctx: Context) -> Result:
    if not ctx.is_admin or ctx.data is None:
        return Result([Reply(REFUSAL)], state)
    days = _days(arg, 7 if name == "due" else 30)
    if days is None:
        return Result([Reply(f"用法：/{name} [天数]，例如：/{name} 7")], state)
    if name == "stats":
        s = ctx.data.stats(days)
        text = (f"近{days}天：提问 {s['questions']} 次（未能回答 {s['declined']} 次）；自测 {s['checks_started']} 次"
                f"（得出结论 {s['checks_finished']} 次）；发送提醒 {s['reminders_sent']} 条。\n"
                f"当前：订阅企业 {s['subscribers']} 家（可联系 {s['subscribers_reachable']} 家），待发提醒 "
                f"{s['reminders_pending']} 条。")
    elif name == "unanswered":
        rows = ctx.data.unanswered(min(days, 50))
        text = "近期未能回答的问题（按次数）：\n" + "\n".join(
            f"{i}. {r['question'][:60]}（{r['times']}次，最近 {r['last_asked'][:10]}）"
            + (f"\n   原因：{r['reason']}" + (f"｜{r['trace'][:80]}" if r.get('trace') else "") if r.get("reason") else "")
            for i, r in enumerate(rows, 1)) \
            if rows else "没有未能回答的问题。"
    else:
        rows = ctx.data.upcoming(None, None, days)
        text = f"未来{days}天内待发的提醒（{len(rows)}条）：\n" + "\n".join(
            f"{r['send_on']} {r['name']} {KIND.get(r['kind'], r['kind'])} {r['due_on']}"
            f"（{r['channel'] or '无联系渠道'}）" for r in rows[:30]) if rows else f"未来{days}天内没有待发的提醒。"
        if len(rows) > 30:
            text += f"\n……另有{len(rows) - 30}条，完整列表请用 policybot reminders due --days {days}。"
    return Result([Reply(text)], state)


def _days(arg: str, default: int) -> int | None:
    arg = (arg or "").strip().removesuffix("天")
    if not arg:
        return default
    return int(arg) if arg.isdigit() and 0 < int(arg) <= 3660 else None
