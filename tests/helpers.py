"""Small helpers shared by the tests that run servers or make enterprises."""
from __future__ import annotations

import socket

from stdnum.cn import uscc


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def credit_code(n: int) -> str:
    """The n-th valid unified social credit code (check digit by GB 32100)."""
    body = f"91371000{n:09d}"[:17]
    return body + uscc.calc_check_digit(body)
