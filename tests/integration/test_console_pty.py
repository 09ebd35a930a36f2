"""The terminal chat in a real pseudo-terminal: Ctrl-C leaves at once with exit code 130, Ctrl-D says bye."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import sqlite3
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _take_the_terminal() -> None:
    """In the child: a new session whose controlling terminal is the pty, so Ctrl-C sends SIGINT."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """`studybot chat` on the slave side of a pty; we type on the master side and read the screen."""

    def __init__(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN")}
        env["STUDYBOT_DB"] = str(tmp_path / "data" / "studybot.db")
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "chat"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=tmp_path,
            env=env,
            preexec_fn=_take_the_terminal,
        )
        os.close(slave)
        self.screen = ""

    def read_until(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.screen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.screen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:
                    break
        assert text in self.screen, self.screen[-2000:]
        return self.screen

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait(self, timeout: float = 10.0) -> int:
        code = self.process.wait(timeout=timeout)
        os.close(self.master)
        return code


def test_ctrl_c_leaves_at_once_with_exit_code_130_and_keeps_what_was_answered(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    term.read_until("> ")
    term.type("/question\r")
    term.read_until("[1] Show answer")
    term.type("1\r")
    term.read_until("[3] Good")
    term.type("3\r")
    term.read_until("Rated Good")
    term.type("\x03")  # Ctrl-C, with no Enter after it
    assert term.wait(timeout=5) == 130
    con = sqlite3.connect(tmp_path / "data" / "studybot.db")
    assert con.execute("SELECT COUNT(*) FROM reviews").fetchone() == (1,)
    con.close()


def test_ctrl_d_says_bye_on_a_new_line(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    term.read_until("> ")
    term.type("\x04")  # Ctrl-D at an empty prompt
    screen = term.read_until("Bye!")
    assert term.wait() == 0
    assert "> \r\nBye!" in screen or "> \nBye!" in screen
