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
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.core.competition import CompetitionService
from bot.core.daily import PUSH_PLATFORMS, DailyService, quiet_until
from bot.core.decks import Library
from bot.core.linking import LinkService
from bot.core.model import Match, Round
from bot.core.ports import Clock, Delivery, Notifier

log = logging.getLogger("studybot.scheduler")

Sleep = Callable[[float], Awaitable[None]]
QUIET_CHECK_SECONDS = 60.0  # a quiz held for quiet hours looks again this often


class DailyTicker:
    """Runs DailyService.tick once a minute on an AsyncIOScheduler."""

    def __init__(
        self,
        daily: DailyService,
        links: LinkService | None = None,
        *,
        interval: timedelta = timedelta(minutes=1),
        library: Library | None = None,
    ) -> None:
        self.daily = daily
        self.links = links  # its messages for accounts on this process's platforms go out with the tick
        self.library = library  # decks imported or removed by another process are read again
        self.interval = interval
        self.scheduler = AsyncIOScheduler(timezone="UTC")

    async def tick(self) -> None:
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
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.interval.total_seconds(),
            id="daily-tick",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=30,
            next_run_time=None,
        )
        self.scheduler.start()
        # the first tick right away, so pushes missed while the bot was down go out now
        self.scheduler.modify_job("daily-tick", next_run_time=_now_utc())

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)


def _now_utc() -> datetime:
    return datetime.now(UTC)


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
    ) -> None:
        self.competition = competition
        self.notifiers = notifiers
        self.clock = clock
        self.sleep = sleep
        self.lead_in = lead_in
        self.pause = pause
        self.step = step
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._early: set[int] = set()
        competition.on_match_started(self._started)
        competition.on_match_stopped(self._stopped)
        competition.on_round_complete(self._early.add)

    async def _started(self, match: Match) -> None:
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
        """After a restart: continue every running match (closing a round whose time is up)."""
        matches = await self.competition.store.running_matches()
        for match in matches:
            latest = await self.competition.store.latest_round(match.id)
            self._launch(match, latest if latest is not None and not latest.closed else None, 0.0, resumed=True)
        return len(matches)

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
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _wait_for_close(self, round_: Round) -> None:
        while round_.id not in self._early:
            remaining = (round_.closes_at - self.clock.now()).total_seconds()
            if remaining <= 0:
                break
            await self.sleep(min(remaining, self.step))
        self._early.discard(round_.id)

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
            await self._wait_for_close(current)
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
