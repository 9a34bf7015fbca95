"""The operators' import of awarded enterprises (CSV), idempotent by unified social credit code."""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

from bot.reminders import schedule
from bot.storage import Store
from handlers.remind import check_credit_code
from knowledge.qa import resolve_city
from rules.facts import AnswerError, parse_date

# Column names accepted for each field (English as in CONTRACT.md's style, and the Chinese a bureau's list uses).
COLUMNS = {
    "name": ("name", "企业名称", "名称", "单位名称"),
    "credit_code": ("credit_code", "统一社会信用代码", "信用代码", "社会信用代码"),
    "city": ("city", "城市", "所在城市", "地市", "所在地"),
    "awarded_on": ("awarded_on", "授牌日期", "认定日期", "获评日期", "award_date"),
    "channel": ("channel", "渠道", "联系渠道"),
    "user_id": ("user_id", "用户id", "用户ID", "联系人id", "账号"),
}
REQUIRED = ("name", "credit_code", "city", "awarded_on")
CHANNELS = ("telegram", "wecom", "wechat_kf", "console")


class ImportError_(ValueError):
    """The file as a whole cannot be imported (unreadable, no header, a required column missing)."""


@dataclass
class ImportReport:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    reminders: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)
    codes: list[tuple[str, str, str]] = field(default_factory=list)  # (credit code, name, binding code) with invite
    # rows whose contact was set in chat before the bureau listed them, not confirmed by this file:
    # (credit code, name, "channel:user_id"); reminders go there until an operator checks it
    unconfirmed: list[tuple[str, str, str]] = field(default_factory=list)


def read_rows(path: Path) -> list[tuple[int, dict]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportError_(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_rows(raw, str(path))


def parse_rows(raw: bytes, path: str) -> list[tuple[int, dict]]:
    """The rows of a CSV file's bytes (UTF-8 or GBK), with their line numbers; `path` names it in errors."""
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportError_(f"{path}: not UTF-8 or GBK text (文件不是 UTF-8 或 GBK 编码的文本)")
    try:
        return _rows(csv.DictReader(io.StringIO(text, newline="")), path)
    except csv.Error as exc:
        raise ImportError_(f"{path}: not a readable CSV file (不是可读的 CSV 文件): {exc}") from None


def _rows(reader: csv.DictReader, path: str) -> list[tuple[int, dict]]:
    header = [(h or "").strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    mapping = {}
    for key, names in COLUMNS.items():
        found = next((h for h in header if h.lower() in {n.lower() for n in names}), None)
        if found:
            mapping[key] = found
    missing = [k for k in REQUIRED if k not in mapping]
    if missing:
        raise ImportError_(f"{path}: missing column(s) {', '.join(missing)} (header: {', '.join(header) or 'none'}; "
                           f"缺少必填列：{'、'.join(COLUMNS[k][1] for k in missing)})")
    rows = []
    for row in reader:
        line = reader.line_num
        clean = {k: (row.get(h) or "").strip() for k, h in mapping.items()}
        if any(clean.values()):
            rows.append((line, clean))
    return rows


def validate(row: dict, kb, today: dt.date) -> tuple[dict | None, str | None]:
    code, problem = check_credit_code(row.get("credit_code", ""))
    if problem:
        return None, f"统一社会信用代码 {row.get('credit_code')!r}：{problem}"
    city = resolve_city(kb, row.get("city", ""))
    if not city:
        return None, f"城市 {row.get('city')!r} 不在知识库中"
    try:  # read as the chat reads dates: 2024-06-01, 2024/6/1 (Excel), 2024.6.1, 2024年6月1日
        iso = parse_date(row.get("awarded_on", ""), today, past=False, year_needed=True)
    except AnswerError as exc:
        return None, f"授牌日期 {row.get('awarded_on')!r}：{exc}"
    if len(iso) != 10:
        return None, f"授牌日期 {row.get('awarded_on')!r} 要写到日，例如 2024-06-01"
    awarded = dt.date.fromisoformat(iso)
    if awarded > today:
        return None, f"授牌日期 {awarded} 晚于今天"
    name = row.get("name", "")
    if not 2 <= len(name) <= 60:
        return None, "企业名称为空或过长"
    channel, user_id = (row.get("channel") or "").lower() or None, row.get("user_id") or None
    if channel and channel not in CHANNELS:
        return None, f"渠道 {channel!r} 应为 {'/'.join(CHANNELS)} 或留空"
    if bool(channel) != bool(user_id):
        return None, "渠道和用户ID要么都填，要么都不填"
    return {"credit_code": code, "name": name, "city": city, "awarded_on": awarded.isoformat(),
            "channel": channel, "user_id": user_id, "source": "import"}, None


def import_file(path: Path, store: Store, kb, today: dt.date, leads: tuple[int, ...],
                invite: bool = False) -> ImportReport:
    """Import the bureau's list; with `invite`, a one-time binding code for each new row without a contact
    (its staff claim the record in chat with it)."""
    return import_rows(read_rows(path), store, kb, today, leads, invite)


def import_data(raw: bytes, name: str, store: Store, kb, today: dt.date, leads: tuple[int, ...]) -> ImportReport:
    """The same import from an uploaded file's bytes (the console's upload)."""
    return import_rows(parse_rows(raw, name), store, kb, today, leads)


def import_rows(rows: list[tuple[int, dict]], store: Store, kb, today: dt.date, leads: tuple[int, ...],
                invite: bool = False) -> ImportReport:
    report = ImportReport()
    seen: dict[str, int] = {}
    for line, row in rows:
        sub, problem = validate(row, kb, today)
        if problem:
            report.refused.append((line, problem))
            continue
        if sub["credit_code"] in seen:
            report.refused.append((line, f"与第{seen[sub['credit_code']]}行的统一社会信用代码重复"))
            continue
        seen[sub["credit_code"]] = line
        before = store.subscription_by_code(sub["credit_code"])
        sub_id, outcome = store.upsert_subscription(sub)
        if before and before.get("source") == "chat" and before.get("user_id") and not sub["user_id"]:
            report.unconfirmed.append((sub["credit_code"], sub["name"], f"{before['channel']}:{before['user_id']}"))
        setattr(report, outcome, getattr(report, outcome) + 1)
        if invite and outcome == "new" and not sub["user_id"]:
            report.codes.append((sub["credit_code"], sub["name"], store.issue_binding_code(sub["credit_code"])))
        report.reminders += schedule(store, kb, sub_id, today, leads)
    return report
