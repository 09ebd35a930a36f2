"""quiz: 200 players answering one round of a group quiz within one second through
CompetitionService.answer (arrivals spread uniformly over the second, each player a task), on an on-disk
SQLite database. Then every player answers again (all must be refused), the round is closed and the
stored answers and standings are checked: everyone scored exactly once.

Baseline: the same number of plain sqlite3 inserts of a round answer (the store's one-answer INSERT, one
transaction each, one thread). The figure is the p99 latency of one answer.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime

from bench.common import (
    ROOT,
    Context,
    Result,
    apply_migrations,
    connect_plain,
    latency_stats,
    percentile,
    result,
    to_ms,
)
from bot.core.bank import QuestionBank
from bot.core.competition import BASE_POINTS, CompetitionService
from bot.core.model import Caller, Chat, Identity
from bot.core.ports import SystemClock
from bot.core.study import StudyService
from bot.storage.sqlite import SqliteStore

PLAYERS = 200
WINDOW_S = 1.0
GROUP = Chat("telegram", "-100500", is_group=True)


def plain_inserts(ctx: Context, count: int) -> list[float]:
    """Per-insert seconds of `count` one-answer INSERTs (own transaction each) in plain sqlite3."""
    con = connect_plain(ctx.fresh("quiz-plain.db"))
    apply_migrations(con)
    now = to_ms(datetime.now().astimezone())
    con.execute(
        "INSERT INTO learners (id, display_name, created_at) SELECT value, 'P', 0 FROM json_each(?)",
        (str(list(range(1, count + 1))),),
    )
    round_id = con.execute(
        "INSERT INTO rounds (chat_key, number, card_id, options, correct_index, speed_bonus, opened_at, closes_at) "
        "VALUES ('telegram:-1', 1, 'c', '[0,1,2,3]', 0, 50, ?, ?)",
        (now, now + 60_000),
    ).lastrowid
    times: list[float] = []
    for learner in range(1, count + 1):
        started = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        con.execute(
            "INSERT INTO round_answers (round_id, learner_id, option_index, correct, points, elapsed_ms, "
            "answered_at) SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS "
            "(SELECT 1 FROM rounds WHERE id = ? AND closed = 0 AND closes_at >= ?) "
            "ON CONFLICT (round_id, learner_id) DO NOTHING",
            (round_id, learner, 0, 1, 140, 300, now, round_id, now),
        )
        con.execute("COMMIT")
        times.append(time.perf_counter() - started)
    con.close()
    return times


async def _burst(competition: CompetitionService, store: SqliteStore, players: list[Caller]) -> float:
    """Answers/s when all players (known learners by now) answer a new round at the same instant."""
    chat = Chat("telegram", "-100501", is_group=True)
    await competition.start(Caller(Identity("telegram", "1"), "Starter", chat), "1 60")
    match = await store.running_match(chat.key)
    assert match is not None
    opened = await competition.open_round(match.id)
    assert opened is not None
    moved = [Caller(p.identity, p.display_name, chat) for p in players]
    started = time.perf_counter()
    await asyncio.gather(*(competition.answer(p, opened.round.id, 0) for p in moved))
    return len(moved) / (time.perf_counter() - started)


async def run(ctx: Context) -> list[Result]:
    ctx.log(f"quiz: plain sqlite3 baseline, {PLAYERS} inserts ...")
    base = plain_inserts(ctx, PLAYERS)
    bank = QuestionBank.load(ROOT / "content")
    clock = SystemClock()
    store = await SqliteStore(ctx.fresh("quiz.db")).open()
    try:
        study = StudyService(store, bank, clock, rng=random.Random(1))
        competition = CompetitionService(store, bank, clock, study, rng=random.Random(2))
        starter = Caller(Identity("telegram", "1"), "Starter", GROUP)
        await competition.start(starter, "1 60")
        match = await store.running_match(GROUP.key)
        assert match is not None
        opened = await competition.open_round(match.id)
        assert opened is not None
        round_ = opened.round
        rng = random.Random(5)
        players = [Caller(Identity("telegram", str(1000 + n)), f"Player {n}", GROUP) for n in range(PLAYERS)]
        choices = [rng.randrange(len(round_.options)) for _ in players]
        offsets = [rng.uniform(0, WINDOW_S) for _ in players]
        latencies: list[float] = [0.0] * PLAYERS
        accepted = [False] * PLAYERS
        ctx.log(f"quiz: {PLAYERS} players answering within {WINDOW_S:.0f}s through CompetitionService.answer ...")
        origin = time.perf_counter()

        async def play(n: int) -> None:
            await asyncio.sleep(max(0.0, origin + offsets[n] - time.perf_counter()))
            started = time.perf_counter()
            reply = await competition.answer(players[n], round_.id, choices[n])
            latencies[n] = time.perf_counter() - started
            accepted[n] = (reply.notice or "").startswith("Locked in")

        await asyncio.gather(*(play(n) for n in range(PLAYERS)))
        all_done = time.perf_counter() - origin
        again = await asyncio.gather(
            *(competition.answer(players[n], round_.id, (choices[n] + 1) % len(round_.options)) for n in range(PLAYERS))
        )
        refused = sum(1 for reply in again if "already answered" in (reply.notice or ""))
        closed = await competition.close_round(round_.id)
        answers = await store.round_answers(round_.id)
        standings = await store.standings(match.id)
        capacity = await _burst(competition, store, players)
    finally:
        await store.close()
    by_learner = {a.learner_id: a for a in answers}
    correct = sum(1 for c in choices if c == round_.correct_index)
    scored_once = (
        closed is not None
        and all(accepted)
        and refused == PLAYERS
        and len(answers) == PLAYERS
        and len(by_learner) == PLAYERS
        and len(standings) == PLAYERS
        and all(s.answered == 1 for s in standings)
        and sum(1 for s in standings if s.points >= BASE_POINTS) == correct
        and all(s.points == 0 for s in standings if s.correct == 0)
    )
    stats = latency_stats(latencies)
    base_stats = latency_stats(base)
    p99 = percentile(latencies, 99) * 1000
    return [
        result(
            "quiz",
            p99,
            "ms (p99 per answer)",
            base_stats["p99_ms"],
            better="lower",
            p50_ms=stats["p50_ms"],
            max_ms=stats["max_ms"],
            baseline_p50_ms=base_stats["p50_ms"],
            players=PLAYERS,
            all_answered_in_s=round(all_done, 3),
            burst_capacity_per_s=round(capacity, 1),
            accepted=sum(accepted),
            duplicates_refused=refused,
            stored_answers=len(answers),
            correct_answers=correct,
            target="all scored exactly once",
            target_met=scored_once,
            note=(
                f"{PLAYERS} players, arrivals uniform over {WINDOW_S:.0f}s, first contact of each player "
                "(learner created on the fly); baseline = the same number of plain sqlite3 one-answer inserts; "
                "burst_capacity_per_s = answers/s when the same players all answer a new round at once "
                "(above 200/s the 1-second window does not queue)"
            ),
        )
    ]
