"""Telegram webhooks: the update Telegram POSTs, checked, deduplicated and handled before the answer.

Several replicas behind a load balancer share one database. Each replica registers the webhook at start
(setWebhook is idempotent). Telegram re-sends an update whose response was slow or not 2xx, possibly to
another replica, so an update is claimed by its update_id in the database first: the first claim handles
it, a re-sent copy is answered 200 without being handled again. The update is handled before the HTTP
response goes back, so Telegram sends a chat's next update only after this one is done. When handling
raises, the claim is released and the answer is 500, so Telegram's next attempt is handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiohttp import web
from telegram import Update
from telegram.ext import ContextTypes

from bot.adapters.telegram.bot import ALLOWED_UPDATES, TelegramBot
from bot.core.ports import Clock

log = logging.getLogger("studybot.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
KEEP_UPDATE_IDS = timedelta(days=1)  # Telegram gives up re-sending an update long before that
PRUNE_EVERY_S = 3600.0
UPDATE_KINDS = (*ALLOWED_UPDATES, "edited_message", "poll", "channel_post", "chat_member")


class UpdateClaims(Protocol):
    """What the webhook needs of the store (bot.storage.updates.UpdateRepository)."""

    async def claim_update(self, update_id: int, now: datetime, replica: str) -> bool: ...

    async def release_update(self, update_id: int) -> None: ...

    async def prune_updates(self, before: datetime) -> int: ...


class UpdateMetrics(Protocol):
    """What the webhook records (bot.metrics.Metrics)."""

    def record_update(self, kind: str, outcome: str, seconds: float | None = None) -> None: ...


class _HandlingFailed(Exception):
    """A handler of this update raised (python-telegram-bot reports it to the error handlers only)."""


def update_kind(body: dict[str, Any]) -> str:
    """The update's type (message, callback_query, ...), for metrics; "other" for any other."""
    return next((kind for kind in UPDATE_KINDS if kind in body), "other")


class TelegramWebhook:
    """The webhook endpoint of one replica: `handle` is its aiohttp handler, `register` calls setWebhook."""

    def __init__(
        self,
        telegram: TelegramBot,
        claims: UpdateClaims,
        clock: Clock,
        *,
        url: str,
        secret: str,
        replica: str,
        metrics: UpdateMetrics | None = None,
        prune_every_s: float = PRUNE_EVERY_S,
    ) -> None:
        self.telegram = telegram
        self.claims = claims
        self.clock = clock
        self.url = url
        self._secret = secret.encode()
        self.replica = replica
        self.metrics = metrics
        self.prune_every_s = prune_every_s
        self._failures: dict[int, BaseException] = {}  # id(Update) -> what a handler raised
        self._pruner: asyncio.Task[None] | None = None
        telegram.application.add_error_handler(self._note_failure, block=True)

    async def register(self) -> None:
        """setWebhook with the secret and the update types the bot handles (the same call on every replica)."""
        await self.telegram.application.bot.set_webhook(
            url=self.url,
            secret_token=self._secret.decode(),
            allowed_updates=ALLOWED_UPDATES,
        )
        log.info("Telegram webhook registered; this replica (%s) takes updates on its HTTP server", self.replica)

    def start_pruning(self) -> None:
        """Forget old update ids now and then (every `prune_every_s`), in the background."""
        if self._pruner is None:
            self._pruner = asyncio.create_task(self._prune_forever(), name="telegram-update-prune")

    async def stop(self) -> None:
        pruner, self._pruner = self._pruner, None
        if pruner is not None:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner

    async def prune(self) -> int:
        return await self.claims.prune_updates(self.clock.now() - KEEP_UPDATE_IDS)

    async def _prune_forever(self) -> None:
        while True:
            try:
                removed = await self.prune()
                if removed:
                    log.info("forgot %d handled update id(s) older than a day", removed)
            except Exception:  # the database may be down for a while; try again later
                log.exception("pruning old update ids failed")
            await asyncio.sleep(self.prune_every_s)

    async def _note_failure(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(update, Update) and context.error is not None:
            self._failures[id(update)] = context.error

    def _record(self, kind: str, outcome: str, started: float | None = None) -> None:
        if self.metrics is not None:
            seconds = None if started is None else time.perf_counter() - started
            self.metrics.record_update(kind, outcome, seconds)

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            self._record("unknown", "refused")
            log.warning("webhook request refused: wrong or missing secret header (from %s)", request.remote)
            return web.json_response({"ok": False, "error": "forbidden"}, status=403)
        body, problem = await _read_update(request)
        if body is None:
            self._record("unknown", "malformed")
            log.warning("webhook request refused: %s", problem)
            return web.json_response({"ok": False, "error": problem}, status=400)
        kind, update_id = update_kind(body), int(body["update_id"])
        try:
            update = Update.de_json(body, self.telegram.application.bot)
        except Exception as exc:  # fields of the wrong type: Telegram would never send it
            self._record(kind, "malformed")
            log.warning("webhook update %d refused: not a Telegram update (%s)", update_id, type(exc).__name__)
            return web.json_response({"ok": False, "error": "not a Telegram update"}, status=400)
        try:
            claimed = await self.claims.claim_update(update_id, self.clock.now(), self.replica)
        except Exception:
            self._record(kind, "failed", started)
            log.exception("webhook update %d: recording it failed; Telegram will send it again", update_id)
            return web.json_response({"ok": False, "error": "try again"}, status=500)
        if not claimed:
            self._record(kind, "duplicate")
            log.info("webhook update %d was already handled; answered without handling it again", update_id)
            return web.json_response({"ok": True, "duplicate": True})
        try:
            await self._process(update)
        except Exception as exc:
            with contextlib.suppress(Exception):  # the release may fail too (database down): logged below
                await self.claims.release_update(update_id)
            self._record(kind, "failed", started)
            log.error("webhook update %d failed (%r); Telegram will send it again", update_id, exc)
            return web.json_response({"ok": False, "error": "try again"}, status=500)
        self._record(kind, "handled", started)
        return web.json_response({"ok": True})

    async def _process(self, update: Update) -> None:
        """Run the update through the Application's handlers, here and now; a handler's error is raised."""
        try:
            await self.telegram.application.process_update(update)
        finally:
            failure = self._failures.pop(id(update), None)
        if failure is not None:
            raise _HandlingFailed(type(failure).__name__) from failure


async def _read_update(request: web.Request) -> tuple[dict[str, Any] | None, str]:
    """The body as a JSON object with an integer update_id, or None and what is wrong with it."""
    try:
        raw = await request.read()
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, "the body is not JSON"
    if not isinstance(body, dict):
        return None, "the body is not a JSON object"
    update_id = body.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return None, "the body has no integer update_id"
    return body, ""
