"""Settings, declared once: from the environment and a `.env` file in the working directory.

The environment wins over `.env`. `Settings.load()` checks types (a port is a number); `problems()`
says, per channel, what is missing for it to run. The console needs nothing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


@dataclass(frozen=True)
class Settings:
    db: Path = Path("data/policybot.db")
    kb: Path | None = None  # default: kb.pickle beside the database
    host: str = "127.0.0.1"
    port: int = 8080
    admins: frozenset[str] = field(default_factory=frozenset)
    telegram_token: str | None = None
    telegram_api_base_url: str | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: str | None = None
    wecom_corp_id: str | None = None
    wecom_agent_id: str | None = None
    wecom_secret: str | None = None
    wecom_token: str | None = None
    wecom_aes_key: str | None = None
    wecom_api_base_url: str | None = None
    reminder_leads: tuple[int, ...] = (30, 7, 1, 0)  # days before a deadline (0 = on the day)
    send_hours: tuple[int, int] = (9, 18)  # reminders go out from 09:00 to before 18:00, Asia/Shanghai
    sweep_seconds: float = 60.0
    idle_timeout: float = 15.0  # seconds an HTTP connection may sit idle or half-sent (headers, body) before it is closed
    console_secure_cookie: bool = False  # the console's cookies Secure even without X-Forwarded-Proto: https

    @property
    def kb_path(self) -> Path:
        return self.kb or self.db.parent / "kb.pickle"

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_token)

    @property
    def wecom_enabled(self) -> bool:
        return bool(self.wecom_corp_id and self.wecom_agent_id and self.wecom_secret)

    def is_admin(self, channel: str, user_id: str) -> bool:
        return f"{channel}:{user_id}" in self.admins

    @classmethod
    def load(cls, environ: dict[str, str] | None = None, env_file: str | Path = ".env") -> "Settings":
        values: dict[str, str] = {}
        if env_file and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            value = (values.get(name) or "").strip()
            return value or None

        port_text = get("POLICYBOT_PORT") or "8080"
        try:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            raise ConfigError(f"POLICYBOT_PORT must be a port number (1-65535), not {port_text!r}") from None
        admins = frozenset(a.strip() for a in (get("POLICYBOT_ADMINS") or "").split(",") if a.strip())
        for a in admins:
            if ":" not in a:
                raise ConfigError(f"POLICYBOT_ADMINS entries are channel:user_id, not {a!r}")
        kb = get("POLICYBOT_KB")
        leads_text = get("POLICYBOT_REMINDER_LEADS") or "30,7,1,0"
        try:
            leads = tuple(sorted({int(x) for x in leads_text.split(",") if x.strip()}, reverse=True))
            if not leads or min(leads) < 0 or max(leads) > 366:
                raise ValueError
        except ValueError:
            raise ConfigError(f"POLICYBOT_REMINDER_LEADS must be days before a deadline, e.g. 30,7,1,0, not "
                              f"{leads_text!r}") from None
        hours_text = get("POLICYBOT_SEND_HOURS") or "9-18"
        try:
            start, end = (int(x) for x in hours_text.split("-"))
            if not 0 <= start < end <= 24:
                raise ValueError
        except ValueError:
            raise ConfigError(f"POLICYBOT_SEND_HOURS must be two hours like 9-18, not {hours_text!r}") from None
        sweep_text = get("POLICYBOT_SWEEP_SECONDS") or "60"
        try:
            sweep = float(sweep_text)
            if not 0.05 <= sweep <= 3600:
                raise ValueError
        except ValueError:
            raise ConfigError(f"POLICYBOT_SWEEP_SECONDS must be a number of seconds (0.05-3600), not "
                              f"{sweep_text!r}") from None
        idle_text = get("POLICYBOT_IDLE_TIMEOUT") or "15"
        try:
            idle = float(idle_text)
            if not 0.1 <= idle <= 600:
                raise ValueError
        except ValueError:
            raise ConfigError(f"POLICYBOT_IDLE_TIMEOUT must be a number of seconds (0.1-600), not {idle_text!r}") from None
        return cls(
            db=Path(get("POLICYBOT_DB") or "data/policybot.db"), kb=Path(kb) if kb else None,
            host=get("POLICYBOT_HOST") or "127.0.0.1", port=port, admins=admins,
            telegram_token=get("TELEGRAM_BOT_TOKEN"), telegram_api_base_url=get("TELEGRAM_API_BASE_URL"),
            telegram_webhook_url=get("TELEGRAM_WEBHOOK_URL"), telegram_webhook_secret=get("TELEGRAM_WEBHOOK_SECRET"),
            wecom_corp_id=get("WECOM_CORP_ID"), wecom_agent_id=get("WECOM_AGENT_ID"), wecom_secret=get("WECOM_SECRET"),
            wecom_token=get("WECOM_TOKEN"), wecom_aes_key=get("WECOM_AES_KEY"),
            wecom_api_base_url=get("WECOM_API_BASE_URL"), reminder_leads=leads, send_hours=(start, end),
            sweep_seconds=sweep, idle_timeout=idle,
            console_secure_cookie=(get("POLICYBOT_CONSOLE_SECURE_COOKIE") or "").lower() in ("1", "true", "yes", "on"),
        )

    def problems(self) -> list[str]:
        """What is missing or inconsistent, in plain words (empty when every configured channel can run)."""
        out = []
        if self.telegram_webhook_url and not self.telegram_token:
            out.append("TELEGRAM_WEBHOOK_URL is set but TELEGRAM_BOT_TOKEN is not: Telegram stays off.")
        if self.telegram_webhook_url and not self.telegram_webhook_secret:
            out.append("Telegram webhook mode needs TELEGRAM_WEBHOOK_SECRET, so that forged updates are refused.")
        wecom = [self.wecom_corp_id, self.wecom_agent_id, self.wecom_secret]
        if any(wecom) and not all(wecom):
            out.append("WeCom needs WECOM_CORP_ID, WECOM_AGENT_ID and WECOM_SECRET together.")
        if self.wecom_enabled and not (self.wecom_token and self.wecom_aes_key):
            out.append("WeCom callbacks need WECOM_TOKEN and WECOM_AES_KEY (the app's 接收消息 settings).")
        if self.wecom_aes_key and len(self.wecom_aes_key) != 43:
            out.append("WECOM_AES_KEY must be the 43-character EncodingAESKey.")
        return out
