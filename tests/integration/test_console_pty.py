"""The terminal chat in a real pseudo-terminal, read through a terminal emulator (pyte) as a person sees it.

`studybot chat` runs on the slave side of a pty with a window size; we type on the master side. Every
byte the program writes goes to a pyte screen (which also answers the prompt's cursor-position
queries, as a real terminal does) and to `raw`, to look at the escape codes themselves.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest

pytestmark = pytest.mark.slow

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
OUR_STYLES = ("\x1b[1m", "\x1b[3m", "\x1b[36m", "\x1b[1;36m", "\x1b[2m")  # bold, italic, code, title, rule


class Screen(pyte.Screen):  # type: ignore[misc]
    """A screen that answers the program's terminal queries (cursor position) through the pty."""

    def __init__(self, columns: int, lines: int, master: int) -> None:
        super().__init__(columns, lines)
        self.master = master

    def write_process_input(self, data: str) -> None:
        os.write(self.master, data.encode())


def _take_the_terminal() -> None:
    """In the child: a new session whose controlling terminal is the pty, so Ctrl-C sends SIGINT."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """`studybot chat` in a window `columns` wide; `typed` sends keys, `read_until` waits for text on screen."""

    def __init__(self, tmp_path: Path, *, columns: int = 80, lines: int = 200, **env_changes: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "NO_COLOR")}
        env["STUDYBOT_DB"] = str(tmp_path / "data" / "studybot.db")
        env["TERM"] = "xterm-256color"
        env.update(env_changes)
        self.columns = columns
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.screen = Screen(columns, lines, self.master)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
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

    def _pump(self, seconds: float) -> None:
        ready, _, _ = select.select([self.master], [], [], seconds)
        if ready:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            self.raw += data
            # pyte drops the rest of a line after an emoji variation selector (U+FE0F, as in "☀️"); terminals
            # do not, so the screen gets the text without it
            self.stream.feed(data.replace("\ufe0f".encode(), b""))

    def text(self) -> str:
        """What the window shows now, one line per row, trailing blanks dropped."""
        return "\n".join(line.rstrip() for line in self.screen.display).rstrip()

    def flat(self) -> str:
        """The screen's words on one line: text the window wrapped reads as it was written."""
        return " ".join(self.text().split())

    def read_until(self, text: str, timeout: float = 20.0, count: int = 1) -> str:
        """Wait until `text` (its words, however the window wrapped them) is on screen `count` times."""
        wanted = " ".join(text.split())
        deadline = time.monotonic() + timeout
        while self.flat().count(wanted) < count and time.monotonic() < deadline:
            self._pump(0.1)
        assert self.flat().count(wanted) >= count, self.text()[-3000:]
        return self.text()

    def prompt(self, timeout: float = 20.0) -> str:
        """Wait for the prompt: a last line that is just ">"."""
        deadline = time.monotonic() + timeout
        while not self.text().endswith("\n>") and time.monotonic() < deadline:
            self._pump(0.1)
        assert self.text().endswith("\n>"), self.text()[-3000:]
        return self.text()

    def settle(self, seconds: float = 0.5) -> str:
        """Read whatever arrives within `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._pump(0.05)
        return self.text()

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def send(self, line: str, then: str) -> str:
        """Type a line and Enter, and wait until `then` is on screen."""
        self.type(line + "\r")
        return self.read_until(then)

    def printed_lines(self) -> list[str]:
        """The program's own output lines (escape codes removed), as written, before the terminal wraps them."""
        return ESCAPES.sub("", self.raw.decode(errors="replace")).split("\n")

    def wait(self, timeout: float = 10.0) -> int:
        code = self.process.wait(timeout=timeout)
        self.settle(0.2)
        os.close(self.master)
        return code


