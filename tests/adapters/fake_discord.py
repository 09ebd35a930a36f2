"""An in-process fake of Discord's REST API and websocket gateway, for adapter tests.

A real ``discord.py`` 2.x client talks to it over loopback::

    async with FakeDiscord() as fake:
        guild_id = fake.add_guild(name="Study Group")
        with point_discord_at(fake):
            client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
            await client.login("x" * 24 + ".fake.token")
            task = asyncio.create_task(client.connect())
            await client.wait_until_ready()
            await fake.send_interaction(fake.slash_interaction("ping", guild_id=guild_id))
            callback = await fake.wait_for_callback()
            await client.close()

What the fake does, and where it follows Discord rather than being merely permissive:

* REST under ``/api/v10`` (and ``/api/v9``): every JSON answer carries exactly
  ``Content-Type: application/json`` (discord.py parses a body as JSON only then).  Bot routes need
  ``Authorization: Bot <token>``; webhook and interaction-callback routes need none, like Discord.
* Validation where Discord rejects: message content, embeds, components, autocomplete choices,
  modals and command definitions; violations answer 400 with code 50035 and a nested ``errors``
  object shaped like Discord's.  Empty messages answer 50006.
* Files: uploads keep their bytes (``FakeDiscord.uploads``), an image attachment carries its width
  and height, and an embed image given as ``attachment://NAME`` shows that attachment (an image URL
  must be http(s) or attachment://).  A file a user attaches to a slash command is registered with
  :meth:`FakeDiscord.add_attachment` and given as the attachment option's value; the interaction
  carries it in ``resolved.attachments``.  Every attachment URL is signed (``ex``, ``is``, ``hm``) and
  served by a fake CDN on the same port; an unsigned or altered URL answers 404, like Discord's CDN,
  and ``fail_next("GET /ephemeral-attachments/", 500)`` makes a download fail.
* Interactions: a token is valid for 15 minutes; the first callback must arrive within
  ``callback_deadline`` seconds (3 s, as on Discord) of the dispatch, and only once (40060).
* Faults on demand with :meth:`FakeDiscord.fail_next` (429 with ``Via`` and rate-limit headers,
  403, 5xx), slow answers with :meth:`FakeDiscord.delay_next`, and persistent DM refusal with
  :meth:`FakeDiscord.block_dms`.
* Gateway: HELLO, IDENTIFY -> READY (+ GUILD_CREATE when the GUILDS intent is set), heartbeat
  ACKs, RESUME with replay of missed events, RECONNECT on request, GUILD_MEMBERS_CHUNK for
  member requests, and Discord's close codes for protocol errors.  Frames are plain JSON text
  unless ``compress=True`` and the client asked for ``compress=zlib-stream``.
* Shards: ``GET /gateway/bot`` recommends ``shard_count`` shards.  An IDENTIFY may carry
  ``shard: [shard_id, num_shards]`` (a malformed pair closes with 4010, Invalid shard); that session
  gets READY and GUILD_CREATE for its own guilds only, and every later event of a guild goes to the
  sessions whose shard is ``(guild_id >> 22) % num_shards``; events of no guild (DMs) go to shard 0.
  A session without ``shard`` is shard 0 of 1 and gets everything.  :attr:`FakeDiscord.dispatched`
  records which shard got each event, and :meth:`FakeDiscord.guild_on_shard` makes a guild id that
  lands on a given shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import re
import secrets
import socket
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeVar

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from tests.adapters.fake_telegram import image_size

__all__ = [
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_MEMBER_PERMISSIONS",
    "EPHEMERAL",
    "LOADING",
    "Dispatched",
    "FakeDiscord",
    "InteractionCallback",
    "RecordedRequest",
    "point_discord_at",
]

JSON = dict[str, Any]
T = TypeVar("T")

DISCORD_EPOCH_MS = 1_420_070_400_000
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
INTERACTION_TOKEN_LIFETIME = 15 * 60.0

EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_EMBEDS = 1 << 2
SUPPRESS_NOTIFICATIONS = 1 << 12
COMPONENTS_V2 = 1 << 15
SENDABLE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | COMPONENTS_V2

INTENT_GUILDS = 1 << 0
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)

ADMINISTRATOR = 1 << 3
ALL_PERMISSIONS: int = discord.Permissions.all().value
DEFAULT_MEMBER_PERMISSIONS: int = discord.Permissions(
    create_instant_invite=True,
    add_reactions=True,
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    use_external_emojis=True,
    connect=True,
    speak=True,
    change_nickname=True,
    use_application_commands=True,
    create_public_threads=True,
    send_messages_in_threads=True,
).value
DEFAULT_BOT_PERMISSIONS: int = DEFAULT_MEMBER_PERMISSIONS | discord.Permissions(manage_messages=True).value

ERROR_MESSAGES: dict[int, str] = {
    0: "Unknown error",
    10003: "Unknown Channel",
    10008: "Unknown Message",
    10013: "Unknown User",
    10015: "Unknown Webhook",
    10062: "Unknown interaction",
    40005: "Request entity too large",
    40060: "Interaction has already been acknowledged.",
    50001: "Missing Access",
    50005: "Cannot edit a message authored by another user",
    50006: "Cannot send an empty message",
    50007: "Cannot send messages to this user",
    50013: "Missing Permissions",
    50027: "Invalid Webhook Token",
    50035: "Invalid Form Body",
    50109: "The request body contains invalid JSON.",
}

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
TRUTHY = frozenset({"1", "true", "True"})


# --------------------------------------------------------------------------- public records


class Dispatched(NamedTuple):
    """One DISPATCH sent to a gateway session: the event, the session's ``[shard_id, num_shards]``
    (``None`` for an unsharded session) and the event's data."""

    event: str
    shard: tuple[int, int] | None
    data: JSON


class RecordedRequest(NamedTuple):
    """One REST request the fake answered: ``(method, path, json body, status)``."""

    method: str
    path: str
    json: Any
    status: int


@dataclass(frozen=True)
class InteractionCallback:
    """An accepted ``POST /interactions/{id}/{token}/callback``."""

    interaction_id: int
    token: str
    type: int
    data: JSON | None


@contextlib.contextmanager
def point_discord_at(fake: FakeDiscord) -> Iterator[None]:
    """Point discord.py's REST base and default gateway at ``fake``; restore both on exit.

    discord.py 2.7 never asks ``/gateway/bot`` when a plain ``Client`` connects: it opens
    ``DiscordWebSocket.DEFAULT_GATEWAY`` and later resumes at READY's ``resume_gateway_url``.
    """
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = f"{fake.base_url}/api/v{discord.http.INTERNAL_API_VERSION}"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


# --------------------------------------------------------------------------- internals


class _ApiError(Exception):
    def __init__(self, status: int, code: int, message: str | None = None, errors: JSON | None = None) -> None:
        super().__init__(message or ERROR_MESSAGES.get(code, "Error"))
        self.status = status
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, "Error")
        self.errors = errors

    def body(self) -> JSON:
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


class _Reply(NamedTuple):
    status: int
    body: Any = None
    headers: Mapping[str, str] = {}


@dataclass
class _Upload:
    filename: str
    size: int
    content_type: str | None
    content: bytes = field(default=b"", repr=False)


@dataclass
class _Call:
    method: str
    path: str
    params: dict[str, str]
    query: Mapping[str, str]
    body: Any
    uploads: list[_Upload]


@dataclass
class _Fault:
    key: str
    status: int
    code: int | None
    retry_after: float | None
    message: str | None
    global_: bool
    remaining: int


@dataclass
class _Interaction:
    payload: JSON
    created: float
    started: float
    acknowledged: bool = False
    response_type: int | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    loading_replaced: bool = False

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        return str(self.payload["token"])

    @property
    def type(self) -> int:
        return int(self.payload["type"])

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel_id"])

    @property
    def user(self) -> JSON:
        member = self.payload.get("member")
        user: JSON = member["user"] if member else self.payload["user"]
        return user


@dataclass
class _Guild:
    id: int
    name: str
    owner_id: int
    joined_at: str
    roles: dict[int, JSON] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    members: dict[int, list[int]] = field(default_factory=dict)


class _Connection:
    """One gateway websocket; serialises sends so zlib-stream frames stay in order."""

    def __init__(self, ws: web.WebSocketResponse, url: str, compress: bool) -> None:
        self.ws = ws
        self.url = url
        self.session: _Session | None = None
        self.closed_by_server = False
        self._lock = asyncio.Lock()
        self._compressor = zlib.compressobj() if compress else None

    async def send(self, payload: JSON) -> bool:
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            if self.ws.closed:
                return False
            try:
                if self._compressor is not None:
                    data = self._compressor.compress(text.encode()) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return False
        return True

    async def close(self, code: int, reason: str = "") -> None:
        self.closed_by_server = True
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code, message=reason.encode())


@dataclass
class _Session:
    session_id: str
    token: str
    intents: int
    shard: tuple[int, int] | None
    connection: _Connection | None
    seq: int = 0
    log: list[tuple[int, JSON]] = field(default_factory=list)

    def receives(self, guild_id: int | None) -> bool:
        """Whether Discord sends this session an event of ``guild_id`` (None: no guild, e.g. a DM)."""
        if self.shard is None:
            return True
        shard_id, num_shards = self.shard
        if guild_id is None:
            return shard_id == 0
        return (guild_id >> 22) % num_shards == shard_id


