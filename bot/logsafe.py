"""No secret in any log line: every handler's formatter masks the configured secrets and anything shaped
like a credential in a URL, after the whole line (message, arguments and traceback) is formatted.

Masked: the Telegram bot token (whole, and its secret half after the colon), the webhook secret, the
WeCom app secret, callback token and EncodingAESKey, and any `access_token=`, `corpsecret=`, `secret_token`
value or `/bot<token>/` path segment (httpx logs Bot API URLs, which carry the token). httpx and
httpcore are also set to WARNING, so their per-request INFO lines are not written at all.
"""
from __future__ import annotations

import logging
import re

from bot.config import Settings

MASK = "***"
_SHAPES = [
    (re.compile(r"(access_token|corpsecret|secret_token|secret|token)(=|\"?:\s*\"?|'\s*:\s*')([^&\s\"',}]+)", re.I),
     lambda m: m.group(1) + m.group(2) + MASK),
    (re.compile(r"/bot\d+:[A-Za-z0-9_-]+"), lambda m: "/bot" + MASK),
    (re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}\b"), lambda m: MASK),  # a bot token anywhere
]


def secrets_of(settings: Settings) -> list[str]:
    values = [settings.telegram_token, settings.telegram_webhook_secret, settings.wecom_secret,
              settings.wecom_token, settings.wecom_aes_key]
    if settings.telegram_token and ":" in settings.telegram_token:
        values.append(settings.telegram_token.split(":", 1)[1])
    return sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, repl in _SHAPES:
        text = pattern.sub(repl, text)
    return text


class RedactingFormatter(logging.Formatter):
    def __init__(self, inner: logging.Formatter | None, secrets: list[str]):
        super().__init__()
        self.inner = inner or logging.Formatter()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record), self.secrets)


def install(settings: Settings, logger: logging.Logger | None = None) -> None:
    """Wrap the formatter of every handler of `logger` (the root logger) once."""
    logger = logger or logging.getLogger()
    secrets = secrets_of(settings)
    for handler in logger.handlers:
        fmt = handler.formatter
        if isinstance(fmt, RedactingFormatter):
            fmt.secrets = secrets
        else:
            handler.setFormatter(RedactingFormatter(fmt, secrets))
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
