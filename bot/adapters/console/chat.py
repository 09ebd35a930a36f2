"""The conversation at the terminal: commands, keys for buttons, the quiz clock and the daily question.

Buttons are listed with keys: an option's letter (A-D) or a number. The open question's keys stay
valid until that question closes, whatever else is typed in between. While a quiz runs, its letters
answer the quiz and nothing else does; its rounds close on time (a status line counts down), not at
the next keypress. Any other line is a free-text answer to the open question.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import math
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO

from bot.adapters.console.lines import Lines, PipedLines, TerminalLines
from bot.adapters.console.text import MAX_WIDTH, Look, keys_for, render, wrap
from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.model import Caller, Chat, Identity, Upload
from bot.core.views import Block, Button, Picture, Reply

PLATFORM = "console"
EXIT_INTERRUPTED = 130  # what shells expect after Ctrl-C
TICK = 0.2  # seconds between looks at the quiz clock


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
        db_location: str | None = None,
        colour: bool | None = None,
        width: int | None = None,
    ) -> None:
        self.commands = commands
        self.data_dir = data_dir if data_dir is not None else Path("data")  # pictures and exports go here
        self.db_location = db_location
        self.competition = competition
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        name = user or _user_name()
        chat = Chat(PLATFORM, "local", typed_keys=True)
        self.caller = Caller(identity=Identity(PLATFORM, name), display_name=name, chat=chat)
        self.interactive = self.stdin.isatty() if interactive is None else interactive
        self.terminal = self.interactive and _is_tty(self.stdin) and _is_tty(self.stdout)
        self.colour = (self.terminal and not os.environ.get("NO_COLOR")) if colour is None else colour
        self.width = width
        self._out: TextIO = self.stdout
        self._lines: Lines | None = None
        self._lock = asyncio.Lock()  # one thing at a time: a typed line, or the quiz clock
        # The open question's keys, and the blocks of its message (an edit prints only what is new).
        self._keys: list[Button] = []
        self._blocks: frozenset[Block] = frozenset()
        # The running quiz's keys and when its open round closes (None: no quiz round open).
        self._quiz_keys: list[Button] = []
        self._closes_at: datetime | None = None
        self._quiz_changed = asyncio.Event()

    # --- output ----------------------------------------------------------------------------------

    def look(self) -> Look:
        """Wrapping and colour for the next print: the terminal's width now (it may have been resized)."""
        if self.width is not None:
            return Look(self.width, self.colour)
        if not self.terminal:
            return Look(None, self.colour)
        return Look(min(shutil.get_terminal_size().columns, MAX_WIDTH), self.colour)

    def _print(self, text: str) -> None:
        try:
            self._out.write(text + "\n\n")
            self._out.flush()
        except BrokenPipeError:  # the reader went away (e.g. `studybot | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stdout.fileno())
            raise SystemExit(0) from None

    def _say(self, text: str) -> None:
        """One of the terminal's own lines (not the core's), laid out like the rest."""
        self._print("\n".join(wrap((text,), self.look())))

    def _show(self, reply: Reply) -> None:
        if reply.is_notice_only:
            if reply.notice:
                self._say(f"({reply.notice})")
            return
        buttons = [b for row in reply.buttons for b in row]
        skip = self._blocks if reply.edit else frozenset()
        if reply.poll is not None and buttons:  # a quiz round: its letters answer the quiz
            self._quiz_keys = buttons
        elif buttons:  # a reply without buttons (/help, /topics) leaves the open question's keys valid
            self._keys = buttons
            self._blocks = frozenset(reply.blocks)
        elif reply.edit:
            self._blocks = self._blocks | frozenset(reply.blocks)
        text = render(reply, self.look(), skip=skip)
        if text:
            self._print(text)
        if reply.attachment is not None:
            self._save_attachment(*reply.attachment)
        if reply.picture is not None:
            self._save_picture(reply.picture)

    def _save_attachment(self, name: str, content: bytes) -> None:
        """A file to keep (an /export): saved in the data folder's exports, never over an earlier one."""
        folder = self.data_dir / "exports"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = _free_path(folder / name)
            with path.open("xb") as file:  # "x": fails rather than overwrite a file made in the meantime
                file.write(content)
        except OSError as exc:
            self._say(f"I couldn't save {name} in {folder.resolve()}: {exc.strerror or exc}.")
            return
        self._say(f"Saved {len(content):,} bytes to {path.resolve()}")

    def _save_picture(self, picture: Picture) -> None:
        """A terminal shows no images: the picture goes to a file in the data folder, and its path is printed."""
        path = (self.data_dir / picture.name).resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(picture.content)
        except OSError as exc:
            self._say(f"I couldn't save your progress picture to {path}: {exc.strerror or exc}.")
            return
        self._say(f"{picture.caption}\nPicture saved to {path} (open it in any image viewer).")

    # --- input -----------------------------------------------------------------------------------

    async def handle_line(self, line: str) -> bool:
        """Handle one line of input; False when the user wants to leave."""
        async with self._lock:
            keep_going = await self._handle(line)
            if keep_going and line.strip():
                note = await self.commands.pending_notice(self.caller)  # e.g. an account linked from elsewhere
                if note:
                    self._say(note)
            await self._drive_quiz()
        return keep_going

    async def _handle(self, line: str) -> bool:
        text = line.strip()
        if not text:
            return True
        if text.lower() in ("/quit", "/exit", "quit", "exit"):
            return False
        if text.startswith("/"):
            parsed = Commands.split_command(text)
            if parsed is None:
                self._say("That doesn't look like a command. Try /help.")
                return True
            name, args = parsed
            if self.commands.takes_upload(name) and args.split()[:1] == ["import"]:
                return await self._import_file(name, args)
            self._show(await self.commands.run(self.caller, name, args))
            return True
        if self._quiz_keys:  # while a quiz runs, its letters answer it and nothing else does
            button = _button_for(text, self._quiz_keys)
            if button is not None:
                self._show(await self.commands.press(self.caller, button.action))
            else:
                self._say(f"A quiz is running: answer with {_key_list(self._quiz_keys)}, or end it with /stopquiz.")
            return True
        button = _button_for(text, self._keys)
        if button is not None:
            self._show(await self.commands.press(self.caller, button.action))
            return True
        if self._keys and _looks_like_a_key(text):
            self._say(f"“{text}” is not one of the listed keys. {_valid_keys(self._keys)}")
            return True
        reply = await self.commands.text(self.caller, text)
        if reply is None:
            self._say("No question is open. Send /question to get one, or /help.")
        else:
            self._show(reply)
        return True

    async def _import_file(self, name: str, args: str) -> bool:
        """`/deck import PATH [NAME]`: the terminal's user is on this machine, so a file path is the upload."""
        try:
            words = shlex.split(args)
        except ValueError:
            self._say("I couldn't read that line: a quote is not closed.")
            return True
        if len(words) < 2:
            self._show(await self.commands.run(self.caller, name, args))
            return True
        path, size = await asyncio.to_thread(_file_size, words[1])
        if size is None:
            self._say(f"I can't find the file {path}.")
            return True
        rest = " ".join(["import", *words[2:]])

        async def read() -> bytes:
            return await asyncio.to_thread(path.read_bytes)

        upload = Upload(path.name, size, read)
        self._show(await self.commands.run(self.caller, name, rest, upload=upload))
        return True

    # --- the quiz clock ----------------------------------------------------------------------------

    async def _drive_quiz(self) -> None:
        """A solo match in the terminal: a round closes once answered or when its time is up, and the next
        one opens straight away."""
        if self.competition is None:
            return
        store = self.competition.store
        match = await store.running_match(self.caller.chat.key)
        if match is not None:
            latest = await store.latest_round(match.id)
            if latest is not None and not latest.closed:
                answered = await store.round_answers(latest.id)
                if not answered and self.competition.clock.now() <= latest.closes_at:
                    self._set_deadline(latest.closes_at)
                    return  # waiting for the player's answer
                closed = await self.competition.close_round(latest.id)
                if closed is not None:
                    self._show(closed.reply)
                    if closed.final is not None:
                        self._show(closed.final)
                        match = None
            if match is not None and (opened := await self.competition.open_round(match.id)) is not None:
                self._show(opened.reply)
                self._set_deadline(opened.round.closes_at)
                return
        self._quiz_keys = []
        self._set_deadline(None)

    def _set_deadline(self, closes_at: datetime | None) -> None:
        if closes_at != self._closes_at:
            self._closes_at = closes_at
            self._quiz_changed.set()
            if self._lines is not None:
                self._lines.refresh()

    async def _quiz_clock(self) -> None:
        """Closes a round whose time is up while the user types nothing, and reports it at once."""
        assert self.competition is not None
        clock = self.competition.clock
        while True:
            if self._closes_at is None:
                self._quiz_changed.clear()
                await self._quiz_changed.wait()
                continue
            await asyncio.sleep(TICK)
            if self._closes_at is not None and clock.now() > self._closes_at:
                async with self._lock:
                    await self._drive_quiz()

    def status(self) -> str | None:
        """The status line under the prompt: the quiz round's countdown, or None."""
        if self._closes_at is None or self.competition is None:
            return None
        left = max(0, math.ceil((self._closes_at - self.competition.clock.now()).total_seconds()))
        return f" ⏱ {left} s left · answer with {_key_list(self._quiz_keys)} · /stopquiz ends the quiz "

    # --- the loop --------------------------------------------------------------------------------

    async def run(self, read_line: Callable[[], str] | None = None) -> int:
        """The read-eval-print loop; returns an exit code (Ctrl-C raises KeyboardInterrupt to the caller)."""
        if self.terminal and read_line is None:
            self._lines = TerminalLines(self.status)
        else:
            self._lines = PipedLines(read_line or self.stdin.readline, self.stdout, prompt=self.interactive)
        clock_task = asyncio.create_task(self._quiz_clock()) if self.competition is not None else None
        try:
            async with self._lines.output() as out:
                self._out = out
                await self._open()
                while True:
                    line = await self._lines.read()
                    if line is None or not await self.handle_line(line):
                        break
                if self.interactive:
                    self._say("Bye! Your progress is saved.")
        finally:
            if clock_task is not None:
                clock_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await clock_task
            self._out = self.stdout
        return 0

    async def _open(self) -> None:
        """The welcome, a quiz left running last time, and today's daily question when it is due."""
        if self.interactive:
            where = f" Your progress is saved in {self.db_location}." if self.db_location else ""
            self._say(f"StudyBot in your terminal. Send /question to start, /help for more, /quit to leave.{where}")
        async with self._lock:
            if self.competition is not None and await self.competition.store.running_match(self.caller.chat.key):
                self._say("Your quiz from last time is still running: here is its next question.")
                await self._drive_quiz()
            opening = await self.commands.opening(self.caller)
            if opening is not None and not self._quiz_keys:
                self._show(opening)


