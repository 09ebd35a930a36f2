"""Running `python -m bot ...` as a real process in tests: a clean environment, start and stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path


def bot_env(db: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any StudyBot or platform setting, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DISCORD_", "STUDYBOT_"))}
    env.update({"STUDYBOT_DB": str(db), "LOG_LEVEL": "INFO", **settings})
    return env


async def start_studybot(cwd: Path, env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *(args or ("run",)),
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop_studybot(process: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> tuple[int, str]:
    """Signal the bot and wait for it; (exit code, stderr). A bot that hangs is killed."""
    process.send_signal(sig)
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stderr.decode()