def test_ctrl_c_leaves_at_once_with_exit_code_130_and_keeps_what_was_answered(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    term.prompt()
    term.send("/question", "[1] Show answer")
    term.send("1", "[3] Good")
    term.send("3", "Rated Good")
    term.type("\x03")  # Ctrl-C, with no Enter after it
    assert term.wait(timeout=5) == 130
    con = sqlite3.connect(tmp_path / "data" / "studybot.db")
    assert con.execute("SELECT COUNT(*) FROM reviews").fetchone() == (1,)
    con.close()


def test_ctrl_d_says_bye_on_a_new_line(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    term.prompt()
    term.type("\x04")  # Ctrl-D at an empty prompt
    screen = term.read_until("Bye!")
    assert term.wait() == 0
    assert "\n>\nBye! Your progress is saved." in screen  # the prompt's line, then Bye on a line of its own


def test_text_wraps_to_the_window_with_hanging_indents_and_a_rating_does_not_repeat_the_answer(
    tmp_path: Path,
) -> None:
    term = Terminal(tmp_path, columns=60)
    welcome = term.prompt()
    assert f"savedin{tmp_path / 'data' / 'studybot.db'}" in "".join(welcome.split())  # where the data lives
    term.send("/question", "[1] Show answer")
    term.send("1", "[3] Good")
    printed = [line for line in term.printed_lines() if len(line.split()) > 1]  # a lone word may be too long
    assert max(len(line) for line in printed) <= 60, max(printed, key=len)
    bullets = [n for n, line in enumerate(printed) if line.startswith("  • ")]
    after = [printed[n + 1] for n in bullets if n + 1 < len(printed) and not printed[n + 1].startswith("  • ")]
    continued = [line for line in after if line.startswith(" ")]
    assert continued and all(line.startswith("    ") and line[4] != " " for line in continued)  # hanging indent
    words = set(" ".join(printed).split())
    for line in printed:  # no word is split across lines: each line's first and last word are whole words
        first, last = line.split()[0], line.split()[-1]
        assert first in words and last in words
    term.send("good", "Rated Good")
    term.settle()
    printed = [line for line in term.printed_lines() if "Model answer" in line]
    assert len(printed) == 1, printed  # the answer was written once: rating printed only the new line


def test_colour_and_bold_on_a_terminal_and_none_with_no_color(tmp_path: Path) -> None:
    coloured = Terminal(tmp_path)
    coloured.prompt()
    coloured.send("/help", "Keys")
    coloured.type("/quit\r")
    assert coloured.wait() == 0
    assert "\x1b[1;36mCommands\x1b[0m" in coloured.raw.decode()  # a title, bold and coloured

    plain = Terminal(tmp_path, NO_COLOR="1")
    plain.prompt()
    plain.send("/help", "Keys")
    plain.type("/quit\r")
    assert plain.wait() == 0
    raw = plain.raw.decode()
    assert "Commands" in raw and not any(code in raw for code in OUR_STYLES)


def test_arrow_keys_edit_the_line_and_bring_back_earlier_ones(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    term.prompt()
    term.send("/topcs", "I don't know /topcs")
    term.prompt()  # keys typed before the next prompt is up would meet the tty in cooked mode
    term.type("\x1b[A")  # ↑: the last line again
    term.type("\x1b[D\x1b[D")  # ← ←: before "cs"
    term.type("i\r")  # "/topics"
    screen = term.read_until("Practise one with /question topic")
    assert "^[[" not in screen and "[A" not in screen.replace("[A]", "")
    term.prompt()
    term.type("\x1b[A\x1b[A\r")  # ↑ ↑: the first line again
    # counted in what the program wrote: pyte answers the prompt's cursor-position query only while the
    # test reads, so on a loaded machine a late answer can make the emulated screen redraw over a line
    deadline = time.monotonic() + 20
    while "\n".join(term.printed_lines()).count("I don't know /topcs") < 2 and time.monotonic() < deadline:
        term.settle(0.1)
    assert "\n".join(term.printed_lines()).count("I don't know /topcs") == 2, term.text()[-3000:]


def test_help_in_the_terminal_explains_keys_quit_and_the_quiz_rule(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    term.prompt()
    term.send("/help", "Every answer is saved as you go.")
    flat = term.flat()
    assert "Press a button by typing its key" in flat and "/quit or Ctrl-D leaves" in flat
    assert "While a quiz runs, its letters answer the quiz and /question waits" in flat


def test_a_quiz_round_times_out_on_screen_with_a_countdown_and_the_quiz_owns_its_keys(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    term.prompt()
    term.send("/question", "[1] Show answer")  # a study question is open: its keys must survive the quiz
    term.send("/quiz 2 10", "[A]  [B]  [C]  [D]")
    assert re.search(r"⏱ (10|9|8) s left · answer with A, B, C or D", term.read_until("s left"))
    term.send("/question", "Your quiz is still running")
    term.send("hello", "A quiz is running: answer with A, B, C or D, or end it with /stopquiz.")
    term.type("b\r")  # answers the quiz, not the study question
    first = term.read_until("[2/2]")
    assert re.search(r"(✅|❌) you: B · correct: [ABCD]", first) and "I didn't take" not in first
    time.sleep(10.5)  # type nothing: the round closes on its own, and says so at once
    screen = term.read_until("Final results", timeout=5)
    assert re.search(r"⌛ Time's up · no answer · correct: [ABCD]", screen)
    assert "/2 correct" in screen and "0/1 correct" not in screen  # the timed-out round counts
    term.type("1\r")  # the study question's keys are back: [1] Show answer
    term.read_until("How well did you know it?")
    term.type("/quit\r")
    assert term.wait() == 0


def test_the_daily_question_opens_a_chat_started_after_its_time_until_something_is_answered(
    tmp_path: Path,
) -> None:
    first = Terminal(tmp_path)
    first.prompt()
    first.send("/daily 00:00 UTC", "Daily question on: 00:00 (UTC).")
    first.type("/quit\r")
    assert first.wait() == 0

    second = Terminal(tmp_path)  # after 00:00 UTC, nothing answered today: it opens with the question
    screen = second.read_until("Your daily question")
    assert "[1] Show answer" in second.read_until("[1] Show answer") and screen.index("StudyBot in your terminal") < (
        screen.index("Your daily question")
    )
    second.send("1", "[3] Good")
    second.send("3", "Rated Good")
    second.type("/quit\r")
    assert second.wait() == 0

    third = Terminal(tmp_path)  # answered today: a plain start
    third.prompt()
    assert "Your daily question" not in third.settle(1.0)
    third.type("/quit\r")
    assert third.wait() == 0


def test_keys_stay_valid_across_other_commands_and_an_unlisted_key_changes_nothing(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    term.prompt()
    term.send("/question", "[1] Show answer")
    term.send("/help", "Every answer is saved as you go.")
    term.send("7", "“7” is not one of the listed keys. Type 1, 2 or 3 to choose a button")
    term.send("1", "[3] Good")  # still the question's Show answer, after /help and a wrong key
    term.send("/topics", "Practise one with /question topic")
    term.send("5", "“5” is not one of the listed keys. Type 1, 2, 3 or 4")
    term.send("good", "Rated Good")  # a rating answers to its name
    assert "No question is open" not in term.flat() and "I didn't take" not in term.flat()
    term.type("/quit\r")
    assert term.wait() == 0
    con = sqlite3.connect(tmp_path / "data" / "studybot.db")
    assert con.execute("SELECT COUNT(*), MIN(rating) FROM reviews").fetchone() == (1, 3)
    con.close()
