"""The terminal chat: the same commands as the chat platforms, in plain text.

Buttons are listed with numbers and chosen by typing the number; multiple-choice options can be
chosen by letter; any other line is a free-text answer. Works with piped stdin (for tests and
scripts) as well as interactively.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.model import Caller, Chat, Identity
from bot.core.views import Button, Picture, Reply

PLATFORM = "console"


def render(reply: Reply) -> str:
    """A reply as terminal text, with its buttons numbered."""
    parts: list[str] = []
    text = reply.plain_text()
    if text:
        parts.append(text)
    if reply.poll is not None and not text:
        poll = reply.poll
        parts.append(poll.question + "\n" + "\n".join(f"  {chr(65 + i)}) {o}" for i, o in enumerate(poll.options)))
    if reply.notice and not text:
        parts.append(f"({reply.notice})")
    buttons = [b for row in reply.buttons for b in row]
    if buttons:
        parts.append("  ".join(f"[{n}] {b.label}" for n, b in enumerate(buttons, 1)))
    for more in reply.extra:
        parts.append(render(more))
    return "\n\n".join(parts)


class ConsoleChat:
    """One learner at a terminal."""

    def __init__(
        self,
        commands: Commands,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        user: str | None = None,
        interactive: bool | None = None,
        competition: CompetitionService | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.commands = commands
        self.data_dir = data_dir if data_dir is not None else Path("data")  # pictures are saved here
        self.competition = competition
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        name = user or _user_name()
        self.caller = Caller(identity=Identity(PLATFORM, name), display_name=name, chat=Chat(PLATFORM, "local"))
        self.interactive = self.stdin.isatty() if interactive is None else interactive
        self._buttons: list[Button] = []

    def _print(self, text: str) -> None:
        try:
            self.stdout.write(text + "\n\n")
            self.stdout.flush()
        except BrokenPipeError:  # the reader went away (e.g. `studybot | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stdout.fileno())
            raise SystemExit(0) from None

    def _show(self, reply: Reply) -> None:
        if reply.is_notice_only:
            if reply.notice:
                self._print(f"({reply.notice})")
            return
        buttons = [b for row in reply.buttons for b in row]
        if buttons:  # a reply without buttons (/help, /topics) leaves the open question's buttons valid
            self._buttons = buttons
        self._print(render(reply))
        if reply.attachment is not None:
            name, content = reply.attachment
            path = Path(name).resolve()
            path.write_bytes(content)
            self._print(f"Saved {len(content)} bytes to {path}")
        if reply.picture is not None:
            self._save_picture(reply.picture)

    def _save_picture(self, picture: Picture) -> None:
        """A terminal shows no images: the picture goes to a file in the data folder, and its path is printed."""
        path = (self.data_dir / picture.name).resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(picture.content)
        except OSError as exc:
            self._print(f"I couldn't save your progress picture to {path}: {exc.strerror or exc}.")
            return
        self._print(f"{picture.caption}\nPicture saved to {path} (open it in any image viewer).")

    async def handle_line(self, line: str) -> bool:
        """Handle one line of input; False when the user wants to leave."""
        keep_going = await self._handle(line)
        await self._drive_quiz()
        return keep_going

    async def _drive_quiz(self) -> None:
        """A solo match in the terminal is turn-based: a round closes once answered (or timed out)."""
        if self.competition is None:
            return
        store = self.competition.store
        match = await store.running_match(self.caller.chat.key)
        while match is not None:
            latest = await store.latest_round(match.id)
            if latest is not None and not latest.closed:
                answered = await store.round_answers(latest.id)
                if not answered and self.competition.clock.now() <= latest.closes_at:
                    return  # waiting for the player's answer
                closed = await self.competition.close_round(latest.id)
                if closed is not None:
                    self._show(closed.reply)
                    if closed.final is not None:
                        self._show(closed.final)
                        return
            opened = await self.competition.open_round(match.id)
            if opened is None:
                return
            self._show(opened.reply)
            return

    async def _handle(self, line: str) -> bool:
        text = line.strip()
        if not text:
            return True
        if text.lower() in ("/quit", "/exit", "quit", "exit"):
            return False
        if text.startswith("/"):
            parsed = Commands.split_command(text)
            if parsed is None:
                self._print("That doesn't look like a command. Try /help.")
                return True
            name, args = parsed
            self._show(await self.commands.run(self.caller, name, args))
            return True
        button = self._button_for(text)
        if button is not None:
            self._show(await self.commands.press(self.caller, button.action))
            return True
        if self._buttons and _looks_like_a_key(text):
            self._print(f"“{text}” is not one of the listed keys. {self._valid_keys()}")
            return True
        reply = await self.commands.text(self.caller, text)
        if reply is None:
            self._print("No question is open. Send /question to get one, or /help.")
        else:
            self._show(reply)
        return True

    def _button_for(self, text: str) -> Button | None:
        """The listed button a line picks: its number, its letter, or its label's first word ("good")."""
        if text.isdigit() and 1 <= int(text) <= len(self._buttons):
            return self._buttons[int(text) - 1]
        wanted = text.casefold()
        for button in self._buttons:
            label = button.label.split(" · ")[0].casefold()
            if wanted == label or (len(wanted) > 1 and wanted == label.split()[0]):
                return button
        return None

    def _valid_keys(self) -> str:
        count = len(self._buttons)
        letters = [b.label for b in self._buttons if len(b.label) == 1 and b.label.isalpha()]
        keys = f"1-{count}" if count > 1 else "1"
        if letters:
            keys += f" or a letter {'-'.join((letters[0], letters[-1]))}"
        return f"Type {keys} to choose a button, or write your answer in a sentence."

    async def run(self, read_line: Callable[[], str] | None = None) -> int:
        """The read-eval-print loop; returns an exit code."""
        lines = self._lines(read_line or self.stdin.readline)
        if self.interactive:
            self._print("StudyBot in your terminal. Send /question to start, /help for more, /quit to leave.")
        while True:
            if self.interactive:
                self.stdout.write("> ")
                self.stdout.flush()
            line = await lines.get()
            if line == "":  # end of input (Ctrl-D)
                if self.interactive:
                    self.stdout.write("\n")
                break
            if not await self.handle_line(line):
                break
        if self.interactive:
            self._print("Bye! Your progress is saved.")
        return 0

    @staticmethod
    def _lines(read_line: Callable[[], str]) -> asyncio.Queue[str]:
        """Lines read by a daemon thread, so Ctrl-C can leave at once instead of waiting for Enter."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()

        def pump() -> None:
            while True:
                try:
                    line = read_line()
                except (OSError, ValueError):
                    line = ""
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, line)
                except RuntimeError:  # the loop is gone: the chat has ended
                    return
                if line == "":
                    return

        threading.Thread(target=pump, name="console-input", daemon=True).start()
        return queue


def _looks_like_a_key(text: str) -> bool:
    """A lone number or letter: meant as a key press, not as an answer."""
    return text.isdigit() or (len(text) == 1 and text.isalpha())


def _user_name() -> str:
    try:
        return getpass.getuser() or "you"
    except (KeyError, OSError):
        return "you"
