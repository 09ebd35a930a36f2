"""memory: peak RSS of the bot process (`python -m bot run`) idle after start, with 100,000 learners
(and their 5,000,000 card states) in its database, long-polling a fake Bot API run by this process.

Baseline: a bare `python -c "import telegram, aiosqlite, fsrs"` process. Both read from
/proc/<pid>/status (VmHWM = peak resident set, VmRSS = current), reported in MB (10^6 bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from bench.common import Context, Result, big_database, result
from tests.adapters.fake_telegram import FakeTelegram

TARGET_MB = 150.0
IDLE_S = 5.0


def _status_mb(pid: int) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) * 1024 / 1e6  # kiB -> MB
    return values


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


async def bot_memory(ctx: Context, db: Path) -> dict[str, float]:
    work = ctx.tmp / "memory-run"  # its own folder: no stray .env is read
    work.mkdir(exist_ok=True)
    log_path = work / "bot.log"
    async with FakeTelegram() as fake:
        env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TELEGRAM_TOKEN")}
        env.update(
            TELEGRAM_TOKEN=fake.token,
            TELEGRAM_API_URL=fake.api_url,
            STUDYBOT_DB=str(db),
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(Path(__file__).resolve().parent.parent),
        )
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                cwd=work,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
            try:
                await fake.wait_for_long_poll(timeout=60)
                await asyncio.sleep(IDLE_S)
                if process.returncode is not None:
                    raise RuntimeError(f"the bot exited early: {log_path.read_text()[-2000:]}")
                return _status_mb(process.pid)
            finally:
                await _stop(process)


async def bare_memory() -> dict[str, float]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys, telegram, aiosqlite, fsrs; print('ready', flush=True); sys.stdin.read()",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        await asyncio.wait_for(process.stdout.readline(), 60)
        await asyncio.sleep(1.0)
        return _status_mb(process.pid)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        await _stop(process)


async def run(ctx: Context) -> list[Result]:
    db = big_database(ctx)
    ctx.log("memory: bare import baseline ...")
    bare = await bare_memory()
    ctx.log(f"memory: `python -m bot run` on the 100k-learner database, idle {IDLE_S:.0f}s after it long-polls ...")
    bot = await bot_memory(ctx, db)
    peak = bot["VmHWM"]
    return [
        result(
            "memory",
            peak,
            "MB (VmHWM)",
            bare["VmHWM"],
            better="lower",
            target=f"<= {TARGET_MB:.0f} MB",
            target_met=peak <= TARGET_MB,
            rss_mb=round(bot["VmRSS"], 1),
            baseline_rss_mb=round(bare["VmRSS"], 1),
            db_mb=round(db.stat().st_size / 1e6),
            note="baseline = python -c 'import telegram, aiosqlite, fsrs'",
        )
    ]
