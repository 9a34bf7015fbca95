"""The terminal chat: the first channel adapter, and the one the dialog tests replay through.

Translates a typed line into an Incoming message and prints the replies. Buttons are shown numbered;
typing the number presses the button. Works interactively (a prompt) and on piped stdin (no prompt,
exits at end of input).
"""
from __future__ import annotations

import getpass
import sys
from typing import TextIO

from handlers.message import Button, Incoming, Reply

QUIT = ("/quit", "/exit", "/q", "退出")


class ConsoleChannel:
    name = "console"

    def __init__(self, dispatcher, user_id: str | None = None):
        self.dispatcher = dispatcher
        self.user_id = user_id or _whoami()
        self.buttons: list[Button] = []

    def to_incoming(self, line: str) -> Incoming:
        text = line.strip()
        if text.isdigit() and 0 < int(text) <= len(self.buttons):
            return Incoming(self.name, self.user_id, text="", callback=self.buttons[int(text) - 1].data)
        return Incoming(self.name, self.user_id, text=text)

    def render(self, replies: list[Reply]) -> str:
        # 👍/👎 are typed here as + and - (handlers/feedback.py), not numbered
        self.buttons = [b for r in replies for b in r.buttons if not _vote_button(b)]
        lines = [r.text for r in replies]
        if self.buttons:
            lines.append("\n".join(f"  [{i}] {b.label}" for i, b in enumerate(self.buttons, 1)))
            lines.append("（输入编号选择）")
        if any(_vote_button(b) for r in replies for b in r.buttons):
            lines.append("（有帮助请输入 +，没帮助请输入 -）")
        return "\n".join(lines)

    def send(self, line: str) -> str:
        """One line in, the rendered replies out (what tests use)."""
        return self.render(self.dispatcher.handle(self.to_incoming(line)))

    def run(self, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
        interactive = stdin.isatty() and stdout.isatty()
        if interactive:
            print(self.render(self.dispatcher.handle(Incoming(self.name, self.user_id, "/start"))), file=stdout)
            print("（输入 /quit 或按 Ctrl-D 退出）", file=stdout)
        while True:
            try:
                line = input("您> ") if interactive else stdin.readline()
            except (EOFError, KeyboardInterrupt):
                if interactive:
                    print("\n再见！", file=stdout)
                return 0
            if not interactive and line == "":
                return 0
            if not line.strip():
                continue
            if line.strip().lower() in QUIT:
                if interactive:
                    print("再见！", file=stdout)
                return 0
            out = self.send(line)
            print(("助手> " if interactive else "") + out + ("\n" if interactive else ""), file=stdout, flush=True)


def _vote_button(b: Button) -> bool:
    return b.data.startswith(("fb:+:", "fb:-:"))


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "local"


class ConsoleLog:
    """The console in `policybot serve`: reminders for console users go to the process log (local mode)."""
    name = "console"

    def routes(self) -> list:
        return []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def push(self, user_id: str, text: str, buttons=None) -> None:
        import logging
        logging.getLogger("policybot.console").warning("reminder for console:%s: %s", user_id, text.replace("\n", " / "))
