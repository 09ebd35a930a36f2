"""Shared helpers: result lines, percentiles, plain-sqlite3 setup, the 100k-learner database and the
fake Bot API host process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
Result = dict[str, Any]

# The moment the large database is "now" for: the FakeClock's default start.
BIG_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BIG_LEARNERS = 100_000
BIG_CARDS_PER_LEARNER = 50


@dataclass
class Context:
    """What every benchmark gets: a private temp folder, the size flag and a cache shared within `all`."""

    tmp: Path
    full: bool = False
    shared: dict[str, Any] = field(default_factory=dict)

    def log(self, message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    def fresh(self, name: str) -> Path:
        """A path for a new database file in the temp folder (any earlier one and its WAL removed)."""
        path = self.tmp / name
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return path


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return round(value, 3 if abs(value) < 100 else 1)


def result(
    name: str,
    value: float,
    unit: str,
    baseline: float | None,
    *,
    better: str = "higher",
    target: str | None = None,
    target_met: bool | None = None,
    **extra: Any,
) -> Result:
    """One JSON line; ratio is value / baseline."""
    ratio = round(value / baseline, 3) if baseline else None
    line: Result = {
        "name": name,
        "value": _num(value),
        "unit": unit,
        "baseline": _num(baseline),
        "ratio": ratio,
        "better": better,
    }
    if target is not None:
        line["target"] = target
        line["target_met"] = target_met
    for key, item in extra.items():
        line[key] = _num(item) if isinstance(item, float) else item
    return line


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_stats(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p99/max in milliseconds."""
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 3),
        "p99_ms": round(percentile(seconds, 99) * 1000, 3),
        "max_ms": round(max(seconds) * 1000, 3),
    }


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    """`with stopwatch() as t: ...` then t[0] is the elapsed seconds."""
    box: list[float] = []
    started = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - started)


def to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


# --- plain sqlite3 ------------------------------------------------------------------------------------


def connect_plain(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with the same settings as SqliteStore (WAL, autocommit mode)."""
    con = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL", "busy_timeout=5000"):
        con.execute(f"PRAGMA {pragma}")
    return con


def apply_migrations(con: sqlite3.Connection) -> None:
    """The shipped migrations, exactly as SqliteStore.migrate applies them."""
    from bot.storage.db import migrations

    current = int(con.execute("PRAGMA user_version").fetchone()[0])
    for number, _name, sql in migrations("sqlite"):
        if number > current:
            con.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")


def big_database(ctx: Context) -> Path:
    """100,000 learners (telegram identities "1".."100000"), each with 50 reviewed cards of the real bank.

    Built once per process with plain SQL (setup, not a measurement) and shared by `scale` and `memory`.
    """
    cached = ctx.shared.get("big_db")
    if isinstance(cached, Path) and cached.exists():
        return cached
    from bot.core.bank import QuestionBank

    bank = QuestionBank.load(ROOT / "content")
    card_ids = [card.id for card in bank.cards]
    path = ctx.fresh("big.db")
    ctx.log(f"building {BIG_LEARNERS:,} learners x {BIG_CARDS_PER_LEARNER} card states in {path} ...")
    started = time.perf_counter()
    con = sqlite3.connect(path, isolation_level=None)
    apply_migrations(con)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-200000")
    indexes = [
        (name, sql)
        for name, sql in con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'card_states' AND sql IS NOT NULL"
        )
    ]
    for name, _sql in indexes:  # same indexes, built after the load: much faster
        con.execute(f"DROP INDEX {name}")
    now_ms = to_ms(BIG_NOW)
    day_ms = 86_400_000
    con.execute("BEGIN")
    con.execute(
        "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?) "
        "INSERT INTO learners (id, display_name, timezone, new_per_day, created_at) "
        "SELECT n, 'Learner ' || n, 'UTC', 10, ? FROM seq",
        (BIG_LEARNERS, now_ms - 90 * day_ms),
    )
    con.execute(
        "INSERT INTO identities (platform, external_id, learner_id) "
        "SELECT 'telegram', CAST(id AS TEXT), id FROM learners"
    )
    con.execute("CREATE TEMP TABLE bank_cards (idx INTEGER PRIMARY KEY, card_id TEXT NOT NULL)")
    con.executemany("INSERT INTO bank_cards VALUES (?, ?)", enumerate(card_ids))
    con.execute(
        "CREATE TEMP TABLE ks AS WITH RECURSIVE k(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM k WHERE k < ?) "
        "SELECT k FROM k",
        (BIG_CARDS_PER_LEARNER - 1,),
    )
    # Each learner: 50 consecutive cards of the bank (rotated per learner); about 1 in 8 is due now
    # (overdue by up to 10 days), the rest fall due within 60 days.
    con.execute(
        "INSERT INTO card_states (learner_id, card_id, state, step, stability, difficulty, due, last_review, reps, "
        "lapses, first_day) "
        "SELECT learner_id, card_id, 2, NULL, stability, difficulty, due, :now - :day - abs(random()) % (20 * :day), "
        "1 + abs(random()) % 11, abs(random()) % 3, "
        "date(:now / 1000 - (1 + abs(random()) % 79) * 86400, 'unixepoch') FROM ("
        "  SELECT l.id AS learner_id, c.card_id AS card_id, 1 + (abs(random()) % 11900) / 100.0 AS stability, "
        "  1 + (abs(random()) % 900) / 100.0 AS difficulty, "
        "  CASE WHEN abs(random()) % 8 = 0 THEN :now - abs(random()) % (10 * :day) "
        "       ELSE :now + 60000 + abs(random()) % (60 * :day) END AS due "
        "  FROM learners l JOIN ks ON 1 JOIN bank_cards c ON c.idx = (l.id * 37 + ks.k) % :count"
        ") ORDER BY learner_id, card_id",
        {"day": day_ms, "now": now_ms, "count": len(card_ids)},
    )
    con.execute("COMMIT")
    for _name, sql in indexes:
        con.execute(sql)
    con.execute("ANALYZE")
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    size = path.stat().st_size / 1e6
    ctx.log(f"built in {time.perf_counter() - started:.1f}s ({size:.0f} MB)")
    ctx.shared["big_db"] = path
    return path


# --- the fake Bot API in its own process ---------------------------------------------------------------


class FakeHost:
    """`python -m bench.fakehost` as a subprocess: FakeTelegram (plus a load driver) on its own core.

    Talks JSON lines over stdin/stdout. `token` and `api_url` are what a bot needs to reach it.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.process: asyncio.subprocess.Process | None = None
        self.token = ""
        self.api_url = ""

    async def __aenter__(self) -> FakeHost:
        args = [sys.executable, "-m", "bench.fakehost", json.dumps(self.options)]
        self.process = await asyncio.create_subprocess_exec(
            *args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        hello = await self._read(timeout=60)
        self.token = str(hello["token"])
        self.api_url = str(hello["api_url"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        process = self.process
        if process is None:
            return
        with contextlib.suppress(Exception):
            await self.request({"op": "quit"}, timeout=15)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the fake Bot API host exited")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"fake host: {answer['error']}")
        return answer

    async def request(self, message: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()
        return await self._read(timeout)