def _event_guild(event: str, data: JSON) -> int | None:
    """The guild an event belongs to (which shard gets it), or None (DMs and the like: shard 0)."""
    raw = data.get("id") if event in ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE") else data.get("guild_id")
    return int(raw) if raw is not None else None


def _shard_pair(raw: Any) -> tuple[int, int] | None:
    """IDENTIFY's ``shard`` as (shard_id, num_shards), or None when it is not a valid pair."""
    if not isinstance(raw, list) or len(raw) != 2 or not all(type(n) is int for n in raw):
        return None
    shard_id, num_shards = raw
    return (shard_id, num_shards) if 0 <= shard_id < num_shards else None


class _Errors:
    """Collects Discord-style nested form errors."""

    def __init__(self) -> None:
        self.tree: JSON = {}

    def add(self, path: Sequence[str | int], code: str, message: str) -> None:
        node = self.tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def length(self, path: Sequence[str | int], value: Any, maximum: int, minimum: int = 0) -> int:
        if value is None:
            if minimum:
                self.add(path, "BASE_TYPE_REQUIRED", "This field is required")
            return 0
        if not isinstance(value, str):
            self.add(path, "BASE_TYPE_STRING", "Must be a string.")
            return 0
        if minimum and not minimum <= len(value) <= maximum:
            self.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {minimum} and {maximum} in length.")
        elif len(value) > maximum:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {maximum} or fewer in length.")
        return len(value)

    def raise_if_any(self) -> None:
        if self.tree:
            raise _ApiError(400, 50035, errors=self.tree)


