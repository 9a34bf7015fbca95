"""The words every dialog shares: yes, no, cancel, and what makes a message a question.

One list, so that 确认 confirms and 算了 cancels the same way in 自测, 提醒 and 删除数据.
"""
from __future__ import annotations

import re
import unicodedata

YES = ("是", "是的", "确认", "确定", "好", "好的", "对", "对的", "没问题", "可以", "行", "嗯", "ok", "yes", "y",
       "确认删除", "确认订阅", "删除")
NO = ("否", "不", "不是", "不用", "不要", "不了", "no", "n", "保留")
CANCEL = ("取消", "退出", "算了", "不了", "结束", "不测了", "退出自测", "cancel", "/cancel")
_QUESTION_RE = re.compile(r"[?？]|吗|[么呢嘛]$|什么|啥|怎么|怎样|如何|多久|多少|多长|(?<![前好十])几[个天年号月次条项]|哪|是否|能不能|可不可以|"
                          r"要不要|是不是|有没有|会不会|需不需要")


def bare(text: str) -> str:
    """Lower case, half-width, without the punctuation around it."""
    return unicodedata.normalize("NFKC", text or "").strip().strip("!！。.~～ ").lower()


def is_yes(text: str) -> bool:
    return bare(text) in YES


def is_no(text: str) -> bool:
    return bare(text) in NO


def is_cancel(text: str) -> bool:
    return bare(text) in CANCEL


def is_question(text: str) -> bool:
    """A message that asks something (更名后多久要备案？), not an answer to a dialog's question."""
    return bool(_QUESTION_RE.search(unicodedata.normalize("NFKC", text or "")))
