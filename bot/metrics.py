"""Metrics: the instruments `/metrics` shows in the Prometheus text format (prometheus-client).

Each Metrics has its own CollectorRegistry (never the library's global one), so several apps in one
process (tests) keep separate counts. Code that does the work records into it: the webhook its updates,
the minute tick its pushes (`record_tick`), the health and metrics pages the database round trip.
Gauges that are cheaper to read than to keep in step (running matches) are read at scrape time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.core.daily import TickReport

log = logging.getLogger("studybot.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST
# webhook handling: a cached answer takes milliseconds, a picture or a model-graded answer seconds
UPDATE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

Count = Callable[[], Awaitable[int]]


class Metrics:
    """The bot's instruments on a private registry; `render()` is the /metrics page."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.updates = Counter(
            "studybot_updates",
            "Telegram webhook updates by kind (message, callback_query, ...) and outcome "
            "(handled, duplicate, failed, refused, malformed)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.update_seconds = Histogram(
            "studybot_update_seconds",
            "Time from receiving a webhook update to answering it (handled or failed), by kind",
            ["kind"],
            buckets=UPDATE_BUCKETS,
            registry=self.registry,
        )
        self.pushes = Counter(
            "studybot_pushes",
            "Daily pushes by outcome: sent (a card or the keep/move/stop question), failed (unreachable, "
            "rejected, given up), deferred (quiet hours, or a retry later), skipped (already practised today)",
            ["outcome"],
            registry=self.registry,
        )
        self.db_seconds = Histogram(
            "studybot_db_roundtrip_seconds",
            "Round trip of a SELECT 1 to the database, measured by each /healthz and /metrics request",
            buckets=DB_BUCKETS,
            registry=self.registry,
        )
        self.running_matches = Gauge(
            "studybot_running_matches", "Quiz matches running now (read at scrape time)", registry=self.registry
        )
        for outcome in ("sent", "failed", "deferred", "skipped"):  # present at 0 before the first tick
            self.pushes.labels(outcome=outcome)
        self._count_matches: Count | None = None

    def record_update(self, kind: str, outcome: str, seconds: float | None = None) -> None:
        """One webhook update: its outcome, and (when it was handled or failed) how long that took."""
        self.updates.labels(kind=kind, outcome=outcome).inc()
        if seconds is not None:
            self.update_seconds.labels(kind=kind).observe(seconds)

    def record_tick(self, report: TickReport) -> None:
        """The pushes of one minute tick (DailyService.tick's report)."""
        self.pushes.labels(outcome="sent").inc(report.sent + report.asked)
        self.pushes.labels(outcome="failed").inc(report.unreachable + report.rejected + report.gave_up)
        self.pushes.labels(outcome="deferred").inc(report.deferred + report.retrying)
        self.pushes.labels(outcome="skipped").inc(report.skipped)

    def record_db_roundtrip(self, seconds: float) -> None:
        self.db_seconds.observe(seconds)

    def count_running_matches(self, count: Count) -> None:
        """Read the running matches with `count` each time the metrics are scraped."""
        self._count_matches = count

    async def render(self) -> bytes:
        """The registry in the Prometheus text format, scrape-time gauges read first (a failed read keeps
        the last value, logged)."""
        if self._count_matches is not None:
            try:
                self.running_matches.set(await self._count_matches())
            except Exception as exc:  # the database may be down: the other figures still count
                log.warning("counting running matches for /metrics failed: %s", type(exc).__name__)
        return generate_latest(self.registry)
