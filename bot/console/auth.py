"""Operator accounts, sessions, CSRF tokens and the login rate limit of the console.

- Passwords: argon2id through argon2-cffi (RFC 9106's recommended profile, salted, tuned memory cost),
  rehashed on login when the parameters change.
- A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie (Secure behind HTTPS); the
  database keeps only its SHA-256, so a copy of the database logs nobody in. Sessions expire after
  SESSION_IDLE of inactivity and SESSION_MAX in all; logout and a new password end them.
- CSRF: every form carries `csrf_token`. Logged in, it is the session's own token; on the login form (no
  session yet) it is a double-submit token, the same random value in a SameSite=Strict cookie and in the form.
  Every POST under /admin/ without the matching token is refused (403), whatever else it carries.
- Login attempts: at most MAX_FAILURES failures per client address and per account name in WINDOW; then 429
  until the window passes. A wrong name and a wrong password get the same answer, in the same time.
"""
from __future__ import annotations

import collections
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.clock import now_shanghai

SESSION_COOKIE = "pb_session"
LOGIN_CSRF_COOKIE = "pb_login_csrf"
SESSION_IDLE = dt.timedelta(hours=2)
SESSION_MAX = dt.timedelta(hours=12)
MAX_FAILURES = 5
WINDOW = 15 * 60  # seconds
MIN_PASSWORD = 8  # NIST SP 800-63B: at least 8; length, not composition rules
NAME_RE = re.compile(r"^[\w.@-]{1,40}$")

_hasher = PasswordHasher()
# verified against when the name is unknown, so that a wrong name takes as long as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def name_problem(name: str) -> str | None:
    if not NAME_RE.match(name or ""):
        return "an operator name is 1-40 letters, digits, or . _ @ -"
    return None


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"the password must have at least {MIN_PASSWORD} characters (read from the first line of stdin)"
    if len(password) > 1024:
        return "the password is longer than 1024 characters"
    return None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


class Sessions:
    """Sessions in the Store (console_sessions), by the hash of their token."""

    def __init__(self, store):
        self.store = store

    def start(self, operator: str) -> tuple[str, str]:
        """A new session: (token for the cookie, its CSRF token)."""
        token, csrf = new_token(), new_token()
        expires = now_shanghai() + SESSION_MAX
        self.store.add_session(token_hash(token), operator, csrf, expires.isoformat())
        self.store.set_operator(operator, last_login_at=now_shanghai().isoformat())
        return token, csrf

    def get(self, token: str | None) -> dict | None:
        """The live session of this cookie value, or None (unknown, expired, idle too long, operator removed)."""
        if not token or len(token) > 100:
            return None
        h = token_hash(token)
        row = self.store.session(h)
        if not row:
            return None
        now = now_shanghai()
        if dt.datetime.fromisoformat(row["expires_at"]) <= now or \
                dt.datetime.fromisoformat(row["seen_at"]) + SESSION_IDLE <= now:
            self.store.drop_session(h)
            return None
        if (now - dt.datetime.fromisoformat(row["seen_at"])).total_seconds() > 60:
            self.store.touch_session(h, now.isoformat())
        return row

    def end(self, token: str | None) -> None:
        if token:
            self.store.drop_session(token_hash(token))


class LoginLimiter:
    """Failed logins per key (a client address, an account name) in a sliding window, in memory."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW, clock=time.monotonic):
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._fails: dict[str, collections.deque] = {}

    def _recent(self, key: str) -> collections.deque:
        q = self._fails.get(key)
        if q is None:
            return collections.deque()
        cutoff = self.clock() - self.window
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            self._fails.pop(key, None)
        return q

    def blocked_for(self, *keys: str) -> float:
        """Seconds until a login may be tried again for these keys (0: allowed now)."""
        wait = 0.0
        for key in keys:
            q = self._recent(key)
            if len(q) >= self.max_failures:
                wait = max(wait, q[0] + self.window - self.clock())
        return wait

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            self._fails.setdefault(key, collections.deque()).append(now)
        if len(self._fails) > 50_000:  # a flood of names: forget the oldest keys
            for key in list(self._fails)[:10_000]:
                self._fails.pop(key, None)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._fails.pop(key, None)