def _button_for(text: str, buttons: list[Button]) -> Button | None:
    """The listed button a line picks: its key (letter or number), or its label's first word ("good")."""
    wanted = text.casefold()
    for key, button in zip(keys_for(buttons), buttons, strict=True):
        if wanted == key.casefold():
            return button
    for button in buttons:
        label = button.label.split(" · ")[0].casefold()
        if wanted == label or (len(wanted) > 1 and wanted == label.split()[0]):
            return button
    return None


def _key_list(buttons: list[Button]) -> str:
    keys = keys_for(buttons)
    if len(keys) <= 1:
        return "".join(keys)
    return ", ".join(keys[:-1]) + " or " + keys[-1]


def _valid_keys(buttons: list[Button]) -> str:
    return f"Type {_key_list(buttons)} to choose a button, or write your answer in a sentence."


def _looks_like_a_key(text: str) -> bool:
    """A lone number or letter: meant as a key press, not as an answer."""
    return text.isdigit() or (len(text) == 1 and text.isalpha())


def _free_path(path: Path) -> Path:
    """`path`, or `name-2.ext`, `name-3.ext`... when it is taken."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _user_name() -> str:
    try:
        return getpass.getuser() or "you"
    except (KeyError, OSError):
        return "you"


def _file_size(typed: str) -> tuple[Path, int | None]:
    """The file a typed path names (~ expanded) and its size, None when there is no such regular file."""
    path = Path(typed).expanduser()
    try:
        return path, (path.stat().st_size if path.is_file() else None)
    except OSError:
        return path, None
