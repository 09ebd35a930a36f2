"""Time-driven work: APScheduler's minute tick for daily pushes, and the rounds of quiz matches.

The daily tick is an AsyncIOScheduler interval job (coalesced, one instance at a time, with a
misfire grace time). Quiz rounds last 10-120 s, so each running match is an asyncio task that
sleeps until its round closes (or until every player of a solo match has answered); all match state
is in the database, so `resume()` after a restart continues or cleanly ends every running match.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.core.competition import CompetitionService
from bot.core.daily import PUSH_PLATFORMS, DailyService, quiet_until
from bot.core.decks import Library
from bot.core.linking import LinkService
from bot.core.model import Match, MatchStatus, Round
from bot.core.ports import Clock, Delivery, Notifier
from bot.metrics import Metrics

log = logging.getLogger("studybot.scheduler")

Sleep = Callable[[float], Awaitable[None]]
TICK_OFFSET = timedelta(milliseconds=200)  # past the whole minute, so a push due at it is due when the tick runs
QUIET_CHECK_SECONDS = 60.0  # a quiz held for quiet hours looks again this often
# Several processes: a match's lease lasts this long and is renewed this often, so another process takes a
# match over within MATCH_LEASE_SECONDS + MATCH_WATCH_SECONDS of its process dying (under 30 s)
MATCH_LEASE_SECONDS = 15.0
MATCH_WATCH_SECONDS = 5.0
SHARED_LOOK_SECONDS = 1.0  # how often a round's owner looks for answers and stops that reached another process


class DailyTicker:
    """Runs DailyService.tick once a minute on an AsyncIOScheduler."""

    def __init__(
        self,
        daily: DailyService,
        links: LinkService | None = None,
        *,
        interval: timedelta = timedelta(minutes=1),
        library: Library | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics  # pushes sent / failed / deferred, for /metrics
        self.daily = daily
        self.links = links  # its messages for accounts on this process's platforms go out with the tick
        self.library = library  # decks imported or removed by another process are read again
        self.interval = interval
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._running = asyncio.Lock()

    async def tick(self) -> None:
        async with self._running:  # the first tick and the minute's tick never overlap
            await self._tick()

    async def _tick(self) -> None:
        if self.library is not None:
            try:
                await self.library.refresh()
            except Exception:  # the decks read before stay in use
                log.exception("reading the decks again failed")
        if self.links is not None:
            try:
                await self.links.deliver_notices()
            except Exception:  # the pushes below still go out
                log.exception("delivering link messages failed")
        try:
            report = await self.daily.tick()
        except Exception:  # keep ticking: the next minute may succeed
            log.exception("daily tick failed")
            return
        if self.metrics is not None:
            self.metrics.record_tick(report)
        if report.claimed:
            log.info(
                "daily tick: %d claimed, %d sent, %d skipped (practised), %d held (quiet hours), %d asked to keep, "
                "%d unreachable, %d retrying, %d gave up",
                report.claimed,
                report.sent,
                report.skipped,
                report.deferred,
                report.asked,
                report.unreachable,
                report.retrying,
                report.gave_up,
            )

    def start(self) -> None:
        now = _now_utc()
        self.scheduler.add_job(
            self.tick,
            IntervalTrigger(seconds=self.interval.total_seconds(), start_date=_tick_grid_start(now, self.interval)),
            id="daily-tick",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=30,
        )
        self.scheduler.start()
        # the first tick right away, so pushes missed while the bot was down go out now (a one-off job: moving
        # the interval job's next run would move its grid off the whole minute)
        self.scheduler.add_job(self.tick, "date", run_date=now, id="daily-tick-first", misfire_grace_time=30)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)


def _now_utc() -> datetime:
    return datetime.now(UTC)


def _tick_grid_start(now: datetime, interval: timedelta) -> datetime:
    """The ticks fall on whole minutes (TICK_OFFSET past): a push is due at its minute, so it goes out in
    the first seconds of it, on every replica alike, whenever the process started. Shorter intervals
    (tests) start on the next whole second."""
    if interval >= timedelta(minutes=1):
        return now.replace(second=0, microsecond=0) + timedelta(minutes=1) + TICK_OFFSET
    return now.replace(microsecond=0) + timedelta(seconds=1)


class MatchRunner:
    """Plays running matches round by round through the platforms' notifiers."""

    def __init__(
        self,
        competition: CompetitionService,
        notifiers: Mapping[str, Notifier],
        clock: Clock,
        *,
        sleep: Sleep = asyncio.sleep,
        lead_in: float = 3.0,
        pause: float = 4.0,
        step: float = 0.25,
        shared: bool = False,
        lease: float = MATCH_LEASE_SECONDS,
        watch_every: float = MATCH_WATCH_SECONDS,
    ) -> None:
        self.competition = competition
        self.notifiers = notifiers
        self.clock = clock
        self.sleep = sleep
        self.lead_in = lead_in
        self.pause = pause
        self.step = step
        # several processes on one database: each match is played by the process holding its lease, renewed
        # every `watch_every` seconds; a match whose lease ran out (its process died) is taken over
        self.shared = shared
        self.lease = lease
        self.watch_every = watch_every
        self.owner = uuid.uuid4().hex
        self._watcher: asyncio.Task[None] | None = None
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._early: set[int] = set()
        competition.on_match_started(self._started)
        competition.on_match_stopped(self._stopped)
        competition.on_round_complete(self._early.add)

    def _lease_end(self) -> datetime:
        return self.clock.now() + timedelta(seconds=self.lease)

    async def _started(self, match: Match) -> None:
        await self.competition.store.lease_match(match.id, self.owner, self._lease_end())
        self._launch(match, None, self.lead_in)

    async def _stopped(self, match: Match) -> None:
        task = self.tasks.pop(match.id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _launch(self, match: Match, resume_round: Round | None, lead_in: float, *, resumed: bool = False) -> None:
        task = asyncio.create_task(self.play(match, resume_round, lead_in, resumed=resumed), name=f"match-{match.id}")
        self.tasks[match.id] = task
        task.add_done_callback(partial(self._done, match.id))

    def _done(self, match_id: int, task: asyncio.Task[None]) -> None:
        if self.tasks.get(match_id) is task:
            del self.tasks[match_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("match %s stopped with an error", match_id, exc_info=task.exception())

    async def resume(self) -> int:
        """After a restart: continue every running match (closing a round whose time is up). With several
        processes (shared), only the matches whose lease ran out: the others have a live process."""
        store = self.competition.store
        if self.shared:
            matches = await store.take_over_matches(self.owner, self.clock.now(), self._lease_end(), self.lease)
        else:  # one process: every running match was this process's before the restart
            matches = await store.running_matches()
            for match in matches:
                await store.lease_match(match.id, self.owner, self._lease_end())
        for match in matches:
            await self._resume(match)
        return len(matches)

    async def _resume(self, match: Match) -> None:
        latest = await self.competition.store.latest_round(match.id)
        self._launch(match, latest if latest is not None and not latest.closed else None, 0.0, resumed=True)

    async def watch_once(self) -> tuple[set[int], int]:
        """Renew the leases of the matches this process plays (a match it lost is no longer played here),
        and take over those whose process is gone; (renewed ids, matches taken over)."""
        store = self.competition.store
        playing = set(self.tasks)
        kept = await store.renew_match_leases(self.owner, playing, self._lease_end())
        for match_id in playing - kept:
            lost = await store.get_match(match_id)
            if lost is not None and lost.status is MatchStatus.RUNNING:  # taken over after a stall: played there
                task = self.tasks.pop(match_id, None)
                if task is not None:
                    task.cancel()
            # an ended match's task finishes by itself (it may be sending the final standings)
        taken = await store.take_over_matches(self.owner, self.clock.now(), self._lease_end(), self.lease)
        for match in taken:
            if match.id not in self.tasks:
                log.info("taking over quiz match %s from a process that stopped renewing it", match.id)
                await self._resume(match)
        return kept, len(taken)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.watch_every)
            try:
                await self.watch_once()
            except Exception:  # the next look may succeed; leases outlast a few failures
                log.exception("renewing quiz match leases failed")

    def start_watching(self) -> None:
        """Renew and take over match leases every `watch_every` seconds (several processes on one database)."""
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="match-leases")

    async def _quiet_until(self, match: Match) -> datetime | None:
        """When the quiet hours of a private chat's player end, if they are in them now; else None."""
        if not match.solo or match.platform not in PUSH_PLATFORMS or match.starter_id is None:
            return None
        learner = await self.competition.study.store.get_learner(match.starter_id)
        if learner is None:
            return None
        return quiet_until(learner.quiet_hours, learner.timezone, self.clock.now())

    async def _hold_for_quiet_hours(self, match: Match) -> None:
        """A solo quiz in a private chat that resumes after a restart was not started just now: during the
        player's quiet hours it waits, without a message, until they end (re-read each minute, in case the
        player changes them)."""
        while (until := await self._quiet_until(match)) is not None:
            await self.sleep(min((until - self.clock.now()).total_seconds(), QUIET_CHECK_SECONDS))

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _wait_for_close(self, round_: Round, solo: bool) -> None:
        looked = self.clock.now()
        while round_.id not in self._early:
            remaining = (round_.closes_at - self.clock.now()).total_seconds()
            if remaining <= 0:
                break
            if self.shared and (self.clock.now() - looked).total_seconds() >= SHARED_LOOK_SECONDS:
                # answers and /stopquiz may reach another process: look in the database
                looked = self.clock.now()
                if await self._closed_elsewhere(round_, solo):
                    break
            await self.sleep(min(remaining, self.step))
        self._early.discard(round_.id)

    async def _closed_elsewhere(self, round_: Round, solo: bool) -> bool:
        store = self.competition.store
        stored = await store.get_round(round_.id)
        if stored is None or stored.closed:
            return True
        return solo and bool(await store.round_answers(round_.id))

    async def play(self, match: Match, resume_round: Round | None, lead_in: float, *, resumed: bool = False) -> None:
        notifier = self.notifiers.get(match.platform)
        if notifier is None:
            log.warning("no %s adapter for match %s; ending it", match.platform, match.id)
            await self.competition.end_unresumable(match, "The quiz could not continue after a restart.")
            return
        if resumed:
            await self._hold_for_quiet_hours(match)
        if lead_in:
            await self.sleep(lead_in)
        current = resume_round
        while True:
            if current is None:
                opened = await self.competition.open_round(match.id)
                if opened is None:
                    return
                current = opened.round
                result = await notifier.send(match.chat_id, opened.reply)
                if result.delivery is Delivery.SENT:
                    await self.competition.attach_message(current.id, result.poll_id, result.message_id)
                    current = await self.competition.store.get_round(current.id) or current
                elif result.delivery is Delivery.UNREACHABLE:
                    await self.competition.end_unresumable(match, "The chat became unreachable.")
                    return
            await self._wait_for_close(current, match.solo)
            closed = await self.competition.close_round(current.id)
            if closed is None:  # stopped meanwhile
                return
            if current.message_id:
                with contextlib.suppress(Exception):
                    await notifier.finish_round(match.chat_id, current.message_id, closed.round_view)
            await notifier.send(match.chat_id, closed.reply)
            if closed.final is not None:
                await notifier.send(match.chat_id, closed.final)
                return
            current = None
            await self.sleep(self.pause)