def _form_error(path: Sequence[str | int], code: str, message: str) -> _ApiError:
    errors = _Errors()
    errors.add(path, code, message)
    return _ApiError(400, 50035, errors=errors.tree)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _validate_embeds(errors: _Errors, embeds: Any, path: Sequence[str | int]) -> None:
    if not isinstance(embeds, list):
        errors.add(path, "BASE_TYPE_ARRAY", "Must be an array.")
        return
    if len(embeds) > 10:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        where = (*path, index)
        if not isinstance(embed, dict):
            errors.add(where, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        total += errors.length((*where, "title"), embed.get("title"), 256)
        total += errors.length((*where, "description"), embed.get("description"), 4096)
        footer = embed.get("footer") or {}
        total += errors.length((*where, "footer", "text"), footer.get("text"), 2048)
        author = embed.get("author") or {}
        total += errors.length((*where, "author", "name"), author.get("name"), 256)
        fields = _as_list(embed.get("fields"))
        if len(fields) > 25:
            errors.add((*where, "fields"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for number, item in enumerate(fields):
            total += errors.length((*where, "fields", number, "name"), item.get("name"), 256, 1)
            total += errors.length((*where, "fields", number, "value"), item.get("value"), 1024, 1)
        for media in ("image", "thumbnail"):
            url = (embed.get(media) or {}).get("url")
            if url is None:
                continue
            scheme = url.split("://", 1)[0] if isinstance(url, str) and "://" in url else None
            if scheme is None:
                errors.add((*where, media, "url"), "URL_TYPE_INVALID_URL", "Not a well formed URL.")
            elif scheme not in ("http", "https", "attachment"):
                errors.add(
                    (*where, media, "url"),
                    "URL_TYPE_INVALID_SCHEME",
                    f"Scheme \"{scheme}\" is not supported. Scheme must be one of ('http', 'https', 'attachment').",
                )
    if total > 6000:
        errors.add(path, "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def _validate_component(errors: _Errors, item: JSON, where: tuple[str | int, ...], custom_ids: list[str]) -> None:
    kind = item.get("type")
    if "custom_id" in item:
        errors.length((*where, "custom_id"), item.get("custom_id"), 100, 1)
        if isinstance(item.get("custom_id"), str):
            custom_ids.append(item["custom_id"])
    if kind == 2:
        style = item.get("style")
        if style not in (1, 2, 3, 4, 5, 6):
            errors.add((*where, "style"), "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3, 4, 5, 6).")
        errors.length((*where, "label"), item.get("label"), 80)
        if style == 5 and not item.get("url"):
            errors.add((*where, "url"), "BUTTON_LINK_URL_REQUIRED", "A url is required for link buttons")
        if style not in (5, 6) and "custom_id" not in item:
            errors.add((*where, "custom_id"), "BASE_TYPE_REQUIRED", "This field is required")
        if style != 6 and not item.get("label") and not item.get("emoji"):
            errors.add((*where, "label"), "BUTTON_LABEL_OR_EMOJI_REQUIRED", "A label or emoji is required")
    elif kind in (3, 5, 6, 7, 8):
        errors.length((*where, "placeholder"), item.get("placeholder"), 150)
        if kind == 3:
            options = _as_list(item.get("options"))
            if not 1 <= len(options) <= 25:
                errors.add((*where, "options"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 25 in length.")
            for number, option in enumerate(options):
                errors.length((*where, "options", number, "label"), option.get("label"), 100, 1)
                errors.length((*where, "options", number, "value"), option.get("value"), 100, 1)
                errors.length((*where, "options", number, "description"), option.get("description"), 100)
        for bound in ("min_values", "max_values"):
            value = item.get(bound)
            if value is not None and not (isinstance(value, int) and 0 <= value <= 25):
                errors.add((*where, bound), "NUMBER_TYPE_MAX", "int value should be between 0 and 25.")
    elif kind == 4:
        errors.length((*where, "label"), item.get("label"), 45)
        errors.length((*where, "placeholder"), item.get("placeholder"), 100)
    for key in ("components", "accessory", "items", "component"):
        child = item.get(key)
        if isinstance(child, dict):
            _validate_component(errors, child, (*where, key), custom_ids)
        elif isinstance(child, list):
            for number, sub in enumerate(child):
                if isinstance(sub, dict):
                    _validate_component(errors, sub, (*where, key, number), custom_ids)


def _validate_components(errors: _Errors, components: Any, path: Sequence[str | int], flags: int) -> None:
    if not isinstance(components, list):
        errors.add(path, "BASE_TYPE_ARRAY", "Must be an array.")
        return
    custom_ids: list[str] = []
    v2 = bool(flags & COMPONENTS_V2)
    if not v2 and len(components) > 5:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    for index, row in enumerate(components):
        where: tuple[str | int, ...] = (*path, index)
        if not isinstance(row, dict):
            errors.add(where, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        if not v2:
            if row.get("type") != 1:
                errors.add((*where, "type"), "UNION_TYPE_CHOICES", "Top-level components must be action rows")
                continue
            children = _as_list(row.get("components"))
            if not 1 <= len(children) <= 5:
                errors.add((*where, "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
            if len(children) > 1 and any(c.get("type") in (3, 5, 6, 7, 8) for c in children):
                errors.add(
                    (*where, "components"),
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
        _validate_component(errors, row, where, custom_ids)
    if len(custom_ids) != len(set(custom_ids)):
        errors.add(path, "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")


def _validate_message(
    body: Any, *, path: Sequence[str | int] = (), creating: bool, uploads: Sequence[_Upload] = ()
) -> JSON:
    """Check a message create/edit body the way Discord does and return it as a dict."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise _form_error((), "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    errors = _Errors()
    flags = body.get("flags") or 0
    if not isinstance(flags, int):
        errors.add((*path, "flags"), "NUMBER_TYPE_COERCE", "Value is not int.")
        flags = 0
    content = body.get("content")
    errors.length((*path, "content"), content, 2000)
    if flags & COMPONENTS_V2 and content:
        errors.add((*path, "content"), "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2", "Content cannot be used")
    if body.get("embeds") is not None:
        _validate_embeds(errors, body["embeds"], (*path, "embeds"))
    if body.get("components") is not None:
        _validate_components(errors, body["components"], (*path, "components"), flags)
    errors.raise_if_any()
    for upload in uploads:
        if upload.size > ATTACHMENT_SIZE_LIMIT:
            raise _ApiError(413, 40005)
    if creating and not (
        content
        or body.get("embeds")
        or body.get("components")
        or body.get("sticker_ids")
        or body.get("poll")
        or uploads
    ):
        raise _ApiError(400, 50006)
    return body


# --------------------------------------------------------------------------- the fake


Handler = Callable[[_Call], Awaitable[_Reply]]


class FakeDiscord:
    """Fake Discord REST + gateway on 127.0.0.1 (async context manager)."""

    def __init__(
        self,
        *,
        application_id: int | None = None,
        bot_user_id: int | None = None,
        bot_username: str = "StudyBot",
        token: str | None = None,
        guilds: Iterable[int] = (),
        heartbeat_interval: int = 41250,
        compress: bool = False,
        callback_deadline: float | None = 3.0,
        allow_privileged_intents: bool = True,
        shard_count: int = 1,
    ) -> None:
        self._last_snowflake = 0
        #: The number of shards ``GET /gateway/bot`` recommends.
        self.shard_count = shard_count
        self.application_id: int = application_id or self.snowflake()
        self.bot_user_id: int = bot_user_id or self.application_id
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        self.compress = compress
        self.callback_deadline = callback_deadline
        self.allow_privileged_intents = allow_privileged_intents
        self.bot_user: JSON = {
            "id": str(self.bot_user_id),
            "username": bot_username,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "system": False,
            "mfa_enabled": False,
            "verified": True,
            "email": None,
            "flags": 0,
            "public_flags": 0,
            "banner": None,
            "accent_color": None,
            "bio": "",
        }

        # Observable state.
        self.requests: list[RecordedRequest] = []
        self.callbacks: list[InteractionCallback] = []
        self.synced_commands: dict[int | None, list[JSON]] = {}
        self.messages: dict[int, JSON] = {}
        #: The bytes of every file uploaded, by attachment id.
        self.uploads: dict[int, bytes] = {}
        #: Files users attached to slash commands (``add_attachment``): attachment objects by id.
        self.user_attachments: dict[int, JSON] = {}
        self._user_files: dict[int, bytes] = {}
        self._cdn_secret = secrets.token_bytes(16)
        self.channels: dict[int, JSON] = {}
        self.users: dict[int, JSON] = {self.bot_user_id: self.bot_user}
        self.identify_payloads: list[JSON] = []
        #: Every DISPATCH sent after READY, with the shard of the session that got it.
        self.dispatched: list[Dispatched] = []
        self.gateway_connections: list[str] = []
        self.presence_updates: list[JSON] = []
        self.heartbeats = 0
        self.resumes = 0
        self.identified = asyncio.Event()

        self._guilds: dict[int, _Guild] = {}
        self._dm_channels: dict[int, int] = {}
        self._blocked_dm_users: set[int] = set()
        self._faults: list[_Fault] = []
        self._delays: list[list[Any]] = []  # [route, seconds, remaining]
        self._interactions: dict[int, _Interaction] = {}
        self._interactions_by_token: dict[str, _Interaction] = {}
        self._command_ids: dict[tuple[int | None, int, str], int] = {}
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []
        self._install_routes()

        self.default_user_id: int = self.snowflake()
        self.user_payload(self.default_user_id, "learner")
        for guild_id in guilds:
            self.add_guild(guild_id)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/gateway", self._handle_gateway)
        app.router.add_get("/gateway/resume", self._handle_gateway)
        app.router.add_route("*", "/{tail:.*}", self._handle_http)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        await web.SockSite(runner, sock).start()
        self._runner = runner
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for connection in list(self._connections):
            await connection.close(1001, "fake shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def connected_clients(self) -> int:
        """How many gateway sockets are open right now."""
        return len(self._connections)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``; the REST API lives under ``/api/v10``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway/resume"

    def snowflake(self) -> int:
        """A fresh, increasing snowflake with a realistic timestamp."""
        now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_snowflake = max(now, self._last_snowflake + 1)
        return self._last_snowflake

    # ------------------------------------------------------------------ world setup

    def user_payload(self, user_id: int, username: str | None = None) -> JSON:
        """The (registered) user object for ``user_id``; ``username`` renames it."""
        user = self.users.get(user_id)
        if user is None:
            user = {
                "id": str(user_id),
                "username": username or f"user{str(user_id)[-4:]}",
                "discriminator": "0",
                "global_name": None,
                "avatar": None,
                "bot": False,
                "system": False,
                "public_flags": 0,
                "flags": 0,
                "banner": None,
                "accent_color": None,
                "avatar_decoration_data": None,
                "primary_guild": None,
            }
            self.users[user_id] = user
        elif username is not None:
            user["username"] = username
        return user

    def add_guild(
        self,
        guild_id: int | None = None,
        *,
        name: str = "Study Group",
        channels: Sequence[str] = ("general",),
        owner_id: int | None = None,
        everyone_permissions: int = DEFAULT_MEMBER_PERMISSIONS,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
    ) -> int:
        """Add a guild the bot is in (sent in READY/GUILD_CREATE on the next IDENTIFY)."""
        guild_id = guild_id or self.snowflake()
        owner = owner_id or self.snowflake()
        self.user_payload(owner, "owner")
        guild = _Guild(id=guild_id, name=name, owner_id=owner, joined_at=_now_iso())
        self._guilds[guild_id] = guild
        guild.roles[guild_id] = self._role_payload(guild_id, "@everyone", everyone_permissions, position=0)
        bot_role_id = self.add_role(guild_id, self.bot_user["username"], bot_permissions)
        guild.roles[bot_role_id]["managed"] = True
        guild.roles[bot_role_id]["tags"] = {"bot_id": str(self.bot_user_id)}
        guild.members[self.bot_user_id] = [bot_role_id]
        guild.members[owner] = []
        for channel_name in channels:
            self.add_text_channel(guild_id, channel_name)
        return guild_id

    def guild_on_shard(self, shard_id: int, num_shards: int | None = None) -> int:
        """A fresh guild id whose events go to ``shard_id`` of ``num_shards`` (default: ``shard_count``);
        pass it to :meth:`add_guild`."""
        count = num_shards or self.shard_count
        guild_id = self.snowflake()
        guild_id += ((shard_id - (guild_id >> 22)) % count) << 22  # later milliseconds until it lands there
        self._last_snowflake = max(self._last_snowflake, guild_id)
        return guild_id

    def add_role(self, guild_id: int, name: str, permissions: int = 0) -> int:
        guild = self._guilds[guild_id]
        role_id = self.snowflake()
        guild.roles[role_id] = self._role_payload(role_id, name, permissions, position=len(guild.roles))
        return role_id

    def add_member(
        self, guild_id: int, user_id: int, *, username: str | None = None, roles: Sequence[int] = ()
    ) -> None:
        self.user_payload(user_id, username)
        self._guilds[guild_id].members[user_id] = list(roles)

    def add_text_channel(self, guild_id: int, name: str = "general", *, channel_id: int | None = None) -> int:
        guild = self._guilds[guild_id]
        channel_id = channel_id or self.snowflake()
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(guild_id),
            "name": name,
            "position": len(guild.channel_ids),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        guild.channel_ids.append(channel_id)
        return channel_id

    def guild_channel_ids(self, guild_id: int) -> list[int]:
        return list(self._guilds[guild_id].channel_ids)

    def dm_channel_id(self, user_id: int) -> int:
        """The DM channel between the bot and ``user_id`` (created on first use)."""
        channel_id = self._dm_channels.get(user_id)
        if channel_id is None:
            channel_id = self.snowflake()
            self._dm_channels[user_id] = channel_id
            self.channels[channel_id] = {
                "id": str(channel_id),
                "type": 1,
                "last_message_id": None,
                "recipients": [self.user_payload(user_id)],
                "flags": 0,
            }
        return channel_id

    def add_attachment(self, filename: str, content: bytes, content_type: str | None = None) -> int:
        """A file a user attaches to a slash command (Discord stores it before the interaction arrives);
        returns its id, to give as the value of an attachment option (type 11)."""
        attachment_id = self.snowflake()
        url = self._cdn_url(f"/ephemeral-attachments/{self.application_id}/{attachment_id}/{filename}")
        attachment: JSON = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(content),
            "url": url,
            "proxy_url": url,
            "ephemeral": True,
        }
        if content_type is not None:
            attachment["content_type"] = content_type
        size = image_size(content)
        if size is not None:
            attachment["width"], attachment["height"] = size
        self.user_attachments[attachment_id] = attachment
        self._user_files[attachment_id] = bytes(content)
        return attachment_id

    def block_dms(self, user_id: int, blocked: bool = True) -> None:
        """Make DMs to ``user_id`` fail with 403 / 50007 (user closed DMs or blocked the bot)."""
        if blocked:
            self._blocked_dm_users.add(user_id)
        else:
            self._blocked_dm_users.discard(user_id)

    def guild_payload(self, guild_id: int) -> JSON:
        """The full GUILD_CREATE payload for a configured guild."""
        guild = self._guilds[guild_id]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": list(guild.roles.values()),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(guild.channel_ids[0]) if guild.channel_ids else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": guild.joined_at,
            "large": False,
            "unavailable": False,
            "member_count": len(guild.members),
            "voice_states": [],
            "members": [self._member_payload(guild, user_id) for user_id in guild.members],
            "channels": [self.channels[channel_id] for channel_id in guild.channel_ids],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def channel_messages(self, channel_id: int) -> list[JSON]:
        """Messages currently in a channel (including ephemeral interaction replies), oldest first."""
        return [m for m in self.messages.values() if int(m["channel_id"]) == channel_id]

    def original_message(self, interaction: JSON | int) -> JSON | None:
        state = self._interactions.get(int(interaction["id"]) if isinstance(interaction, dict) else interaction)
        if state is None or state.original_message_id is None:
            return None
        return self.messages.get(state.original_message_id)

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        route: str,
        status: int,
        *,
        code: int | None = None,
        retry_after: float | None = None,
        times: int = 1,
        message: str | None = None,
        global_: bool = False,
    ) -> None:
        """Answer the next ``times`` matching REST requests with an error.

        ``route`` is a path substring (``"/callback"``), a method (``"POST"``), or a method and
        path pattern (``"POST /channels/{channel_id}/messages"``; ``{...}`` matches one segment).
        """
        self._faults.append(_Fault(route, status, code, retry_after, message, global_, times))

    def delay_next(self, route: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next ``times`` requests matching ``route`` (as in ``fail_next``; the CDN's too)
        ``seconds`` late. The request still takes effect after the delay, even when the client gave up."""
        if times < 1:
            raise ValueError("times must be at least 1")
        self._delays.append([route, seconds, times])

    def _take_delay(self, method: str, path: str) -> float:
        for delay in self._delays:
            if self._fault_matches(delay[0], method, path):
                delay[2] -= 1
                if delay[2] <= 0:
                    self._delays.remove(delay)
                return float(delay[1])
        return 0.0

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if self._fault_matches(fault.key, method, path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _fault_matches(key: str, method: str, path: str) -> bool:
        wanted_method, _, pattern = key.partition(" ") if " " in key else ("", "", key)
        if not wanted_method and key.upper() in HTTP_METHODS:
            wanted_method, pattern = key, ""
        if wanted_method and wanted_method.upper() != method:
            return False
        if "{" in pattern:
            regex = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(pattern))
            return re.search(regex + r"(?:$|/)", path) is not None
        return pattern in path

    def _fault_reply(self, fault: _Fault) -> _Reply:
        if fault.status == 429:
            retry_after = fault.retry_after if fault.retry_after is not None else 0.1
            body: JSON = {"message": fault.message or "You are being rate limited.", "retry_after": retry_after}
            body["global"] = fault.global_
            if fault.code is not None:
                body["code"] = fault.code
            headers = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, math.ceil(retry_after))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                "X-RateLimit-Bucket": "fake" + secrets.token_hex(8),
                "X-RateLimit-Scope": "global" if fault.global_ else "user",
            }
            if fault.global_:
                headers["X-RateLimit-Global"] = "true"
            return _Reply(429, body, headers)
        if fault.status == 403:
            code = fault.code if fault.code is not None else 50007
        else:
            code = fault.code if fault.code is not None else 0
        if fault.message is not None:
            message = fault.message
        elif fault.code is None and fault.status >= 500:
            message = f"{fault.status}: Internal Server Error"
        else:
            message = ERROR_MESSAGES.get(code, f"{fault.status}: Error")
        return _Reply(fault.status, {"message": message, "code": code})

    # ------------------------------------------------------------------ waiting

    async def _wait_until(self, check: Callable[[], T | None], limit: float, what: Callable[[], str]) -> T:
        async def poll() -> T:
            async with self._changed:
                while True:
                    result = check()
                    if result is not None:
                        return result
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(poll(), limit)
        except TimeoutError:
            raise TimeoutError(what()) from None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(
        self,
        predicate: Callable[[RecordedRequest], bool] | tuple[str, str],
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[RecordedRequest]:
        """Wait until at least ``count`` recorded requests match; return all matches so far.

        ``predicate`` is a callable or ``(method, path_substring)``.
        """
        check_one: Callable[[RecordedRequest], bool]
        if isinstance(predicate, tuple):
            method, fragment = predicate

            def check_one(request: RecordedRequest) -> bool:
                return request.method == method.upper() and fragment in request.path

        else:
            check_one = predicate

        def check() -> list[RecordedRequest] | None:
            found = [r for r in self.requests if check_one(r)]
            return found if len(found) >= count else None

        def describe() -> str:
            seen = ", ".join(f"{r.method} {r.path} -> {r.status}" for r in self.requests[-15:])
            return f"timed out waiting for {count} request(s) matching {predicate!r}; last seen: {seen}"

        return await self._wait_until(check, timeout, describe)

    async def wait_for_callback(
        self,
        interaction: JSON | int | None = None,
        timeout: float = 5.0,
    ) -> InteractionCallback:
        """Wait for the (first) accepted callback of ``interaction`` (or any, if None)."""
        wanted = int(interaction["id"]) if isinstance(interaction, dict) else interaction

        def check() -> InteractionCallback | None:
            for callback in self.callbacks:
                if wanted is None or callback.interaction_id == wanted:
                    return callback
            return None

        def describe() -> str:
            seen = [(r.method, r.path, r.status) for r in self.requests[-10:]]
            return f"no callback for interaction {wanted}; last requests: {seen}"

        return await self._wait_until(check, timeout, describe)

    async def wait_until_ready(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until clients have IDENTIFYed (and been sent READY) ``count`` times in total."""

        def check() -> bool | None:
            return True if len(self.identify_payloads) >= count else None

        await self._wait_until(check, timeout, lambda: f"{len(self.identify_payloads)} of {count} IDENTIFYs seen")

    # ------------------------------------------------------------------ interactions

    def slash_interaction(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        user_id: int | None = None,
        username: str | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        permissions: int | str | None = None,
        roles: Sequence[int] = (),
        locale: str = "en-US",
        app_permissions: int | str | None = None,
        resolved: JSON | None = None,
    ) -> JSON:
        """An APPLICATION_COMMAND (type 2) interaction for chat-input command ``name``.

        ``name`` may be ``"group sub"`` or ``"group subgroup sub"``.  ``options`` is either raw
        option dicts (used as the leaf options) or ``{name: value}``; option types come from
        the synced command definition when there is one, else from the Python type.
        """
        data, leaf_defs = self._command_data(name, guild_id)
        leaf = self._build_options(options, leaf_defs, guild_id)
        data["options"] = self._nest_options(name, leaf)
        resolved_data = self._resolve(leaf, guild_id)
        if resolved:
            resolved_data.update(resolved)
        if resolved_data:
            data["resolved"] = resolved_data
        return self._interaction(
            2,
            data,
            user_id=user_id,
            username=username,
            guild_id=guild_id,
            channel_id=channel_id,
            permissions=permissions,
            roles=roles,
            locale=locale,
            app_permissions=app_permissions,
        )

    def autocomplete_interaction(
        self,
        name: str,
        focused_option_name: str,
        value: Any,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        user_id: int | None = None,
        username: str | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        permissions: int | str | None = None,
        roles: Sequence[int] = (),
        locale: str = "en-US",
        app_permissions: int | str | None = None,
    ) -> JSON:
        """An APPLICATION_COMMAND_AUTOCOMPLETE (type 4) interaction; the focused option has ``value``."""
        data, leaf_defs = self._command_data(name, guild_id)
        leaf = self._build_options(options, leaf_defs, guild_id)
        focused_def = leaf_defs.get(focused_option_name, {})
        leaf = [option for option in leaf if option["name"] != focused_option_name]
        leaf.append({"type": focused_def.get("type", 3), "name": focused_option_name, "value": value, "focused": True})
        data["options"] = self._nest_options(name, leaf)
        return self._interaction(
            4,
            data,
            user_id=user_id,
            username=username,
            guild_id=guild_id,
            channel_id=channel_id,
            permissions=permissions,
            roles=roles,
            locale=locale,
            app_permissions=app_permissions,
        )

    def component_interaction(
        self,
        custom_id: str,
        message: JSON | int | None = None,
        *,
        component_type: int = 2,
        values: Sequence[str] | None = None,
        user_id: int | None = None,
        username: str | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        permissions: int | str | None = None,
        roles: Sequence[int] = (),
        locale: str = "en-US",
        app_permissions: int | str | None = None,
    ) -> JSON:
        """A MESSAGE_COMPONENT (type 3) interaction on ``message`` (a dict, a stored message id, or
        None for a fresh bot message carrying one button with ``custom_id``)."""
        message_payload = self._component_message(
            custom_id, message, guild_id=guild_id, channel_id=channel_id, user_id=user_id
        )
        channel_id = int(message_payload["channel_id"])
        channel = self.channels.get(channel_id, {})
        if guild_id is None and channel.get("guild_id"):
            guild_id = int(channel["guild_id"])
        data: JSON = {"custom_id": custom_id, "component_type": component_type}
        if values is not None or component_type in (3, 5, 6, 7, 8):
            data["values"] = list(values or [])
        return self._interaction(
            3,
            data,
            user_id=user_id,
            username=username,
            guild_id=guild_id,
            channel_id=channel_id,
            permissions=permissions,
            roles=roles,
            locale=locale,
            app_permissions=app_permissions,
            message=message_payload,
        )

    def modal_submit_interaction(
        self,
        custom_id: str,
        fields: Mapping[str, str],
        *,
        message: JSON | int | None = None,
        user_id: int | None = None,
        username: str | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        permissions: int | str | None = None,
        roles: Sequence[int] = (),
        locale: str = "en-US",
        app_permissions: int | str | None = None,
    ) -> JSON:
        """A MODAL_SUBMIT (type 5) interaction with one text input per ``fields`` entry."""
        data: JSON = {
            "custom_id": custom_id,
            "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
                for key, value in fields.items()
            ],
        }
        message_payload = None
        if message is not None:
            message_payload = self._component_message(
                custom_id, message, guild_id=guild_id, channel_id=channel_id, user_id=user_id
            )
            channel_id = int(message_payload["channel_id"])
        return self._interaction(
            5,
            data,
            user_id=user_id,
            username=username,
            guild_id=guild_id,
            channel_id=channel_id,
            permissions=permissions,
            roles=roles,
            locale=locale,
            app_permissions=app_permissions,
            message=message_payload,
        )

    async def send_interaction(self, payload: JSON) -> JSON:
        """Dispatch INTERACTION_CREATE; the 3-second response clock starts now."""
        state = self._interactions.get(int(payload["id"]))
        if state is None:
            state = self._register_interaction(payload)
        state.started = time.monotonic()
        if await self.dispatch("INTERACTION_CREATE", payload) == 0:
            raise RuntimeError("no gateway client is connected to the fake")
        return payload

    def _interaction(
        self,
        kind: int,
        data: JSON,
        *,
        user_id: int | None,
        username: str | None,
        guild_id: int | None,
        channel_id: int | None,
        permissions: int | str | None,
        roles: Sequence[int],
        locale: str,
        app_permissions: int | str | None,
        message: JSON | None = None,
    ) -> JSON:
        user_id = user_id or self.default_user_id
        user = self.user_payload(user_id, username)
        interaction_id = self.snowflake()
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": f"fake-{interaction_id}-{secrets.token_urlsafe(32)}",
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if guild_id is not None:
            guild = self._guilds.get(guild_id)
            if guild is None:
                self.add_guild(guild_id)
                guild = self._guilds[guild_id]
            if user_id not in guild.members or roles:
                guild.members[user_id] = list(roles) or guild.members.get(user_id, [])
            if channel_id is None:
                channel_id = guild.channel_ids[0] if guild.channel_ids else self.add_text_channel(guild_id)
            elif channel_id not in self.channels:
                self.add_text_channel(guild_id, f"channel-{str(channel_id)[-4:]}", channel_id=channel_id)
            member = self._member_payload(guild, user_id)
            member["permissions"] = str(
                int(permissions) if permissions is not None else self._permissions(guild, user_id)
            )
            bot_permissions = self._permissions(guild, self.bot_user_id)
            payload.update(
                guild_id=str(guild_id),
                guild={"id": str(guild_id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                channel_id=str(channel_id),
                channel={**self.channels[channel_id], "permissions": member["permissions"]},
                member=member,
                authorizing_integration_owners={"0": str(guild_id)},
                context=0,
                app_permissions=str(int(app_permissions) if app_permissions is not None else bot_permissions),
            )
        else:
            if channel_id is None or channel_id not in self.channels:
                dm_id = self.dm_channel_id(user_id)
                if channel_id is not None and channel_id != dm_id:
                    self.channels[channel_id] = {**self.channels.pop(dm_id), "id": str(channel_id)}
                    self._dm_channels[user_id] = channel_id
                    dm_id = channel_id
                channel_id = dm_id
            payload.update(
                channel_id=str(channel_id),
                channel=self.channels[channel_id],
                user=user,
                authorizing_integration_owners={"0": "0"},
                context=1,
                app_permissions=str(int(app_permissions) if app_permissions is not None else DEFAULT_BOT_PERMISSIONS),
            )
        if message is not None:
            payload["message"] = message
        self._register_interaction(payload)
        return payload

    def _register_interaction(self, payload: JSON) -> _Interaction:
        now = time.monotonic()
        state = _Interaction(payload=payload, created=now, started=now)
        self._interactions[state.id] = state
        self._interactions_by_token[state.token] = state
        return state

    def _find_command(self, name: str, guild_id: int | None, kind: int = 1) -> JSON | None:
        scopes: list[int | None] = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for command in self.synced_commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == kind:
                    return command
        return None

    def _command_data(self, name: str, guild_id: int | None) -> tuple[JSON, dict[str, JSON]]:
        parts = name.split()
        command = self._find_command(parts[0], guild_id)
        data: JSON = {"id": str(command["id"]) if command else str(self.snowflake()), "name": parts[0], "type": 1}
        if command and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        definitions: list[JSON] = _as_list(command.get("options")) if command else []
        for part in parts[1:]:
            nested = next((o for o in definitions if o.get("name") == part), None)
            definitions = _as_list(nested.get("options")) if nested else []
        return data, {str(o.get("name")): o for o in definitions}

    def _build_options(
        self, options: Mapping[str, Any] | Sequence[JSON] | None, definitions: dict[str, JSON], guild_id: int | None
    ) -> list[JSON]:
        if options is None:
            return []
        if not isinstance(options, Mapping):
            return [dict(option) for option in options]
        built: list[JSON] = []
        for key, value in options.items():
            kind = definitions.get(key, {}).get("type")
            if kind is None:
                if isinstance(value, bool):
                    kind = 5
                elif isinstance(value, int):
                    kind = 4
                elif isinstance(value, float):
                    kind = 10
                else:
                    kind = 3
            if kind in (6, 7, 8, 9, 11):
                value = str(value)
            built.append({"type": kind, "name": key, "value": value})
        return built

    @staticmethod
    def _nest_options(name: str, leaf: list[JSON]) -> list[JSON]:
        parts = name.split()
        if len(parts) == 2:
            return [{"type": 1, "name": parts[1], "options": leaf}]
        if len(parts) == 3:
            return [{"type": 2, "name": parts[1], "options": [{"type": 1, "name": parts[2], "options": leaf}]}]
        return leaf

    def _resolve(self, leaf: list[JSON], guild_id: int | None) -> JSON:
        resolved: JSON = {}
        guild = self._guilds.get(guild_id) if guild_id is not None else None
        for option in leaf:
            kind, value = option.get("type"), option.get("value")
            if value is None or kind not in (6, 7, 8, 9, 11):
                continue
            target = int(value)
            if kind == 11:
                if target in self.user_attachments:
                    resolved.setdefault("attachments", {})[str(target)] = dict(self.user_attachments[target])
                continue
            if kind in (6, 9) and (target in self.users or kind == 6):
                resolved.setdefault("users", {})[str(target)] = self.user_payload(target)
                if guild is not None and target in guild.members:
                    member = self._member_payload(guild, target)
                    member.pop("user")
                    member["permissions"] = str(self._permissions(guild, target))
                    resolved.setdefault("members", {})[str(target)] = member
            elif kind in (8, 9) and guild is not None and target in guild.roles:
                resolved.setdefault("roles", {})[str(target)] = guild.roles[target]
            elif kind == 7 and target in self.channels:
                channel = self.channels[target]
                resolved.setdefault("channels", {})[str(target)] = {
                    "id": channel["id"],
                    "type": channel["type"],
                    "name": channel.get("name"),
                    "permissions": str(DEFAULT_MEMBER_PERMISSIONS),
                }
        return resolved

    def _component_message(
        self,
        custom_id: str,
        message: JSON | int | None,
        *,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int | None,
    ) -> JSON:
        if isinstance(message, int):
            return self.messages[message]
        if isinstance(message, dict):
            self.messages.setdefault(int(message["id"]), message)
            return message
        if channel_id is None:
            if guild_id is not None:
                if guild_id not in self._guilds:
                    self.add_guild(guild_id)
                channel_id = self._guilds[guild_id].channel_ids[0]
            else:
                channel_id = self.dm_channel_id(user_id or self.default_user_id)
        body: JSON = {
            "content": "",
            "components": [{"type": 1, "components": [{"type": 2, "style": 1, "label": "Go", "custom_id": custom_id}]}],
        }
        created = self._new_message(channel_id, body, [])
        return created

    # ------------------------------------------------------------------ payload builders

    @staticmethod
    def _role_payload(role_id: int, name: str, permissions: int, *, position: int) -> JSON:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def _member_payload(self, guild: _Guild, user_id: int) -> JSON:
        return {
            "user": self.user_payload(user_id),
            "nick": None,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in guild.members.get(user_id, [])],
            "joined_at": guild.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }

    def _permissions(self, guild: _Guild, user_id: int) -> int:
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        value = int(guild.roles[guild.id]["permissions"])
        for role_id in guild.members.get(user_id, []):
            role = guild.roles.get(role_id)
            if role is not None:
                value |= int(role["permissions"])
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def _new_message(
        self,
        channel_id: int,
        body: JSON,
        uploads: Sequence[_Upload],
        *,
        flags_mask: int = SENDABLE_FLAGS,
        message_type: int = 0,
        interaction: _Interaction | None = None,
        extra_flags: int = 0,
    ) -> JSON:
        message_id = self.snowflake()
        message: JSON = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": self.bot_user,
            "content": body.get("content") or "",
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": self._attachments(channel_id, [], uploads),
            "embeds": [{"type": "rich", **embed} for embed in _as_list(body.get("embeds"))],
            "components": _as_list(body.get("components")),
            "pinned": False,
            "type": message_type,
            "flags": ((body.get("flags") or 0) & flags_mask) | extra_flags,
        }
        reference = body.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id"):
            message["message_reference"] = {"channel_id": str(channel_id), **reference}
            if message_type == 0:
                message["type"] = 19
        if interaction is not None:
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
            metadata: JSON = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": interaction.user,
                "authorizing_integration_owners": interaction.payload.get("authorizing_integration_owners", {}),
            }
            if interaction.type == 2:
                metadata["name"] = interaction.payload["data"]["name"]
                metadata["command_type"] = 1
            if interaction.payload.get("message"):
                metadata["interacted_message_id"] = interaction.payload["message"]["id"]
            if interaction.original_message_id is not None:
                metadata["original_response_message_id"] = str(interaction.original_message_id)
            message["interaction_metadata"] = metadata
        self._show_attached_images(message)
        self.messages[message_id] = message
        channel = self.channels.get(channel_id)
        if channel is not None:
            channel["last_message_id"] = str(message_id)
        return message

    def _attachments(self, channel_id: int, kept: list[JSON], uploads: Sequence[_Upload]) -> list[JSON]:
        result = list(kept)
        for upload in uploads:
            attachment_id = self.snowflake()
            url = self._cdn_url(f"/attachments/{channel_id}/{attachment_id}/{upload.filename}")
            attachment: JSON = {
                "id": str(attachment_id),
                "filename": upload.filename,
                "size": upload.size,
                "url": url,
                "proxy_url": url,
                "content_type": upload.content_type,
            }
            size = image_size(upload.content)
            if size is not None:  # Discord tells an image's size
                attachment["width"], attachment["height"] = size
            self.uploads[attachment_id] = upload.content
            result.append(attachment)
        return result

    def _cdn_signature(self, path: str, expires: str, issued: str) -> str:
        return hmac.new(self._cdn_secret, f"{path}|{expires}|{issued}".encode(), hashlib.sha256).hexdigest()

    def _cdn_url(self, path: str) -> str:
        """An attachment URL signed like Discord's CDN: expiry (ex), issue time (is) and a MAC (hm), in hex."""
        issued = f"{int(time.time()):x}"
        expires = f"{int(time.time()) + 24 * 3600:x}"
        quoted = yarl.URL.build(path=path).raw_path
        signature = self._cdn_signature(path, expires, issued)
        return f"{self.base_url}{quoted}?ex={expires}&is={issued}&hm={signature}&"

    def _cdn_file(self, path: str, query: Mapping[str, str]) -> _Reply | None:
        """GET of an attachment URL: its bytes when the URL is one the fake signed and has not expired."""
        match = re.match(r"^/(ephemeral-)?attachments/(\d+)/(\d+)/([^/]+)$", path)
        if match is None:
            return None
        attachment_id = int(match.group(3))
        content = self._user_files.get(attachment_id) if match.group(1) else self.uploads.get(attachment_id)
        expires, issued, signature = query.get("ex", ""), query.get("is", ""), query.get("hm", "")
        valid = (
            content is not None
            and re.fullmatch(r"[0-9a-f]{1,16}", expires) is not None
            and int(expires, 16) > time.time()
            and hmac.compare_digest(signature.encode(), self._cdn_signature(path, expires, issued).encode())
        )
        if not valid or content is None:
            return _Reply(404, b"This content is no longer available.", {"Content-Type": "text/plain"})
        return _Reply(200, content, {"Content-Type": "application/octet-stream"})

    @staticmethod
    def _show_attached_images(message: JSON) -> None:
        """An embed image given as attachment://NAME shows that attachment of the message (as on
        Discord, the embed then carries the attachment's URL and size)."""
        by_name = {a["filename"]: a for a in message["attachments"]}
        for embed in message["embeds"]:
            image = embed.get("image")
            if not isinstance(image, dict) or not str(image.get("url", "")).startswith("attachment://"):
                continue
            attachment = by_name.get(str(image["url"]).removeprefix("attachment://"))
            if attachment is not None:
                embed["image"] = {
                    "url": attachment["url"],
                    "proxy_url": attachment["proxy_url"],
                    **{k: attachment[k] for k in ("width", "height") if k in attachment},
                }

    def _edit_message(self, message: JSON, body: JSON, uploads: Sequence[_Upload]) -> JSON:
        if "content" in body:
            message["content"] = body["content"] or ""
        if "embeds" in body:
            message["embeds"] = [{"type": "rich", **embed} for embed in _as_list(body["embeds"])]
        if "components" in body:
            message["components"] = _as_list(body["components"])
        if body.get("flags") is not None:
            keep = message["flags"] & ~(SUPPRESS_EMBEDS | COMPONENTS_V2)
            message["flags"] = keep | (body["flags"] & (SUPPRESS_EMBEDS | COMPONENTS_V2))
        if "attachments" in body or uploads:
            wanted = {str(a.get("id")) for a in _as_list(body.get("attachments"))} if "attachments" in body else None
            kept = [a for a in message["attachments"] if wanted is None or a["id"] in wanted]
            message["attachments"] = self._attachments(int(message["channel_id"]), kept, uploads)
        message["flags"] &= ~LOADING
        message["edited_timestamp"] = _now_iso()
        self._show_attached_images(message)
        if not (message["content"] or message["embeds"] or message["components"] or message["attachments"]):
            raise _ApiError(400, 50006)
        return message

    def _application_payload(self) -> JSON:
        return {
            "id": str(self.application_id),
            "name": self.bot_user["username"],
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.user_payload(self._owner_id()),
            "team": None,
            "flags": 0,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(self._guilds),
            "bot": self.bot_user,
        }

    def _owner_id(self) -> int:
        return next(iter(self._guilds.values())).owner_id if self._guilds else self.default_user_id

    # ------------------------------------------------------------------ REST plumbing

    def _install_routes(self) -> None:
        def add(method: str, template: str, handler: Handler, *, auth: bool = True) -> None:
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
            self._routes.append((method, re.compile(f"^{pattern}$"), handler, auth))

        add("GET", "/gateway", self._get_gateway, auth=False)
        add("GET", "/gateway/bot", self._get_gateway_bot)
        add("GET", "/users/@me", self._get_me)
        add("POST", "/users/@me/channels", self._open_dm)
        add("GET", "/users/{user_id}", self._get_user)
        add("GET", "/oauth2/applications/@me", self._get_application)
        add("GET", "/applications/@me", self._get_application)
        add("GET", "/applications/{app_id}/commands", self._get_commands)
        add("PUT", "/applications/{app_id}/commands", self._put_commands)
        add("GET", "/applications/{app_id}/guilds/{guild_id}/commands", self._get_commands)
        add("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands)
        add("POST", "/interactions/{interaction_id}/{token}/callback", self._interaction_callback, auth=False)
        add("POST", "/webhooks/{app_id}/{token}", self._followup, auth=False)
        for method in ("GET", "PATCH", "DELETE"):
            add(method, "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_message, auth=False)
        add("GET", "/channels/{channel_id}", self._get_channel)
        add("POST", "/channels/{channel_id}/messages", self._create_message)
        for method in ("GET", "PATCH", "DELETE"):
            add(method, "/channels/{channel_id}/messages/{message_id}", self._channel_message)

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        method = request.method.upper()
        path = request.path
        body: Any = None
        uploads: list[_Upload] = []
        reply: _Reply | None = None
        try:
            body, uploads = await self._read_body(request)
        except _ApiError as error:
            reply = _Reply(error.status, error.body())
        delay = self._take_delay(method, path)
        if delay:
            await asyncio.sleep(delay)
        fault = self._take_fault(method, path)
        if fault is not None:
            reply = self._fault_reply(fault)
        if reply is None and method == "GET":
            reply = self._cdn_file(path, request.query)
        if reply is None:
            try:
                reply = await self._route(request, method, path, body, uploads)
            except _ApiError as error:
                reply = _Reply(error.status, error.body())
        async with self._changed:
            self.requests.append(RecordedRequest(method, path, body, reply.status))
            self._changed.notify_all()
        return self._to_response(reply)

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[_Upload]]:
        if not request.can_read_body:
            return None, []
        if request.content_type.startswith("multipart/"):
            body: Any = None
            uploads: list[_Upload] = []
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, aiohttp.BodyPartReader):
                    continue
                if part.name == "payload_json":
                    try:
                        body = json.loads(await part.text())
                    except ValueError:
                        raise _ApiError(400, 50109) from None
                else:
                    data = await part.read(decode=False)
                    uploads.append(
                        _Upload(part.filename or "file", len(data), part.headers.get("Content-Type"), bytes(data))
                    )
            return body, uploads
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            raise _ApiError(400, 50109) from None

    async def _route(self, request: web.Request, method: str, path: str, body: Any, uploads: list[_Upload]) -> _Reply:
        prefix = re.match(r"^/api/v(9|10)(/.*)$", path)
        if prefix is None:
            raise _ApiError(404, 0, "404: Not Found")
        rest = prefix.group(2).rstrip("/") or "/"
        path_matched = False
        for route_method, pattern, handler, needs_auth in self._routes:
            match = pattern.match(rest)
            if match is None:
                continue
            path_matched = True
            if route_method != method:
                continue
            if needs_auth:
                self._check_auth(request.headers.get("Authorization"))
            call = _Call(method, path, match.groupdict(), request.query, body, uploads)
            return await handler(call)
        if path_matched:
            raise _ApiError(405, 0, "405: Method Not Allowed")
        raise _ApiError(404, 0, "404: Not Found")

    def _check_auth(self, header: str | None) -> None:
        if not header or not header.startswith("Bot ") or not header[4:].strip():
            raise _ApiError(401, 0, "401: Unauthorized")
        if self.token is not None and header[4:] != self.token:
            raise _ApiError(401, 0, "401: Unauthorized")

    @staticmethod
    def _to_response(reply: _Reply) -> web.Response:
        headers = dict(reply.headers)
        if reply.body is None or isinstance(reply.body, bytes):  # bytes: a file from the fake CDN
            return web.Response(status=reply.status, body=reply.body, headers=headers)
        headers["Content-Type"] = "application/json"
        return web.Response(status=reply.status, body=json.dumps(reply.body).encode(), headers=headers)

    # ------------------------------------------------------------------ REST handlers

    async def _get_gateway(self, call: _Call) -> _Reply:
        return _Reply(200, {"url": self.gateway_url})

    async def _get_gateway_bot(self, call: _Call) -> _Reply:
        return _Reply(
            200,
            {
                "url": self.gateway_url,
                "shards": self.shard_count,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            },
        )

    async def _get_me(self, call: _Call) -> _Reply:
        return _Reply(200, self.bot_user)

    async def _get_user(self, call: _Call) -> _Reply:
        user = self.users.get(int(call.params["user_id"]))
        if user is None:
            raise _ApiError(404, 10013)
        return _Reply(200, user)

    async def _get_application(self, call: _Call) -> _Reply:
        return _Reply(200, self._application_payload())

    async def _open_dm(self, call: _Call) -> _Reply:
        recipient = (call.body or {}).get("recipient_id")
        if recipient is None:
            raise _form_error(("recipient_id",), "BASE_TYPE_REQUIRED", "This field is required")
        return _Reply(200, self.channels[self.dm_channel_id(int(recipient))])

    def _check_app(self, call: _Call) -> None:
        if int(call.params["app_id"]) != self.application_id:
            raise _ApiError(403, 50001)

    async def _get_commands(self, call: _Call) -> _Reply:
        self._check_app(call)
        guild = call.params.get("guild_id")
        return _Reply(200, self.synced_commands.get(int(guild) if guild else None, []))

    async def _put_commands(self, call: _Call) -> _Reply:
        self._check_app(call)
        guild_param = call.params.get("guild_id")
        guild_id = int(guild_param) if guild_param else None
        if guild_id is not None and guild_id not in self._guilds:
            raise _ApiError(403, 50001)
        commands = call.body
        if not isinstance(commands, list):
            raise _form_error((), "BASE_TYPE_ARRAY", "Must be an array.")
        self._validate_commands(commands)
        stored: list[JSON] = []
        for command in commands:
            kind = int(command.get("type", 1))
            key = (guild_id, kind, command["name"])
            command_id = self._command_ids.setdefault(key, self.snowflake())
            item: JSON = {
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "nsfw": False,
                "contexts": None,
                "integration_types": [0],
                **command,
                "id": str(command_id),
                "application_id": str(self.application_id),
                "version": str(self.snowflake()),
                "type": kind,
            }
            if guild_id is not None:
                item["guild_id"] = str(guild_id)
            stored.append(item)
        self.synced_commands[guild_id] = stored
        return _Reply(200, stored)

    @staticmethod
    def _validate_commands(commands: list[Any]) -> None:
        errors = _Errors()
        seen: set[tuple[int, str]] = set()
        counts = {1: 0, 2: 0, 3: 0}
        for index, command in enumerate(commands):
            if not isinstance(command, dict):
                errors.add((index,), "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
                continue
            kind = int(command.get("type", 1))
            name = command.get("name")
            counts[kind] = counts.get(kind, 0) + 1
            if kind == 1:
                if not isinstance(name, str) or not COMMAND_NAME.match(name) or name != name.lower():
                    errors.add((index, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
                errors.length((index, "description"), command.get("description"), 100, 1)
            else:
                errors.length((index, "name"), name, 32, 1)
            if isinstance(name, str):
                if (kind, name) in seen:
                    errors.add((index, "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME", "Command names must be unique")
                seen.add((kind, name))
            FakeDiscord._validate_command_options(errors, _as_list(command.get("options")), (index, "options"))
        if counts[1] > 100 or counts[2] > 15 or counts[3] > 15:
            errors.add((), "APPLICATION_COMMANDS_COUNT_EXCEEDED", "Too many application commands")
        errors.raise_if_any()

    @staticmethod
    def _validate_command_options(errors: _Errors, options: list[Any], path: tuple[str | int, ...]) -> None:
        if len(options) > 25:
            errors.add(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        required_done = False
        for index, option in enumerate(options):
            where = (*path, index)
            name = option.get("name")
            if not isinstance(name, str) or not COMMAND_NAME.match(name) or name != name.lower():
                errors.add((*where, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            errors.length((*where, "description"), option.get("description"), 100, 1)
            choices = _as_list(option.get("choices"))
            if len(choices) > 25:
                errors.add((*where, "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            if option.get("required"):
                if required_done:
                    errors.add(
                        (*where, "required"),
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                required_done = option.get("type") not in (1, 2)
            FakeDiscord._validate_command_options(errors, _as_list(option.get("options")), (*where, "options"))

    def _interaction_for_webhook(self, call: _Call) -> _Interaction:
        state = self._interactions_by_token.get(call.params["token"])
        if state is None or int(call.params["app_id"]) != self.application_id:
            raise _ApiError(404, 10015)
        if time.monotonic() - state.created > INTERACTION_TOKEN_LIFETIME:
            raise _ApiError(401, 50027)
        return state

    async def _interaction_callback(self, call: _Call) -> _Reply:
        state = self._interactions.get(int(call.params["interaction_id"]))
        if state is None or state.token != call.params["token"]:
            raise _ApiError(404, 10062)
        if state.acknowledged:
            raise _ApiError(400, 40060)
        if self.callback_deadline is not None and time.monotonic() - state.started > self.callback_deadline:
            raise _ApiError(404, 10062)
        body = call.body if isinstance(call.body, dict) else {}
        kind = body.get("type")
        data = body.get("data")
        allowed = {1: {1}, 2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}.get(state.type, set())
        if kind not in allowed:
            raise _form_error(("type",), "INTERACTION_RESPONSE_TYPE_INVALID", f"Response type {kind} is invalid here")
        message: JSON | None = None
        if kind == 4:
            body_data = _validate_message(data, path=("data",), creating=True, uploads=call.uploads)
            message = self._new_message(
                state.channel_id,
                body_data,
                call.uploads,
                flags_mask=SENDABLE_FLAGS | EPHEMERAL,
                message_type=20 if state.type == 2 else 0,
                interaction=state,
            )
        elif kind == 5:
            flags = ((data or {}).get("flags") or 0) & EPHEMERAL
            message = self._new_message(
                state.channel_id,
                {},
                [],
                message_type=20 if state.type == 2 else 0,
                interaction=state,
                extra_flags=LOADING | flags,
            )
        elif kind in (6, 7):
            target_payload = state.payload.get("message")
            if target_payload is None:
                raise _form_error(("type",), "INTERACTION_NO_MESSAGE", "No message to update")
            target = self.messages.setdefault(int(target_payload["id"]), target_payload)
            if kind == 7:
                body_data = _validate_message(data, path=("data",), creating=False, uploads=call.uploads)
                self._edit_message(target, body_data, call.uploads)
            message = target
        elif kind == 8:
            self._validate_choices(data)
        elif kind == 9:
            self._validate_modal(data)
        state.acknowledged = True
        state.response_type = kind
        if message is not None:
            state.original_message_id = int(message["id"])
        async with self._changed:
            self.callbacks.append(InteractionCallback(state.id, state.token, int(kind), data))
            self._changed.notify_all()
        if call.query.get("with_response") not in TRUTHY:
            return _Reply(204)
        interaction: JSON = {
            "id": str(state.id),
            "type": state.type,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(message and message["flags"] & EPHEMERAL),
        }
        response: JSON = {"interaction": interaction}
        if message is not None:
            interaction["response_message_id"] = message["id"]
            if kind != 6:
                response["resource"] = {"type": kind, "message": message}
        return _Reply(200, response)

    @staticmethod
    def _validate_choices(data: Any) -> None:
        errors = _Errors()
        choices = _as_list((data or {}).get("choices"))
        if len(choices) > 25:
            errors.add(("data", "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for index, choice in enumerate(choices):
            errors.length(("data", "choices", index, "name"), choice.get("name"), 100, 1)
            value = choice.get("value")
            if isinstance(value, str):
                errors.length(("data", "choices", index, "value"), value, 100)
        errors.raise_if_any()

    @staticmethod
    def _validate_modal(data: Any) -> None:
        errors = _Errors()
        data = data if isinstance(data, dict) else {}
        errors.length(("data", "title"), data.get("title"), 45, 1)
        errors.length(("data", "custom_id"), data.get("custom_id"), 100, 1)
        components = _as_list(data.get("components"))
        if not 1 <= len(components) <= 5:
            errors.add(("data", "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        custom_ids: list[str] = []
        for index, row in enumerate(components):
            _validate_component(errors, row, ("data", "components", index), custom_ids)
        errors.raise_if_any()

    async def _followup(self, call: _Call) -> _Reply:
        state = self._interaction_for_webhook(call)
        if not state.acknowledged:
            raise _ApiError(404, 10015)
        body = _validate_message(call.body, creating=True, uploads=call.uploads)
        original = self.messages.get(state.original_message_id) if state.original_message_id else None
        if state.response_type == 5 and original is not None and not state.loading_replaced:
            # The first followup after a "thinking" defer replaces the loading message and keeps
            # the defer's ephemeral setting.
            state.loading_replaced = True
            message = self._edit_message(original, {k: v for k, v in body.items() if k != "flags"}, call.uploads)
        else:
            message = self._new_message(
                state.channel_id, body, call.uploads, flags_mask=SENDABLE_FLAGS | EPHEMERAL, interaction=state
            )
            state.followup_ids.append(int(message["id"]))
        if call.query.get("wait") in TRUTHY:
            return _Reply(200, message)
        return _Reply(204)

    async def _webhook_message(self, call: _Call) -> _Reply:
        state = self._interaction_for_webhook(call)
        raw_id = call.params["message_id"]
        if raw_id == "@original":
            message_id = state.original_message_id
        else:
            message_id = int(raw_id) if raw_id.isdigit() else None
            if message_id not in state.followup_ids and message_id != state.original_message_id:
                message_id = None
        message = self.messages.get(message_id) if message_id is not None else None
        if message is None:
            raise _ApiError(404, 10008)
        if call.method == "GET":
            return _Reply(200, message)
        if call.method == "DELETE":
            del self.messages[int(message["id"])]
            return _Reply(204)
        body = _validate_message(call.body, creating=False, uploads=call.uploads)
        return _Reply(200, self._edit_message(message, body, call.uploads))

    def _channel(self, call: _Call) -> tuple[int, JSON]:
        channel_id = int(call.params["channel_id"])
        channel = self.channels.get(channel_id)
        if channel is None:
            raise _ApiError(404, 10003)
        return channel_id, channel

    async def _get_channel(self, call: _Call) -> _Reply:
        return _Reply(200, self._channel(call)[1])

    async def _create_message(self, call: _Call) -> _Reply:
        channel_id, channel = self._channel(call)
        if channel["type"] == 1:
            recipients = channel.get("recipients") or [{}]
            if int(recipients[0].get("id", 0)) in self._blocked_dm_users:
                raise _ApiError(403, 50007)
        body = _validate_message(call.body, creating=True, uploads=call.uploads)
        return _Reply(200, self._new_message(channel_id, body, call.uploads))

    async def _channel_message(self, call: _Call) -> _Reply:
        channel_id, _ = self._channel(call)
        message = self.messages.get(int(call.params["message_id"]))
        if message is None or int(message["channel_id"]) != channel_id or message["flags"] & EPHEMERAL:
            raise _ApiError(404, 10008)
        if call.method == "GET":
            return _Reply(200, message)
        if call.method == "DELETE":
            del self.messages[int(message["id"])]
            return _Reply(204)
        if message["author"]["id"] != self.bot_user["id"]:
            raise _ApiError(403, 50005)
        body = _validate_message(call.body, creating=False, uploads=call.uploads)
        return _Reply(200, self._edit_message(message, body, call.uploads))

    # ------------------------------------------------------------------ gateway

    async def dispatch(self, event: str, data: JSON) -> int:
        """Send a DISPATCH (op 0) to every live session that Discord would send it to (a guild's
        events to that guild's shard, the rest to shard 0); returns how many sockets got it.

        Sessions whose socket dropped without a clean close keep the event for RESUME replay.
        """
        guild_id = _event_guild(event, data)
        delivered = 0
        for session in list(self._sessions.values()):
            if not session.receives(guild_id):
                continue
            self.dispatched.append(Dispatched(event, session.shard, data))
            if await self._send_dispatch(session, event, data):
                delivered += 1
        return delivered

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every connected client (it should RESUME)."""
        for connection in list(self._connections):
            await connection.send({"op": 7, "d": None, "s": None, "t": None})

    async def invalidate_sessions(self) -> None:
        """Forget every session and send op 9 INVALID_SESSION (d=false): clients must IDENTIFY again."""
        self._sessions.clear()
        for connection in list(self._connections):
            connection.session = None
            await connection.send({"op": 9, "d": False, "s": None, "t": None})

    async def disconnect_clients(self, code: int = 4000, reason: str = "") -> None:
        """Close every gateway socket with ``code`` (4000 lets discord.py resume)."""
        for connection in list(self._connections):
            await connection.close(code, reason)

    async def _send_dispatch(self, session: _Session, event: str, data: JSON) -> bool:
        session.seq += 1
        frame: JSON = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.log.append((session.seq, frame))
        del session.log[:-1000]
        connection = session.connection
        return connection is not None and await connection.send(frame)

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        if not ws.can_prepare(request).ok:
            return self._to_response(_Reply(400, {"message": "Expected a websocket upgrade", "code": 0}))
        await ws.prepare(request)
        compress = self.compress and request.query.get("compress") == "zlib-stream"
        connection = _Connection(ws, str(request.rel_url), compress)
        self._connections.add(connection)
        self.gateway_connections.append(str(request.rel_url))
        try:
            if request.query.get("encoding", "json") != "json":
                await connection.close(4002, "Error while decoding payload.")
                return ws
            await connection.send(
                {
                    "op": 10,
                    "d": {"heartbeat_interval": self.heartbeat_interval, "_trace": ["fake-gateway"]},
                    "s": None,
                    "t": None,
                }
            )
            async for message in ws:
                if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    raw = message.data if isinstance(message.data, str) else message.data.decode("utf-8", "replace")
                    await self._on_gateway_message(connection, raw)
                else:
                    break
        finally:
            self._connections.discard(connection)
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
                # A clean close by the client ends the session; anything else stays resumable.
                if not connection.closed_by_server and ws.close_code in (1000, 1001):
                    self._sessions.pop(session.session_id, None)
            await self._notify()
        return ws

    async def _on_gateway_message(self, connection: _Connection, raw: str) -> None:
        try:
            payload = json.loads(raw)
            op = payload["op"]
            data = payload.get("d")
        except (ValueError, KeyError, TypeError):
            await connection.close(4002, "Error while decoding payload.")
            return
        if op == 1:
            self.heartbeats += 1
            await connection.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(connection, data or {})
        elif op == 6:
            await self._resume(connection, data or {})
        elif connection.session is None:
            await connection.close(4003, "Not authenticated.")
        elif op == 3:
            self.presence_updates.append(data)
        elif op == 4:
            pass
        elif op == 8:
            await self._member_chunk(connection, data or {})
        else:
            await connection.close(4001, "Unknown opcode.")

    async def _identify(self, connection: _Connection, data: JSON) -> None:
        if connection.session is not None:
            await connection.close(4005, "Already authenticated.")
            return
        token = str(data.get("token", ""))
        if not token or (self.token is not None and token != self.token):
            await connection.close(4004, "Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS and not self.allow_privileged_intents:
            await connection.close(4014, "Disallowed intent(s).")
            return
        shard = _shard_pair(data["shard"]) if "shard" in data else None
        if "shard" in data and shard is None:
            await connection.close(4010, "Invalid shard.")
            return
        session = _Session(secrets.token_hex(16), token, intents, shard, connection)
        connection.session = session
        self._sessions[session.session_id] = session
        self.identify_payloads.append(data)
        guilds = [guild_id for guild_id in self._guilds if session.receives(guild_id)]
        ready: JSON = {
            "v": discord.http.INTERNAL_API_VERSION,
            "user": self.bot_user,
            "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "_trace": ["fake-gateway"],
        }
        if shard is not None:
            ready["shard"] = list(shard)
        await self._send_dispatch(session, "READY", ready)
        if intents & INTENT_GUILDS:
            for guild_id in guilds:
                await self._send_dispatch(session, "GUILD_CREATE", self.guild_payload(guild_id))
        self.identified.set()
        await self._notify()

    async def _resume(self, connection: _Connection, data: JSON) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or session.token != data.get("token") or connection.session is not None:
            await connection.send({"op": 9, "d": False, "s": None, "t": None})
            return
        previous = session.connection
        session.connection = connection
        connection.session = session
        if previous is not None and previous is not connection:
            await previous.close(4000, "Session resumed elsewhere.")
        after = int(data.get("seq") or 0)
        for seq, frame in list(session.log):
            if seq > after:
                await connection.send(frame)
        self.resumes += 1
        await self._send_dispatch(session, "RESUMED", {"_trace": ["fake-gateway"]})
        await self._notify()

    async def _member_chunk(self, connection: _Connection, data: JSON) -> None:
        session = connection.session
        guild = self._guilds.get(int(data.get("guild_id") or 0))
        if session is None or guild is None or not session.receives(guild.id):  # another shard's guild
            return
        wanted = {int(user_id) for user_id in _as_list(data.get("user_ids"))}
        query = str(data.get("query") or "").lower()
        members = [
            self._member_payload(guild, user_id)
            for user_id in guild.members
            if (not wanted or user_id in wanted) and str(self.users[user_id]["username"]).lower().startswith(query)
        ]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: JSON = {"guild_id": str(guild.id), "members": members, "chunk_index": 0, "chunk_count": 1}
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)
