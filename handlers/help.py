"""Greeting and help."""
from __future__ import annotations

from handlers.context import Context
from knowledge.kb import place_examples
from handlers.message import Reply, Result


def help_text(ctx: Context) -> str:
    cities = "、".join(dict.fromkeys(m.meta.get("city", {}).get("name", m.id) for m in ctx.kb.measures.values()))
    places = place_examples(ctx.kb.measures)
    first = places[0][0] if places else ""
    second = places[1][0] if len(places) > 1 else first
    return (
        f"您好！我是服务型制造示范企业政策助手，目前收录{cities}的认定管理办法。\n"
        "直接输入问题即可，例如：\n"
        f"· {first}申报示范企业需要什么条件？\n"
        f"· {second}申报要提交哪些材料？\n"
        "· 示范企业更名后多久内要备案？\n"
        f"· {first}办法第三条\n"
        "想知道能不能申报？回复“自测”（或 /check），逐项预判申报条件。\n"
        "已是示范企业？回复“提醒”（或 /remind）订阅复核和更名备案提醒，/status 查看。\n"
        "命令：/help 帮助  /ask 问题  /check 申报自测  /remind 订阅提醒  /status 我的提醒  /city 切换城市  "
        "/cancel 取消  /forget 删除我的数据\n"
        "说明：回答摘自办法原文并注明条款，仅供参考，以主管部门解释为准。"
    )


def ask_example(kb) -> str:
    """申报需要什么条件, with the first city the base holds."""
    places = place_examples(kb.measures)
    return f"{places[0][0] if places else ''}申报需要什么条件"


def place_example(kb) -> str:
    """Districts of the cities the base holds, as examples of a place of registration (荣成市、昆都仑区)."""
    names = [d for _, d in place_examples(kb.measures) if d][:2]
    return "、".join(names) or "所在区县"


def show_help(state: dict, ctx: Context) -> Result:
    return Result([Reply(help_text(ctx))], state)
