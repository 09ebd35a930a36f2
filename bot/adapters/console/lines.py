"""What the user types: prompt_toolkit on a terminal (line editing, ↑/↓ history, a status line, output
printed above the prompt while it waits), plain lines from a pipe otherwise.

Both raise KeyboardInterrupt on Ctrl-C and return None at the end of input (Ctrl-D).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Protocol, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout

PROMPT = "> "
Status = Callable[[], str | None]  # the status line's text now, or None for no status line


class Lines(Protocol):
    def output(self) -> contextlib.AbstractAsyncContextManager[TextIO]:
        """While open: the stream to print to (text printed while the user types appears above the prompt)."""
        ...

    async def read(self) -> str | None: ...

    def refresh(self) -> None:
        """Redraw the status line now (e.g. a quiz round opened or closed)."""
        ...


class TerminalLines:
    """A prompt with line editing and history; the status line (a quiz countdown) redraws every half second."""

    def __init__(self, status: Status) -> None:
        self._status = status
        self._session: PromptSession[str] = PromptSession(
            history=InMemoryHistory(), refresh_interval=0.5, bottom_toolbar=None, erase_when_done=False
        )

    def _toolbar(self) -> str:
        return self._status() or ""

    def refresh(self) -> None:
        self._session.bottom_toolbar = self._toolbar if self._status() else None
        with contextlib.suppress(Exception):  # no prompt on screen right now: nothing to redraw
            self._session.app.invalidate()

    @contextlib.asynccontextmanager
    async def output(self) -> AsyncIterator[TextIO]:
        with patch_stdout(raw=True):  # raw: our own bold and colour codes pass through
            yield sys.stdout

    async def read(self) -> str | None:
        self.refresh()
        try:
            return await self._session.prompt_async(PROMPT)
        except EOFError:  # Ctrl-D
            return None


class PipedLines:
    """Lines from a stream, read by a daemon thread so the event loop (the quiz clock) keeps running and
    Ctrl-C leaves at once instead of waiting for Enter."""

    def __init__(self, read_line: Callable[[], str], stdout: TextIO, *, prompt: bool) -> None:
        self._read_line = read_line
        self._stdout = stdout
        self._prompt = prompt
        self._queue: asyncio.Queue[str] | None = None

    @contextlib.asynccontextmanager
    async def output(self) -> AsyncIterator[TextIO]:
        yield self._stdout

    def refresh(self) -> None:
        return None

    def _start(self) -> asyncio.Queue[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()

        def pump() -> None:
            while True:
                try:
                    line = self._read_line()
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

    async def read(self) -> str | None:
        if self._queue is None:
            self._queue = self._start()
        if self._prompt:
            self._stdout.write(PROMPT)
            self._stdout.flush()
        line = await self._queue.get()
        if line == "":
            if self._prompt:
                self._stdout.write("\n")  # Ctrl-D leaves the cursor after the prompt: "Bye!" on a line of its own
            return None
        return line.rstrip("\n")
