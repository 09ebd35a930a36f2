"""A per-learner action budget, so one person (or a script) cannot flood the bot."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from datetime import datetime, timedelta

from bot.core.ports import Clock


class Throttle:
    """At most `limit` actions per `window` for each identity (or other key) (a sliding window, in memory).

    `check` says whether the action may go ahead and whether this is the first refusal of the
    current burst (so the learner is told to slow down once, not once per flooded message).
    """

    def __init__(self, clock: Clock, *, limit: int = 20, window: timedelta = timedelta(seconds=10)) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self._events: dict[Hashable, deque[datetime]] = {}
        self._warned: dict[Hashable, datetime] = {}
        self._checks = 0

    def check(self, identity: Hashable) -> tuple[bool, bool]:
        """(allowed, first refusal of this burst)."""
        now = self.clock.now()
        self._checks += 1
        if self._checks % 1000 == 0:
            self._forget_idle(now)
        events = self._events.setdefault(identity, deque())
        while events and now - events[0] >= self.window:
            events.popleft()
        if len(events) >= self.limit:
            warned = self._warned.get(identity)
            first = warned is None or now - warned >= self.window
            if first:
                self._warned[identity] = now
            return False, first
        events.append(now)
        return True, False

    def _forget_idle(self, now: datetime) -> None:
        idle = [who for who, events in self._events.items() if not events or now - events[-1] >= self.window]
        for who in idle:
            self._events.pop(who, None)
            self._warned.pop(who, None)
