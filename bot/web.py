"""The HTTP server inside `studybot run` (aiohttp): Telegram webhooks, /healthz and /metrics.

It runs when Telegram webhooks are on (TELEGRAM_WEBHOOK_URL) or when STUDYBOT_LISTEN is set, so a single
long-polling process opens no port unasked. /healthz answers 200 when the database answers a SELECT 1 and
the minute tick beat within 3 minutes (the verdict of `studybot health`), else 503 with what failed, as
JSON; /metrics is the Prometheus text format.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from bot.core.ports import Clock
from bot.metrics import CONTENT_TYPE, Metrics
from bot.ops import HEALTHY_WITHIN_S, HEARTBEAT, judge_heartbeat
from bot.storage.rows import to_ms
from bot.storage.store import Store

log = logging.getLogger("studybot.web")

DB_TIMEOUT_S = 5.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Webhook(Protocol):
    async def handle(self, request: web.Request) -> web.Response: ...


class Health:
    """The checks of /healthz on the running bot's own store."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        *,
        within_s: int = HEALTHY_WITHIN_S,
        redact: Any = None,
        own_tick: Callable[[], datetime | None] | None = None,
    ) -> None:
        self.own_tick = own_tick  # this process's last tick: replicas share the heartbeat row
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.within_s = within_s
        self._redact: Callable[[str], str] = redact or (lambda text: text)

    async def database_seconds(self) -> float:
        """Time one SELECT 1 (recorded in the metrics); raises when the database does not answer in time."""
        started = time.perf_counter()
        await asyncio.wait_for(self.store.db.fetch("SELECT 1"), DB_TIMEOUT_S)
        elapsed = time.perf_counter() - started
        self.metrics.record_db_roundtrip(elapsed)
        return elapsed

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, the JSON body): the database first, then the tick's heartbeat."""
        try:
            seconds = await self.database_seconds()
            stored = await asyncio.wait_for(self.store.last_beat(HEARTBEAT), DB_TIMEOUT_S)
            # this process's own tick once it has ticked (another replica's beat must not vouch for it)
            beat = (self.own_tick() if self.own_tick is not None else None) or stored
        except Exception as exc:  # any failure to answer is the database's: the page says so, briefly
            detail = self._redact(" ".join(str(exc).split())) or "no answer"
            return False, {"status": "unhealthy", "failed": "database", "detail": f"{type(exc).__name__}: {detail}"}
        now = self.clock.now().timestamp()
        ok, line = judge_heartbeat(None if beat is None else to_ms(beat), now, self.within_s)
        body: dict[str, Any] = {"database_ms": round(seconds * 1000, 2), "detail": line}
        if not ok:
            return False, {"status": "unhealthy", "failed": "tick", **body}
        return True, {"status": "healthy", **body}


class WebServer:
    """/healthz and /metrics, and the Telegram webhook at `webhook_path` when there is one."""

    def __init__(
        self,
        health: Health,
        metrics: Metrics,
        *,
        host: str,
        port: int,
        webhook: Webhook | None = None,
        webhook_path: str = "/",
    ) -> None:
        self.health = health
        self.metrics = metrics
        self.host = host
        self.port = port
        self.webhook = webhook
        self.webhook_path = webhook_path
        self._runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)  # Telegram's updates are small
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        if self.webhook is not None:
            app.router.add_post(self.webhook_path, self.webhook.handle)
        return app

    async def start(self) -> None:
        """Listen on host:port (port 0: a free one, then in `self.port`); OSError when it cannot."""
        # handler_cancellation off: an update whose sender hung up (Telegram timed out) is still handled to the
        # end, its claim already taken, so the re-sent copy is answered as a duplicate
        runner = web.AppRunner(self.application(), access_log=None, shutdown_timeout=5.0, handler_cancellation=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        routes = "/healthz, /metrics" + (f", webhook {self.webhook_path}" if self.webhook is not None else "")
        log.info("HTTP server listening on %s:%d (%s)", self.host, self.port, routes)

    async def stop(self) -> None:
        """Stop taking requests; those being handled finish first (within the shutdown timeout)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        ok, body = await self.health.check()
        return web.json_response(body, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            await self.health.database_seconds()
        except Exception:  # the round trip is not recorded; the page still shows the rest
            log.warning("the database did not answer the /metrics round trip")
        payload = await self.metrics.render()
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE})
