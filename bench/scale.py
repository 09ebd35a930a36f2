"""scale: next-card latency with 100,000 learners x 50 reviewed cards (card_states bulk-inserted with
SQL), measured through StudyService's next-card path (Commands.run(caller, "question")), with the query
plan of every statement that path runs (captured with SQLite's trace callback) showing index use.

Baseline: the same statements (the store's own SQL: the learner by identity, the pick context, the
attempt INSERT whose trigger expires the previous one) with plain sqlite3 in one thread, on the same
database, for other learners; the two alternate call by call.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any, cast

import fsrs

from bench.common import (
    BIG_LEARNERS,
    BIG_NOW,
    ROOT,
    Context,
    Result,
    big_database,
    connect_plain,
    latency_stats,
    percentile,
    result,
    to_ms,
)
from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.model import Caller, Chat, Identity
from bot.core.study import StudyService
from bot.storage.db import SqliteDatabase
from bot.storage.sqlite import SqliteStore
from bot.storage.study import _FIND_LEARNER, _PICK_CONTEXT
from tests.fakes import FakeClock

SAMPLES = 2_000
TARGET_P99_MS = 5.0


def _caller(n: int) -> Caller:
    return Caller(Identity("telegram", str(n)), f"Learner {n}", Chat("telegram", str(n)))


async def _plans(store: SqliteStore, commands: Commands, path: Path) -> list[tuple[str, list[str]]]:
    """EXPLAIN QUERY PLAN of each statement one next-card request runs."""
    statements: list[str] = []

    def trace(sql: str) -> None:
        head = sql.strip().split(None, 1)[0].upper() if sql.strip() else ""
        if head in ("SELECT", "UPDATE", "INSERT", "DELETE", "WITH"):
            statements.append(sql.strip())

    await cast(SqliteDatabase, store.db).conn.set_trace_callback(trace)
    await commands.run(_caller(BIG_LEARNERS), "question")
    await cast(SqliteDatabase, store.db).conn.set_trace_callback(cast(Any, None))  # None removes it
    con = sqlite3.connect(path)
    plans: list[tuple[str, list[str]]] = []
    try:
        for sql in statements:
            plans.append((sql, [str(row[3]) for row in con.execute(f"EXPLAIN QUERY PLAN {sql}")]))
    finally:
        con.close()
    return plans


def _uses_indexes(plans: list[tuple[str, list[str]]]) -> bool:
    """No full scan of a table: every table access is a SEARCH by a key or an index."""
    return not any(row.startswith("SCAN ") and "USING" not in row for _sql, rows in plans for row in rows)


class PlainNextCard:
    """The next-card statements in plain sqlite3, one call at a time: the store's own SQL in the same
    transaction shape (three single statements, each its own transaction)."""

    def __init__(self, path: Path) -> None:
        self.con = connect_plain(path)
        self.now = to_ms(BIG_NOW)

    def close(self) -> None:
        self.con.close()

    def call(self, n: int) -> None:
        con, now = self.con, self.now
        learner_id = con.execute(_FIND_LEARNER, ("telegram", str(n))).fetchone()[0]
        context = con.execute(_PICK_CONTEXT, (learner_id, learner_id, now - 3_600_000, learner_id)).fetchall()
        skipped = {r[0] for r in context if r[3] == 1}
        schedule = [r for r in context if r[3] == 0]
        card_id = next((r[0] for r in schedule if r[1] <= now and r[0] not in skipped), schedule[0][0])
        con.execute(
            "INSERT INTO attempts (learner_id, card_id, chat_key, topic, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (learner_id, card_id, f"telegram:{n}", None, "open", now),
        ).fetchall()


async def run(ctx: Context) -> list[Result]:
    path = big_database(ctx)
    rng = random.Random(99)
    sample = rng.sample(range(1, BIG_LEARNERS), SAMPLES * 2)
    bank = QuestionBank.load(ROOT / "content")
    store = await SqliteStore(path).open()
    plain = PlainNextCard(path)
    times: list[float] = []
    base: list[float] = []
    problems = 0
    try:
        study = StudyService(store, bank, FakeClock(BIG_NOW), scheduler=fsrs.Scheduler(), rng=random.Random(1))
        commands = Commands(study)
        plans = await _plans(store, commands, path)
        ctx.log(f"scale: {SAMPLES} next cards through StudyService, alternating with plain sqlite3 ...")
        for n, m in zip(sample[:SAMPLES], sample[SAMPLES:], strict=True):
            started = time.perf_counter()
            plain.call(m)
            base.append(time.perf_counter() - started)
            started = time.perf_counter()
            reply = await commands.run(_caller(n), "question")
            times.append(time.perf_counter() - started)
            if not reply.buttons:
                problems += 1
    finally:
        plain.close()
        await store.close()
    for sql, rows in plans:
        ctx.log(f"plan: {sql}")
        for row in rows:
            ctx.log(f"        {row}")
    stats = latency_stats(times)
    base_stats = latency_stats(base)
    p99 = percentile(times, 99) * 1000
    return [
        result(
            "scale",
            p99,
            "ms (p99 next card)",
            base_stats["p99_ms"],
            better="lower",
            target=f"p99 <= {TARGET_P99_MS} ms",
            target_met=p99 <= TARGET_P99_MS,
            p50_ms=stats["p50_ms"],
            max_ms=stats["max_ms"],
            baseline_p50_ms=base_stats["p50_ms"],
            learners=BIG_LEARNERS,
            cards_per_learner=50,
            samples=SAMPLES,
            no_card=problems,
            index_use=_uses_indexes(plans),
            query_plan=[{"sql": " ".join(sql.split())[:160], "plan": rows} for sql, rows in plans],
            note="baseline = the same next-card statements in plain sqlite3 (one thread) on the same database",
        )
    ]
