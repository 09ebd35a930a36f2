"""A fake Telegram Bot API server for adapter tests.

Point python-telegram-bot at it and it answers like Telegram where it matters::

    async with FakeTelegram() as fake:
        async with telegram.Bot(fake.token, base_url=f"{fake.base_url}/bot") as bot:
            await bot.send_message(1, "<b>hi</b>", parse_mode="HTML")
        assert fake.sent_texts(1) == ["<b>hi</b>"]

The fake rejects what Telegram rejects (HTML it cannot parse, texts over 4096
characters after entity parsing, callback data over 64 bytes, invalid quiz polls,
edits that change nothing, photos that are not a PNG or JPEG or break Telegram's
size and side-ratio limits), records every call, long-polls the updates a test
pushes, and injects faults on demand (429/403/5xx, slow answers, blocked chats,
rate limits). A photo is kept as the sizes Telegram makes of it; it cannot be sent
by URL (the fake has no internet), only uploaded or by a file_id it issued.

Files users send: ``add_file`` registers one (a Document object comes back),
``document_update`` sends it in a message (with a caption, or as the message a
command replies to); ``getFile`` gives its ``file_path`` (refusing files over the
20 MB bots may download, as Telegram does) and ``GET /file/bot<token>/<file_path>``
serves its bytes. ``fail_next_download`` makes that download answer an error.
Object shapes follow the Bot API version the installed python-telegram-bot
speaks (PTB 22.8: Bot API 10.0, e.g. ``correct_option_ids`` and option
``persistent_id`` in polls).

The fake is deliberately a little stricter than Telegram in two places, both
written down in the Bot API docs: a ``&`` that does not start an HTML entity is
refused, and polls are held to the limits in the project's design (2-10 options,
``open_period`` 5-600 s; see ``FakeTelegram.MAX_POLL_OPTIONS`` and
``FakeTelegram.MAX_OPEN_PERIOD``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self

from aiohttp import web

__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_USERNAME",
    "Call",
    "CallbackAnswer",
    "Download",
    "EntityParseError",
    "FakeTelegram",
    "StoredMessage",
    "StoredPoll",
    "UploadedFile",
    "WebhookDelivery",
    "image_size",
    "parse_html",
]

JSON = dict[str, Any]
Handler = Callable[[JSON], Awaitable[Any]]

DEFAULT_TOKEN = "123456789:AAH-fake-token-for-studybot-tests"
DEFAULT_USERNAME = "studybot_test_bot"

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_POLL_QUESTION_LENGTH = 300
MAX_POLL_OPTION_LENGTH = 100
MAX_POLL_EXPLANATION_LENGTH = 200
MAX_POLL_EXPLANATION_LINE_FEEDS = 2
MAX_COMMANDS = 100
MAX_PHOTO_BYTES = 10 * 1024 * 1024  # sendPhoto: at most 10 MB,
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # getFile: a bot may download files of at most 20 MB
MAX_PHOTO_SIDES = 10_000  # width + height at most 10000,
MAX_PHOTO_RATIO = 20  # and the longer side at most 20 times the shorter
PHOTO_BOXES = (90, 320, 800, 1280, 2560)  # the sizes Telegram keeps of a photo (longest side)

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply "
    "markup are exactly the same as a current message content and reply markup of the "
    "message"
)
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
WEBHOOK_PORTS = (443, 80, 88, 8443)  # the only ports Telegram posts webhooks to
_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"

#: Methods that count against Telegram's sending limits (and fail for a blocked chat).
SEND_METHODS = frozenset(
    {
        "sendMessage",
        "sendPoll",
        "sendDocument",
        "sendPhoto",
        "copyMessage",
        "forwardMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "editMessageCaption",
        "stopPoll",
    }
)
_BLOCKABLE_METHODS = SEND_METHODS | {"sendChatAction"}

_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})
_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "web_app",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")

# How form-encoded (string) parameters are read back into their Bot API types.
# python-telegram-bot sends strings as they are and everything else JSON-encoded.
_INT_PARAMS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "user_id",
        "offset",
        "limit",
        "correct_option_id",
        "open_period",
        "close_date",
        "cache_time",
        "reply_to_message_id",
        "message_thread_id",
    }
)
_FLOAT_PARAMS = frozenset({"timeout"})
_BOOL_PARAMS = frozenset(
    {
        "is_anonymous",
        "allows_multiple_answers",
        "allows_revoting",
        "is_closed",
        "show_alert",
        "drop_pending_updates",
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "disable_content_type_detection",
    }
)
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "options",
        "entities",
        "caption_entities",
        "commands",
        "scope",
        "allowed_updates",
        "link_preview_options",
        "reply_parameters",
        "explanation_entities",
        "question_entities",
        "correct_option_ids",
    }
)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class UploadedFile:
    """A file the bot uploaded in a multipart request."""

    filename: str
    content: bytes
    content_type: str


@dataclass
class Call:
    """One request the fake answered, faulted ones included.

    ``status`` is the HTTP status of the answer; 499 means the client hung up
    while a ``delay_next`` delay was running.
    """

    method: str
    params: dict[str, Any]
    chat_id: int | str | None
    status: int = 200
    response: JSON = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.status == HTTPStatus.OK

    @property
    def result(self) -> Any:
        """The ``result`` of a successful answer (None otherwise)."""
        return self.response.get("result")

    @property
    def description(self) -> str | None:
        """The error description of a failed answer."""
        description = self.response.get("description")
        return description if isinstance(description, str) else None


@dataclass(frozen=True)
class Download:
    """One request to the file server: ``GET /file/bot<token>/<file_path>`` and its HTTP status."""

    file_path: str
    status: int


@dataclass(frozen=True)
class _StoredFile:
    """A file the fake holds: what getFile tells about it, and its bytes."""

    file_id: str
    file_unique_id: str
    file_name: str | None
    mime_type: str | None
    content: bytes = field(repr=False)
    file_path: str = ""


@dataclass(frozen=True)
class CallbackAnswer:
    """A recorded answerCallbackQuery."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass
class StoredMessage:
    """A message as the fake keeps it: what chat members see, plus what the bot sent.

    ``text`` is the displayed text (tags removed, entities decoded, trimmed);
    ``source_text`` is the text exactly as the bot sent it (None for incoming).
    """

    chat_id: int
    message_id: int
    date: int
    sender: JSON
    from_bot: bool
    text: str | None = None
    entities: list[JSON] = field(default_factory=list)
    source_text: str | None = None
    reply_markup: JSON | None = None
    caption: str | None = None
    caption_entities: list[JSON] = field(default_factory=list)
    document: JSON | None = None
    photo: list[JSON] | None = None
    poll_id: str | None = None
    reply_to: int | None = None
    edit_date: int | None = None


@dataclass
class StoredPoll:
    """A poll the bot sent, with the votes the fake has seen for it."""

    id: str
    chat_id: int
    message_id: int
    question: str
    options: list[str]
    type: str
    is_anonymous: bool
    allows_multiple_answers: bool
    allows_revoting: bool
    correct_option_ids: list[int]
    explanation: str | None
    explanation_entities: list[JSON]
    open_period: int | None
    close_date: int | None
    is_closed: bool = False
    votes: dict[int, list[int]] = field(default_factory=dict)

    def vote(self, user_id: int, option_ids: Sequence[int]) -> None:
        """Record (or retract, with no options) one user's answer."""
        if option_ids:
            self.votes[user_id] = list(option_ids)
        else:
            self.votes.pop(user_id, None)

    def to_json(self) -> JSON:
        """The Poll object as Telegram returns it to the bot that sent it."""
        counts = [0] * len(self.options)
        for chosen in self.votes.values():
            for option in chosen:
                counts[option] += 1
        poll: JSON = {
            "id": self.id,
            "question": self.question,
            "options": [
                {"text": text, "voter_count": counts[i], "persistent_id": str(i)} for i, text in enumerate(self.options)
            ],
            "total_voter_count": len(self.votes),
            "is_closed": self.is_closed,
            "is_anonymous": self.is_anonymous,
            "type": self.type,
            "allows_multiple_answers": self.allows_multiple_answers,
            "allows_revoting": self.allows_revoting,
            "members_only": False,
        }
        if self.correct_option_ids:
            poll["correct_option_ids"] = list(self.correct_option_ids)
        if self.explanation is not None:
            poll["explanation"] = self.explanation
            if self.explanation_entities:
                poll["explanation_entities"] = self.explanation_entities
        if self.open_period is not None:
            poll["open_period"] = self.open_period
        if self.close_date is not None:
            poll["close_date"] = self.close_date
        return poll


@dataclass
class _Fault:
    method: str
    status: int
    retry_after: int | None
    description: str | None
    chat_id: int | str | None
    remaining: int


@dataclass
class _Delay:
    method: str
    seconds: float
    remaining: int
    process_first: bool
    chat_id: int | str | None = None


@dataclass(frozen=True)
class WebhookDelivery:
    """One webhook POST the fake made: where to, and how the bot answered.

    ``status`` is None when the fake gave up waiting (``timeout``) or could not
    connect; ``error`` then says which.
    """

    update_id: int
    url: str
    status: int | None
    seconds: float
    secret_sent: bool
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Telegram counts any 2xx answer as delivered."""
        return self.status is not None and 200 <= self.status < 300


class _ApiError(Exception):
    """An error answer: raised inside the fake, turned into Telegram's JSON."""

    def __init__(self, status: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(description: str) -> _ApiError:
    return _ApiError(HTTPStatus.BAD_REQUEST, f"Bad Request: {description}")


def _too_many(retry_after: int) -> _ApiError:
    return _ApiError(
        HTTPStatus.TOO_MANY_REQUESTS,
        f"Too Many Requests: retry after {retry_after}",
        retry_after=retry_after,
    )


# ------------------------------------------------------------------- HTML parse mode


class EntityParseError(ValueError):
    """Text that Telegram's HTML parse mode refuses ("can't parse entities")."""


_TAG_ENTITY_TYPES: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8}));")
_TAG_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_ATTR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def utf16_length(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    offset: int
    language: str | None = None


class _HtmlParser:
    """Telegram's HTML parse mode: the allowed tags, properly nested, strict entities."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.out: list[str] = []
        self.offset = 0  # UTF-16 units emitted so far
        self.stack: list[_OpenTag] = []
        self.entities: list[JSON] = []

    def run(self) -> tuple[str, list[JSON]]:
        src = self.src
        while self.pos < len(src):
            char = src[self.pos]
            if char == "<":
                self._tag()
            elif char == "&":
                self._entity()
            else:
                ends = [i for i in (src.find("<", self.pos), src.find("&", self.pos)) if i >= 0]
                end = min(ends) if ends else len(src)
                self._emit(src[self.pos : end])
                self.pos = end
        if self.stack:
            name = self.stack[-1].name
            raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{name}"')
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities

    def _emit(self, text: str) -> None:
        self.out.append(text)
        self.offset += utf16_length(text)

    def _byte_offset(self, index: int) -> int:
        return len(self.src[:index].encode())

    def _skip_space(self, index: int) -> int:
        while index < len(self.src) and self.src[index].isspace():
            index += 1
        return index

    def _entity(self) -> None:
        match = _ENTITY_RE.match(self.src, self.pos)
        if match is None:
            raise EntityParseError(
                f'Character "&" at byte offset {self._byte_offset(self.pos)} does not start '
                "an HTML entity; write it as &amp;"
            )
        if match.group(1):
            self._emit(_NAMED_ENTITIES[match.group(1)])
        else:
            code = int(match.group(2)) if match.group(2) else int(match.group(3), 16)
            if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise EntityParseError(f"Invalid character reference at byte offset {self._byte_offset(self.pos)}")
            self._emit(chr(code))
        self.pos = match.end()

    def _tag(self) -> None:
        if self.src.startswith("</", self.pos):
            self._end_tag()
        else:
            self._start_tag()

    def _end_tag(self) -> None:
        start = self.pos
        match = _TAG_NAME_RE.match(self.src, start + 2)
        name = match.group(0).lower() if match else ""
        index = self._skip_space(match.end() if match else start + 2)
        if index >= len(self.src) or self.src[index] != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {self._byte_offset(start)}")
        if not self.stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {self._byte_offset(start)}")
        top = self.stack.pop()
        if name != top.name:
            raise EntityParseError(
                f"Unmatched end tag at byte offset {self._byte_offset(start)}, "
                f'expected "</{top.name}>", found "</{name}>"'
            )
        self._close(top)
        self.pos = index + 1

    def _start_tag(self) -> None:
        src, start = self.src, self.pos
        where = f"at byte offset {self._byte_offset(start)}"
        match = _TAG_NAME_RE.match(src, start + 1)
        name = match.group(0).lower() if match else ""
        if match is None or name not in _TAG_ENTITY_TYPES:
            raise EntityParseError(f'Unsupported start tag "{name}" {where}')
        attrs: dict[str, str] = {}
        index = match.end()
        while True:
            index = self._skip_space(index)
            if index >= len(src):
                raise EntityParseError(f"Unclosed start tag {where}")
            if src[index] == ">":
                break
            attr = _ATTR_NAME_RE.match(src, index)
            if attr is None:
                raise EntityParseError(f'Empty attribute name in the tag "{name}" {where}')
            index = self._skip_space(attr.end())
            value = ""
            if index < len(src) and src[index] == "=":
                index = self._skip_space(index + 1)
                if index >= len(src):
                    raise EntityParseError(f"Unclosed start tag {where}")
                if src[index] in "\"'":
                    close = src.find(src[index], index + 1)
                    if close < 0:
                        raise EntityParseError(f"Unclosed start tag {where}")
                    raw, index = src[index + 1 : close], close + 1
                else:
                    end = index
                    while end < len(src) and not src[end].isspace() and src[end] != ">":
                        end += 1
                    raw, index = src[index:end], end
                value = _ENTITY_RE.sub(_decode_entity_match, raw)
            attrs[attr.group(0).lower()] = value
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" {where}')
        self.stack.append(_OpenTag(name, attrs, self.offset))
        self.pos = index + 1

    def _close(self, tag: _OpenTag) -> None:
        length = self.offset - tag.offset
        if tag.name == "code" and self.stack and self.stack[-1].name == "pre":
            css = tag.attrs.get("class", "")
            if css.startswith("language-") and len(css) > len("language-"):
                # <pre><code class="language-x"> is one pre entity with a language
                self.stack[-1].language = css[len("language-") :]
                return
        entity: JSON = {"type": _TAG_ENTITY_TYPES[tag.name], "offset": tag.offset}
        if tag.name == "a":
            href = tag.attrs.get("href")
            if not href:
                return
            entity["url"] = href
        elif tag.name == "blockquote" and "expandable" in tag.attrs:
            entity["type"] = "expandable_blockquote"
        elif tag.name == "pre" and tag.language:
            entity["language"] = tag.language
        elif tag.name == "tg-emoji":
            emoji_id = tag.attrs.get("emoji-id")
            if not emoji_id:
                return
            entity["custom_emoji_id"] = emoji_id
        if length > 0:
            entity["length"] = length
            self.entities.append(entity)


def _decode_entity_match(match: re.Match[str]) -> str:
    if match.group(1):
        return _NAMED_ENTITIES[match.group(1)]
    code = int(match.group(2)) if match.group(2) else int(match.group(3), 16)
    return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else match.group(0)


def parse_html(source: str) -> tuple[str, list[JSON]]:
    """Parse Telegram HTML into (displayed text, entities with UTF-16 offsets).

    Raises EntityParseError for what Telegram refuses: unknown tags, a bare ``<``,
    badly nested or unclosed tags, ``&`` that does not start an entity.
    """
    return _HtmlParser(source).run()


def _trim(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Telegram trims surrounding whitespace from messages; move entities with it."""
    body = text.strip()
    if body == text:
        return text, entities
    shift = utf16_length(text[: len(text) - len(text.lstrip())])
    limit = utf16_length(body)
    moved: list[JSON] = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, limit)
        if end > start:
            moved.append({**entity, "offset": start, "length": end - start})
    return body, moved


def _render(text: str, parse_mode: Any, entities: Any = None) -> tuple[str, list[JSON]]:
    """The displayed text and entities of ``text`` sent with ``parse_mode``."""
    mode = parse_mode.lower() if isinstance(parse_mode, str) else ""
    if mode == "html":
        try:
            plain, parsed = parse_html(text)
        except EntityParseError as err:
            raise _bad(f"can't parse entities: {err}") from None
    elif mode in ("", "markdown", "markdownv2"):
        # Markdown is passed through unchecked: the project renders HTML only.
        plain = text
        parsed = list(entities) if mode == "" and isinstance(entities, list) else []
    else:
        raise _bad("unsupported parse_mode")
    return _trim(plain, parsed)


# ------------------------------------------------------------------ request parsing


def _coerce(name: str, value: Any) -> Any:
    """Read a form-encoded parameter back into its Bot API type."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode()
    if not isinstance(value, str):
        return value
    if name in _JSON_PARAMS:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            if name == "reply_markup":
                raise _bad("can't parse reply keyboard markup JSON object") from None
            raise _bad(f"can't parse {name} JSON object") from None
    if name in _INT_PARAMS:
        if re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        if name == "chat_id":
            return value  # "@channelusername"
        raise _bad(f"invalid {name} specified")
    if name in _FLOAT_PARAMS:
        try:
            return float(value)
        except ValueError:
            raise _bad(f"invalid {name} specified") from None
    if name in _BOOL_PARAMS:
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0", ""):
            return False
        raise _bad(f"invalid {name} specified")
    return value


async def _read_params(request: web.Request) -> JSON:
    """Query string plus body, whether JSON, form-urlencoded or multipart."""
    raw: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                raise _bad("can't parse JSON object") from None
            if not isinstance(body, dict):
                raise _bad("JSON object expected")
            raw.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    value.file.seek(0)
                    raw[key] = UploadedFile(value.filename, value.file.read(), value.content_type)
                else:
                    raw[key] = value
    return {key: _coerce(key, value) for key, value in raw.items()}


def _as_int(params: Mapping[str, Any], name: str, missing: str) -> int:
    value = params.get(name)
    if value is None or value == "":
        raise _bad(missing)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"invalid {name} specified")
    return value


def _opt_int(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"invalid {name} specified")
    return value


def _text_param(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _bad(f"invalid {name} specified")
    return str(value)


def _check_inline_button(button: Any) -> None:
    prefix = "can't parse inline keyboard button: "
    if not isinstance(button, dict):
        raise _bad(prefix + "InlineKeyboardButton must be an Object")
    text = button.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _bad(prefix + "Text must be non-empty")
    if not any(key in button for key in _BUTTON_ACTIONS):
        raise _bad(prefix + "Text buttons are unallowed in the inline keyboard")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise _bad("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "tg://")):
            raise _bad("BUTTON_URL_INVALID")


def _check_markup(markup: Any, *, inline_only: bool = False) -> JSON | None:
    """Validate reply_markup; return the inline keyboard a message keeps (or None)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
        for row in rows:
            for button in row:
                _check_inline_button(button)
        return markup if any(rows) else None
    if not inline_only and any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
        return None
    raise _bad("can't parse reply keyboard markup JSON object")


# ------------------------------------------------------------------------ the fake


class FakeTelegram:
    """A Telegram Bot API server on 127.0.0.1 for python-telegram-bot tests.

    Use it as an async context manager (or call ``start``/``stop``). A bot talks
    to it with ``telegram.Bot(fake.token, base_url=f"{fake.base_url}/bot")``, or
    with ``TELEGRAM_API_URL=fake.api_url`` where the client appends
    ``/bot{token}/{method}`` itself.
    """

    #: Poll limits enforced here: the project's design limits. Telegram itself
    #: (Bot API 10.0) allows 12 options and open_period up to 2628000 s.
    MAX_POLL_OPTIONS = 10
    MIN_OPEN_PERIOD = 5
    MAX_OPEN_PERIOD = 600

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = DEFAULT_USERNAME,
        first_name: str = "StudyBot",
        rate_limit_per_s: int | None = None,
        per_chat_per_s: int | None = None,
        per_group_per_min: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.token = token
        self.username = username
        self.first_name = first_name
        self.rate_limit_per_s = rate_limit_per_s
        self.per_chat_per_s = per_chat_per_s
        self.per_group_per_min = per_group_per_min
        self._host = host
        prefix = token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 123456789

        #: Every answered request, in order.
        self.calls: list[Call] = []
        #: Every accepted answerCallbackQuery, in order.
        self.callback_answers: list[CallbackAnswer] = []
        #: Polls sent by the bot, by poll id.
        self.polls: dict[str, StoredPoll] = {}
        #: Send-type calls refused by the rate limits.
        self.rate_limited = 0

        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._call_listeners: list[Callable[[], None]] = []

        self._users: dict[int, JSON] = {}
        self._chats: dict[int, JSON] = {}
        self._messages: dict[int, dict[int, StoredMessage]] = {}
        self._next_message_id: dict[int, int] = {}
        self._member_status: dict[tuple[int, int], str] = {}
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._open_queries: set[str] = set()
        self._blocked: set[int] = set()

        self._updates: list[JSON] = []
        self._last_queued_update_id = 0
        self._next_update_id = 1
        self._poll_generation = 0
        self._long_polls = 0
        self._long_poll_started = asyncio.Event()
        self._ids = itertools.count(1)

        self._faults: list[_Fault] = []
        self._delays: list[_Delay] = []

        #: The webhook as setWebhook left it ("" url: none), and where the fake really posts it: the
        #: public URL's path on each of ``webhook_targets`` (base URLs such as http://127.0.0.1:PORT),
        #: round-robin, as a load balancer in front of the bot's replicas would.
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.webhook_allowed_updates: list[str] | None = None
        self.webhook_targets: list[str] = []
        #: Every webhook POST, in order.
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._next_target = 0
        self._webhook_client: Any = None
        self._download_faults: list[list[int]] = []  # [status, remaining]
        self._files: dict[str, _StoredFile] = {}
        #: Every request to the file server, in order.
        self.downloads: list[Download] = []
        self._global_window: deque[float] = deque()
        self._chat_windows: dict[int | str, deque[float]] = {}
        self._group_windows: dict[int, deque[float]] = {}

        self._handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendPoll": self._send_poll,
            "stopPoll": self._stop_poll,
            "getChatMember": self._get_chat_member,
            "getChat": self._get_chat,
            "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
            "sendChatAction": self._send_chat_action,
            "getFile": self._get_file,
        }
        # Telegram matches method names case-insensitively.
        self._canonical = {name.lower(): name for name in self._handlers}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on a free port of the loopback interface."""
        if self._runner is not None:
            raise RuntimeError("FakeTelegram is already running")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._download)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._closing.clear()
        # handler_cancellation: a client that gives up (timeout) cancels its handler;
        # a short shutdown_timeout keeps stop() quick even with a long poll pending.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Wake pending long polls and delays, then close the server."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing.set()
        self._wake_pollers()
        client, self._webhook_client = self._webhook_client, None
        if client is not None:
            await client.close()
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The TCP port the fake listens on."""
        if self._port is None:
            raise RuntimeError("FakeTelegram is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; a PTB bot uses ``base_url=f"{fake.base_url}/bot"``."""
        return f"http://{self._host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Same as base_url, for TELEGRAM_API_URL-style settings."""
        return self.base_url

    # ------------------------------------------------------------- inspection

    def calls_to(self, method: str) -> list[Call]:
        """All recorded calls to ``method`` (any status)."""
        name = self._canonical.get(method.lower(), method)
        return [call for call in self.calls if call.method == name]

    def sent_texts(self, chat_id: int | None = None, *, rendered: bool = False) -> list[str]:
        """Texts of successful sendMessage calls, optionally for one chat.

        By default the text as the bot sent it (HTML included); with
        ``rendered=True`` the text chat members see.
        """
        texts: list[str] = []
        for call in self.calls:
            if call.method != "sendMessage" or not call.ok:
                continue
            if chat_id is not None and call.chat_id != chat_id:
                continue
            texts.append(call.result["text"] if rendered else str(call.params.get("text", "")))
        return texts

    def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
        predicate: Callable[[Call], bool] | None = None,
    ) -> Awaitable[list[Call]]:
        """Wait until ``count`` calls to ``method`` (matching ``predicate``) are recorded.

        ``await fake.wait_for("sendMessage")`` returns all matching calls and
        raises TimeoutError after ``timeout`` seconds. Calls of any status count;
        filter with ``predicate=lambda c: c.ok``.
        """
        name = self._canonical.get(method.lower(), method)
        return self._wait_for(name, count, timeout, predicate)

    async def _wait_for(
        self, name: str, count: int, seconds: float, predicate: Callable[[Call], bool] | None
    ) -> list[Call]:
        def matching() -> list[Call]:
            return [call for call in self.calls if call.method == name and (predicate is None or predicate(call))]

        found = matching()
        if len(found) >= count:
            return found
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def check() -> None:
            if not done.done() and len(matching()) >= count:
                done.set_result(None)

        self._call_listeners.append(check)
        try:
            await asyncio.wait_for(done, seconds)
        except TimeoutError:
            seen = ", ".join(f"{c.method}:{c.status}" for c in self.calls) or "none"
            raise TimeoutError(
                f"waited {seconds}s for {count} call(s) to {name}, got {len(matching())}; calls so far: {seen}"
            ) from None
        finally:
            self._call_listeners.remove(check)
        return matching()

    def wait_for_long_poll(self, timeout: float = 5.0) -> Awaitable[None]:
        """Wait until a getUpdates request is parked waiting for updates.

        Lets a test prove that a pushed update wakes a pending long poll.
        """
        return self._wait_for_long_poll(timeout)

    async def _wait_for_long_poll(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self._long_polls == 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no getUpdates long poll started within {seconds}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._long_poll_started.wait(), remaining)

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """The stored message (None when it never existed or was deleted)."""
        return self._messages.get(chat_id, {}).get(message_id)

    def messages(self, chat_id: int) -> list[StoredMessage]:
        """All stored messages of a chat, oldest first."""
        return sorted(self._messages.get(chat_id, {}).values(), key=lambda m: m.message_id)

    def message_json(self, chat_id: int, message_id: int) -> JSON:
        """The Message object for a stored message, as Telegram would send it."""
        stored = self.message(chat_id, message_id)
        if stored is None:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        return self._message_json(stored)

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    @property
    def commands(self) -> list[JSON]:
        """Commands set for the default scope and no language."""
        return list(self._commands.get(("default", ""), []))

    def commands_for(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        """Commands set for a given scope and language."""
        return list(self._commands.get((_scope_key(scope), language_code), []))

    @property
    def bot_user(self) -> JSON:
        """The bot's User object."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    # -------------------------------------------------------------- test setup

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """What getChatMember answers for (chat, user); the default is "member"."""
        if status not in _MEMBER_STATUSES:
            raise ValueError(f"unknown chat member status {status!r}")
        self._member_status[(chat_id, user_id)] = status

    def add_chat(
        self,
        chat_id: int,
        chat_type: str | None = None,
        *,
        title: str | None = None,
        user: JSON | None = None,
    ) -> JSON:
        """Register a chat (type, title) so replies carry the right Chat object."""
        if chat_type is None:
            chat_type = _guess_chat_type(chat_id)
        chat: JSON = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            person = user or self._users.get(chat_id) or {"first_name": "User"}
            chat["first_name"] = person.get("first_name", "User")
            if person.get("username"):
                chat["username"] = person["username"]
        else:
            chat["title"] = title or f"Test group {chat_id}"
        self._chats[chat_id] = chat
        return dict(chat)

    def block_chat(self, chat_id: int) -> None:
        """Answer every send to ``chat_id`` with 403 until ``unblock_chat``."""
        self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        """Undo ``block_chat``."""
        self._blocked.discard(chat_id)

    def fail_next(
        self,
        method: str,
        status: int,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        chat_id: int | str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls to ``method`` ("*" for any) with an error.

        429 carries ``parameters.retry_after`` (default 1 s); 403 reads "Forbidden:
        bot was blocked by the user"; 500/502 "Internal Server Error"/"Bad Gateway".
        With ``chat_id`` only calls to that chat fail.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        name = method if method == "*" else self._canonical.get(method.lower(), method)
        self._faults.append(_Fault(name, status, retry_after, description, chat_id, times))

    def fail_next_download(self, status: int, *, times: int = 1) -> None:
        """Answer the next ``times`` requests to the file server with HTTP ``status`` (404, 500, ...)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        self._download_faults.append([status, times])

    def delay_next(
        self,
        method: str,
        seconds: float,
        times: int = 1,
        *,
        process_first: bool = False,
        chat_id: int | str | None = None,
    ) -> None:
        """Answer the next ``times`` calls to ``method`` ("*" for any) ``seconds`` late.

        By default the delay comes before the call is handled: a client that
        times out leaves no trace but a Call with status 499. With
        ``process_first=True`` the call takes effect and only the answer is late,
        like Telegram delivering a message whose response got lost. With
        ``chat_id`` only calls to that chat are delayed.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        name = method if method == "*" else self._canonical.get(method.lower(), method)
        self._delays.append(_Delay(name, seconds, times, process_first, chat_id))

    # ----------------------------------------------------------------- updates

    def make_user(
        self,
        user_id: int,
        first_name: str = "Ann",
        username: str | None = None,
        *,
        language_code: str | None = "en",
    ) -> JSON:
        """A User object for incoming updates; the fake remembers it by id."""
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        return dict(user)

    def push_update(self, update: JSON) -> JSON:
        """Queue an update for getUpdates; returns it with its update_id.

        Keeps the update_id a builder assigned unless it would break the
        queue's increasing order.
        """
        queued = dict(update)
        update_id = queued.get("update_id")
        if not isinstance(update_id, int) or update_id <= self._last_queued_update_id:
            update_id = self._new_update_id()
        self._next_update_id = max(self._next_update_id, update_id + 1)
        queued["update_id"] = update_id
        self._last_queued_update_id = update_id
        self._updates.append(queued)
        self._wake_pollers()
        return queued

    def message_update(
        self,
        chat_id: int,
        user: JSON,
        text: str,
        chat_type: str = "private",
        chat_title: str | None = None,
        *,
        reply_to: int | None = None,
    ) -> JSON:
        """An update with a user's text message; the fake stores the message.

        A text starting with "/" gets a bot_command entity (UTF-16 length, the
        ``@botname`` suffix included). ``reply_to``: the id of a stored message of
        the chat it replies to (it comes as ``reply_to_message``).
        """
        self._incoming_chat(chat_id, user, chat_type, chat_title)
        stored = self._store(
            chat_id,
            sender=dict(user),
            from_bot=False,
            text=text,
            entities=_command_entities(text),
            reply_to=self._incoming_reply_target(chat_id, reply_to),
        )
        return {"update_id": self._new_update_id(), "message": self._message_json(stored)}

    def add_file(
        self,
        file_name: str | None,
        content: bytes,
        *,
        mime_type: str | None = None,
        file_id: str | None = None,
    ) -> JSON:
        """Register a file a user sends; returns its Document object (file_id, file_unique_id, file_name,
        mime_type, file_size) for ``document_update``. getFile and the file server then know it."""
        serial = next(self._ids)
        stored = _StoredFile(
            file_id=file_id or f"BQACAgIAAxkBAAIU{serial:08d}",
            file_unique_id=f"AgADU{serial}",
            file_name=file_name,
            mime_type=mime_type,
            content=bytes(content),
            file_path=f"documents/file_{serial}{_extension(file_name)}",
        )
        self._files[stored.file_id] = stored
        return _document_json(stored)

    def document_update(
        self,
        chat_id: int,
        user: JSON,
        document: JSON,
        caption: str | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
        *,
        reply_to: int | None = None,
    ) -> JSON:
        """An update with a user's document (from ``add_file``), with an optional caption; the fake stores
        the message. A caption starting with "/" gets a bot_command caption entity."""
        self._incoming_chat(chat_id, user, chat_type, chat_title)
        if caption is not None and len(caption) > MAX_CAPTION_LENGTH:
            raise ValueError("a caption is at most 1024 characters")
        stored = self._store(
            chat_id,
            sender=dict(user),
            from_bot=False,
            document=dict(document),
            caption=caption or None,
            caption_entities=_command_entities(caption or ""),
            reply_to=self._incoming_reply_target(chat_id, reply_to),
        )
        return {"update_id": self._new_update_id(), "message": self._message_json(stored)}

    def _incoming_chat(self, chat_id: int, user: JSON, chat_type: str, chat_title: str | None) -> None:
        self._users.setdefault(int(user["id"]), dict(user))
        if chat_id not in self._chats or self._chats[chat_id]["type"] != chat_type:
            self.add_chat(chat_id, chat_type, title=chat_title, user=user)

    def _incoming_reply_target(self, chat_id: int, reply_to: int | None) -> int | None:
        if reply_to is not None and self.message(chat_id, reply_to) is None:
            raise LookupError(f"no message {reply_to} in chat {chat_id} to reply to")
        return reply_to

    def callback_update(
        self,
        chat_id: int,
        user: JSON,
        message_id: int,
        data: str,
        chat_type: str | None = None,
    ) -> JSON:
        """An update with a button press on a stored message.

        The ``message`` is the message as the fake holds it now (edits
        included). ``chat_type`` registers the chat's type if the fake has not
        seen the chat yet. The query id becomes answerable once.
        """
        self._users.setdefault(int(user["id"]), dict(user))
        if chat_id not in self._chats and chat_type is not None:
            self.add_chat(chat_id, chat_type, user=user)
        stored = self.message(chat_id, message_id)
        if stored is None:
            raise LookupError(f"no message {message_id} in chat {chat_id} to press a button on")
        query_id = str(4_000_000_000_000_000 + next(self._ids))
        self._open_queries.add(query_id)
        return {
            "update_id": self._new_update_id(),
            "callback_query": {
                "id": query_id,
                "from": dict(user),
                "message": self._message_json(stored),
                "chat_instance": f"ci{abs(chat_id)}",
                "data": data,
            },
        }

    def poll_answer_update(self, poll_id: str, user: JSON, option_ids: Sequence[int]) -> JSON:
        """An update with a user's poll answer; counted in the poll while it is open."""
        chosen = list(option_ids)
        poll = self.polls.get(poll_id)
        if poll is not None:
            if any(not 0 <= option < len(poll.options) for option in chosen):
                raise ValueError(f"option ids {chosen} out of range for poll {poll_id}")
            if not poll.is_closed:
                poll.vote(int(user["id"]), chosen)
        return {
            "update_id": self._new_update_id(),
            "poll_answer": {
                "poll_id": poll_id,
                "user": dict(user),
                "option_ids": chosen,
                "option_persistent_ids": [str(option) for option in chosen],
            },
        }

    # ---------------------------------------------------------------- webhooks

    def _webhook_client_session(self) -> Any:
        from aiohttp import ClientSession, TCPConnector

        if self._webhook_client is None:
            self._webhook_client = ClientSession(connector=TCPConnector(limit=0))
        return self._webhook_client

    def next_webhook_target(self) -> str:
        """The next of ``webhook_targets``, round-robin (a load balancer's choice)."""
        if not self.webhook_targets:
            raise RuntimeError("no webhook_targets: give the base URLs of the bot's HTTP servers")
        target = self.webhook_targets[self._next_target % len(self.webhook_targets)]
        self._next_target += 1
        return target

    async def deliver(
        self,
        update: JSON,
        *,
        target: str | None = None,
        timeout: float = 10.0,
        secret: str | None = None,
        omit_secret: bool = False,
    ) -> WebhookDelivery:
        """POST ``update`` to the webhook as Telegram does: JSON, with the secret header setWebhook registered
        (``secret`` sends another one, ``omit_secret`` none), to the registered URL's path on ``target`` (by
        default the next of ``webhook_targets``). Waits ``timeout`` seconds for the answer; a bot slower than
        that, or not listening, gives a delivery with status None. Every delivery is recorded."""
        if not self.webhook_url:
            raise RuntimeError("no webhook is set (setWebhook was not called, or deleteWebhook was)")
        kind = next((key for key in update if key != "update_id"), "")
        if self.webhook_allowed_updates and kind not in self.webhook_allowed_updates:
            allowed = self.webhook_allowed_updates
            raise ValueError(f"Telegram does not post {kind!r} updates: allowed_updates is {allowed}")
        from urllib.parse import urlsplit

        from aiohttp import ClientError, ClientTimeout

        parts = urlsplit(self.webhook_url)
        url = (target or self.next_webhook_target()).rstrip("/") + (parts.path or "/")
        if parts.query:
            url += f"?{parts.query}"
        headers = {"Content-Type": "application/json"}
        token = secret if secret is not None else self.webhook_secret
        if token is not None and not omit_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            async with self._webhook_client_session().post(
                url, data=json.dumps(update), headers=headers, timeout=ClientTimeout(total=timeout)
            ) as response:
                await response.read()
                status = response.status
        except TimeoutError:
            error = "timeout"
        except ClientError as exc:
            error = type(exc).__name__
        delivery = WebhookDelivery(
            update_id=int(update["update_id"]),
            url=url,
            status=status,
            seconds=time.perf_counter() - started,
            secret_sent="X-Telegram-Bot-Api-Secret-Token" in headers,
            error=error,
        )
        self.webhook_deliveries.append(delivery)
        return delivery

    async def deliver_until_ok(
        self, update: JSON, *, timeouts: Sequence[float] = (10.0,), attempts: int = 5, pause: float = 0.0
    ) -> list[WebhookDelivery]:
        """Deliver ``update`` until a 2xx answer, as Telegram persists: after a timeout or an error answer the
        same update goes again, to another target than the last (when there are several). Attempt i waits
        ``timeouts[i]`` (the last one repeats), so ``timeouts=(0.2, 10)`` gives up on a slow first answer and
        re-sends. Raises after ``attempts``."""
        tried: list[WebhookDelivery] = []
        for attempt in range(attempts):
            target = self.next_webhook_target()
            if tried and len(self.webhook_targets) > 1 and tried[-1].url.startswith(target.rstrip("/") + "/"):
                target = self.next_webhook_target()
            timeout = timeouts[min(attempt, len(timeouts) - 1)]
            delivery = await self.deliver(update, target=target, timeout=timeout)
            tried.append(delivery)
            if delivery.ok:
                return tried
            if pause:
                await asyncio.sleep(pause)
        raise RuntimeError(f"update {update['update_id']} not delivered after {attempts} attempts: {tried}")

    def deliveries_of(self, update_id: int) -> list[WebhookDelivery]:
        return [d for d in self.webhook_deliveries if d.update_id == update_id]

    # ------------------------------------------------------------ HTTP plumbing

    async def _download(self, request: web.Request) -> web.Response:
        """The file server: the bytes of a file getFile gave a path for (Telegram answers errors as JSON)."""
        file_path = request.match_info["file_path"]
        status: int = HTTPStatus.OK
        if request.match_info["token"] != self.token:
            status = HTTPStatus.UNAUTHORIZED
        elif self._download_faults:
            fault = self._download_faults[0]
            status, fault[1] = fault[0], fault[1] - 1
            if fault[1] <= 0:
                self._download_faults.pop(0)
        stored = next((f for f in self._files.values() if f.file_path == file_path), None)
        if status == HTTPStatus.OK and stored is None:
            status = HTTPStatus.NOT_FOUND
        self.downloads.append(Download(file_path, status))
        if status != HTTPStatus.OK or stored is None:
            try:
                description = HTTPStatus(status).phrase
            except ValueError:
                description = f"Error {status}"
            return web.json_response({"ok": False, "error_code": status, "description": description}, status=status)
        return web.Response(body=stored.content, content_type="application/octet-stream")

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _handle(self, request: web.Request) -> web.Response:
        raw_method = request.match_info["method"]
        method = self._canonical.get(raw_method.lower(), raw_method)
        try:
            params = await _read_params(request)
        except _ApiError as err:
            return self._answer(Call(method, {}, None), err.status, err.body())
        chat = params.get("chat_id")
        chat_id = chat if isinstance(chat, int | str) and not isinstance(chat, bool) else None
        call = Call(method, params, chat_id)
        if request.match_info["token"] != self.token:
            return self._answer(call, 401, _ApiError(401, "Unauthorized").body())
        handler = self._handlers.get(method)
        if handler is None:
            return self._answer(call, 400, _bad("method not found").body())

        delay = self._take_delay(method, chat_id)
        if delay is not None and not delay.process_first:
            try:
                await self._pause(delay.seconds)
            except asyncio.CancelledError:
                hung_up = {"ok": False, "error_code": 499, "description": "client hung up"}
                self._record(call, 499, hung_up)
                raise
        try:
            self._gate(method, chat_id)
            result = await handler(params)
        except _ApiError as err:
            status, body = err.status, err.body()
        else:
            status, body = 200, {"ok": True, "result": result}
        self._record(call, status, body)
        if delay is not None and delay.process_first:
            await self._pause(delay.seconds)
        return web.json_response(body, status=status)

    def _answer(self, call: Call, status: int, body: JSON) -> web.Response:
        self._record(call, status, body)
        return web.json_response(body, status=status)

    def _record(self, call: Call, status: int, body: JSON) -> None:
        call.status = status
        call.response = body
        self.calls.append(call)
        for listener in list(self._call_listeners):
            listener()

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the fake stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _take_delay(self, method: str, chat_id: int | str | None = None) -> _Delay | None:
        for delay in self._delays:
            if delay.method in ("*", method) and delay.chat_id in (None, chat_id):
                delay.remaining -= 1
                if delay.remaining <= 0:
                    self._delays.remove(delay)
                return delay
        return None

    def _gate(self, method: str, chat_id: int | str | None) -> None:
        """Injected faults, blocked chats and rate limits, in that order."""
        for fault in self._faults:
            if fault.method in ("*", method) and fault.chat_id in (None, chat_id):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                raise _injected_error(fault)
        if method in _BLOCKABLE_METHODS and isinstance(chat_id, int) and chat_id in self._blocked:
            raise _ApiError(HTTPStatus.FORBIDDEN, _blocked_description(self._chat_type(chat_id)))
        if method in SEND_METHODS:
            retry_after = self._spend_budget(chat_id)
            if retry_after is not None:
                self.rate_limited += 1
                raise _too_many(retry_after)

    def _spend_budget(self, chat_id: int | str | None) -> int | None:
        """Sliding-window rate limits; None when the call may go, else retry_after."""
        now = time.monotonic()
        windows: list[tuple[deque[float], int, float]] = []
        if self.rate_limit_per_s is not None:
            windows.append((self._global_window, self.rate_limit_per_s, 1.0))
        if self.per_chat_per_s is not None and chat_id is not None:
            window = self._chat_windows.setdefault(chat_id, deque())
            windows.append((window, self.per_chat_per_s, 1.0))
        if self.per_group_per_min is not None and isinstance(chat_id, int) and chat_id < 0:
            window = self._group_windows.setdefault(chat_id, deque())
            windows.append((window, self.per_group_per_min, 60.0))
        for window, limit, span in windows:
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) >= limit:
                return max(1, math.ceil(window[0] + span - now)) if window else 1
        for window, _, _ in windows:
            window.append(now)
        return None

    def _wake_pollers(self) -> None:
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    def _new_update_id(self) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        return update_id

    # ------------------------------------------------------------ chats, messages

    def _chat_type(self, chat_id: int) -> str:
        chat = self._chats.get(chat_id)
        return str(chat["type"]) if chat else _guess_chat_type(chat_id)

    def _chat_json(self, chat_id: int) -> JSON:
        chat = self._chats.get(chat_id)
        return dict(chat) if chat else self.add_chat(chat_id)

    def _store(self, chat_id: int, *, sender: JSON, from_bot: bool, **fields: Any) -> StoredMessage:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        stored = StoredMessage(
            chat_id=chat_id,
            message_id=message_id,
            date=int(time.time()),
            sender=sender,
            from_bot=from_bot,
            **fields,
        )
        self._messages.setdefault(chat_id, {})[message_id] = stored
        return stored

    def _message_json(self, stored: StoredMessage, *, with_reply: bool = True) -> JSON:
        message: JSON = {
            "message_id": stored.message_id,
            "date": stored.date,
            "chat": self._chat_json(stored.chat_id),
            "from": dict(stored.sender),
        }
        if stored.text is not None:
            message["text"] = stored.text
            if stored.entities:
                message["entities"] = list(stored.entities)
        if stored.document is not None:
            message["document"] = dict(stored.document)
        if stored.photo is not None:
            message["photo"] = [dict(size) for size in stored.photo]
        if stored.caption is not None:
            message["caption"] = stored.caption
            if stored.caption_entities:
                message["caption_entities"] = list(stored.caption_entities)
        if stored.poll_id is not None:
            message["poll"] = self.polls[stored.poll_id].to_json()
        if stored.reply_markup is not None:
            message["reply_markup"] = stored.reply_markup
        if stored.edit_date is not None:
            message["edit_date"] = stored.edit_date
        if with_reply and stored.reply_to is not None:
            target = self.message(stored.chat_id, stored.reply_to)
            if target is not None:
                message["reply_to_message"] = self._message_json(target, with_reply=False)
        return message

    def _chat_id(self, params: Mapping[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        if isinstance(chat_id, bool) or not isinstance(chat_id, int):
            raise _bad("chat not found")
        return chat_id

    def _bot_message(self, params: Mapping[str, Any], chat_id: int) -> StoredMessage:
        message_id = _as_int(params, "message_id", "message identifier is not specified")
        stored = self.message(chat_id, message_id)
        if stored is None:
            raise _bad("message to edit not found")
        if not stored.from_bot:
            raise _bad("message can't be edited")
        return stored

    def _reply_target(self, params: Mapping[str, Any], chat_id: int) -> int | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            target, allow = reply.get("message_id"), bool(reply.get("allow_sending_without_reply"))
        else:
            target = params.get("reply_to_message_id")
            allow = bool(params.get("allow_sending_without_reply"))
        if not isinstance(target, int) or isinstance(target, bool):
            return None
        if self.message(chat_id, target) is None:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return target

    # ------------------------------------------------------------------ methods

    async def _get_me(self, params: JSON) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: JSON) -> Any:
        offset = _opt_int(params, "offset")
        limit = min(max(_opt_int(params, "limit") or 100, 1), 100)
        raw_timeout = params.get("timeout") or 0
        if isinstance(raw_timeout, bool) or not isinstance(raw_timeout, int | float):
            raise _bad("invalid timeout specified")
        if self.webhook_url:
            raise _ApiError(HTTPStatus.CONFLICT, WEBHOOK_CONFLICT)
        if offset:
            self._confirm(offset)
        # A newer getUpdates terminates an older one, as on Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(float(raw_timeout), 0.0)
        while True:
            if generation != self._poll_generation:
                raise _ApiError(HTTPStatus.CONFLICT, CONFLICT)
            if self._updates:
                return self._updates[:limit]
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing.is_set():
                return []
            wakeup = self._wakeup
            self._long_polls += 1
            self._long_poll_started.set()
            self._long_poll_started = asyncio.Event()
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), remaining)
            finally:
                self._long_polls -= 1

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        else:
            self._updates = self._updates[offset:]

    async def _set_webhook(self, params: JSON) -> Any:
        url = params.get("url")
        if not isinstance(url, str):
            raise _bad("bad webhook: Webhook URL is not specified")  # Telegram answers so for a missing url
        if url == "":
            return await self._delete_webhook(params)
        found = re.fullmatch(r"https://([^/:?#\s]+)(?::(\d+))?(/[^\s#]*)?", url)
        if url.startswith("http://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        if found is None:
            raise _bad("bad webhook: Failed to resolve host: Name or service not known")
        if found.group(2) is not None and int(found.group(2)) not in WEBHOOK_PORTS:
            raise _bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = params.get("secret_token")
        if secret is not None and (not isinstance(secret, str) or not _SECRET_TOKEN_RE.fullmatch(secret)):
            raise _bad("bad webhook: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if allowed is not None and (not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed)):
            raise _bad("can't parse allowed updates")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook_url = url
        self.webhook_secret = secret
        if allowed is not None:  # as on Telegram: left out, the previous setting stays
            self.webhook_allowed_updates = list(allowed)
        return True

    async def _delete_webhook(self, params: JSON) -> Any:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook_url = ""
        self.webhook_secret = None
        return True

    async def _get_webhook_info(self, params: JSON) -> Any:
        info: JSON = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook_url:
            info["max_connections"] = 40
            if self.webhook_allowed_updates is not None:
                info["allowed_updates"] = list(self.webhook_allowed_updates)
        return info

    async def _set_my_commands(self, params: JSON) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise _bad("too many commands specified")
        clean: list[JSON] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand JSON object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not _COMMAND_RE.fullmatch(name):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": name, "description": description})
        key = (_scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self._commands[key] = clean
        return True

    async def _get_my_commands(self, params: JSON) -> Any:
        key = (_scope_key(params.get("scope")), str(params.get("language_code") or ""))
        return list(self._commands.get(key, []))

    async def _delete_my_commands(self, params: JSON) -> Any:
        key = (_scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self._commands.pop(key, None)
        return True

    async def _send_message(self, params: JSON) -> Any:
        chat_id = self._chat_id(params)
        source = _text_param(params, "text")
        if not source:
            raise _bad("message text is empty")
        text, entities = _render(source, params.get("parse_mode"), params.get("entities"))
        _check_text_length(text)
        markup = _check_markup(params.get("reply_markup"))
        reply_to = self._reply_target(params, chat_id)
        stored = self._store(
            chat_id,
            sender=self.bot_user,
            from_bot=True,
            text=text,
            entities=entities,
            source_text=source,
            reply_markup=markup,
            reply_to=reply_to,
        )
        return self._message_json(stored)

    async def _edit_message_text(self, params: JSON) -> Any:
        if params.get("inline_message_id") is not None and params.get("chat_id") is None:
            raise _bad("MESSAGE_ID_INVALID")
        chat_id = self._chat_id(params)
        stored = self._bot_message(params, chat_id)
        if stored.text is None:
            raise _bad("there is no text in the message to edit")
        source = _text_param(params, "text")
        if not source:
            raise _bad("message text is empty")
        text, entities = _render(source, params.get("parse_mode"), params.get("entities"))
        _check_text_length(text)
        markup = _check_markup(params.get("reply_markup"), inline_only=True)
        if (text, entities, markup) == (stored.text, stored.entities, stored.reply_markup):
            raise _ApiError(HTTPStatus.BAD_REQUEST, NOT_MODIFIED)
        stored.text, stored.entities, stored.source_text = text, entities, source
        stored.reply_markup = markup
        stored.edit_date = int(time.time())
        return self._message_json(stored)

    async def _edit_message_reply_markup(self, params: JSON) -> Any:
        if params.get("inline_message_id") is not None and params.get("chat_id") is None:
            raise _bad("MESSAGE_ID_INVALID")
        chat_id = self._chat_id(params)
        stored = self._bot_message(params, chat_id)
        markup = _check_markup(params.get("reply_markup"), inline_only=True)
        if markup == stored.reply_markup:
            raise _ApiError(HTTPStatus.BAD_REQUEST, NOT_MODIFIED)
        stored.reply_markup = markup
        stored.edit_date = int(time.time())
        return self._message_json(stored)

    async def _delete_message(self, params: JSON) -> Any:
        chat_id = self._chat_id(params)
        message_id = _as_int(params, "message_id", "message identifier is not specified")
        if self._messages.get(chat_id, {}).pop(message_id, None) is None:
            raise _bad("message to delete not found")
        return True

    async def _answer_callback_query(self, params: JSON) -> Any:
        query_id = _text_param(params, "callback_query_id")
        text = _text_param(params, "text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad("MESSAGE_TOO_LONG")
        if not query_id or query_id not in self._open_queries:
            raise _bad(QUERY_INVALID)
        self._open_queries.discard(query_id)
        self.callback_answers.append(
            CallbackAnswer(
                callback_query_id=query_id,
                text=text,
                show_alert=bool(params.get("show_alert")),
                url=_text_param(params, "url"),
                cache_time=_opt_int(params, "cache_time"),
            )
        )
        return True

    async def _send_poll(self, params: JSON) -> Any:
        chat_id = self._chat_id(params)
        source = _text_param(params, "question") or ""
        question, _ = _render(source, params.get("question_parse_mode"))
        if not question:
            raise _bad("poll question must be non-empty")
        if len(question) > MAX_POLL_QUESTION_LENGTH:
            raise _bad(f"poll question length must not exceed {MAX_POLL_QUESTION_LENGTH}")
        options = _poll_options(params.get("options"), self.MAX_POLL_OPTIONS)
        poll_type = _text_param(params, "type") or "regular"
        if poll_type not in ("regular", "quiz"):
            raise _bad("wrong poll type specified")
        multiple = bool(params.get("allows_multiple_answers"))
        correct = _correct_option_ids(params, poll_type, len(options), multiple)
        explanation: str | None = None
        explanation_entities: list[JSON] = []
        raw_explanation = _text_param(params, "explanation")
        if raw_explanation:
            explanation, explanation_entities = _render(
                raw_explanation,
                params.get("explanation_parse_mode"),
                params.get("explanation_entities"),
            )
            if len(explanation) > MAX_POLL_EXPLANATION_LENGTH:
                raise _bad(f"explanation length must not exceed {MAX_POLL_EXPLANATION_LENGTH}")
            if explanation.count("\n") > MAX_POLL_EXPLANATION_LINE_FEEDS:
                raise _bad(f"explanation can't contain more than {MAX_POLL_EXPLANATION_LINE_FEEDS} line feeds")
        open_period = _opt_int(params, "open_period")
        close_date = _opt_int(params, "close_date")
        if open_period is not None and close_date is not None:
            raise _bad("open_period and close_date can't be used together")
        if open_period is not None:
            if not self.MIN_OPEN_PERIOD <= open_period <= self.MAX_OPEN_PERIOD:
                raise _bad("wrong open period specified")
            close_date = int(time.time()) + open_period
        markup = _check_markup(params.get("reply_markup"))
        anonymous = params.get("is_anonymous")
        stored = self._store(chat_id, sender=self.bot_user, from_bot=True, reply_markup=markup)
        poll = StoredPoll(
            id=str(5_000_000_000_000_000_000 + next(self._ids)),
            chat_id=chat_id,
            message_id=stored.message_id,
            question=question,
            options=options,
            type=poll_type,
            is_anonymous=True if anonymous is None else bool(anonymous),
            allows_multiple_answers=multiple,
            allows_revoting=bool(params.get("allows_revoting", poll_type == "regular")),
            correct_option_ids=correct,
            explanation=explanation,
            explanation_entities=explanation_entities,
            open_period=open_period,
            close_date=close_date,
            is_closed=bool(params.get("is_closed")),
        )
        self.polls[poll.id] = poll
        stored.poll_id = poll.id
        return self._message_json(stored)

    async def _stop_poll(self, params: JSON) -> Any:
        chat_id = self._chat_id(params)
        message_id = _as_int(params, "message_id", "message identifier is not specified")
        stored = self.message(chat_id, message_id)
        if stored is None or stored.poll_id is None:
            raise _bad("message with poll to stop not found")
        poll = self.polls[stored.poll_id]
        if poll.is_closed:
            raise _bad("poll has already been closed")
        if "reply_markup" in params:
            stored.reply_markup = _check_markup(params.get("reply_markup"), inline_only=True)
        poll.is_closed = True
        return poll.to_json()

    async def _get_chat_member(self, params: JSON) -> Any:
        chat_id = self._chat_id(params)
        user_id = _as_int(params, "user_id", "user_id is empty")
        status = self._member_status.get((chat_id, user_id), "member")
        if user_id == self.bot_id:
            user = self.bot_user
        else:
            fallback = {"id": user_id, "is_bot": False, "first_name": "User"}
            user = dict(self._users.get(user_id, fallback))
        return _member_json(status, user)

    async def _get_chat(self, params: JSON) -> Any:
        chat = self._chat_json(self._chat_id(params))
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _send_document(self, params: JSON) -> Any:
        chat_id = self._chat_id(params)
        document = params.get("document")
        serial = next(self._ids)
        info: JSON = {"file_id": f"BQACAgIAAxkBAAI{serial:08d}", "file_unique_id": f"AgAD{serial}"}
        if isinstance(document, UploadedFile):
            if not document.content:
                raise _bad("file must be non-empty")
            info.update(
                file_name=document.filename,
                mime_type=document.content_type,
                file_size=len(document.content),
            )
            self._files[info["file_id"]] = _StoredFile(
                info["file_id"],
                info["file_unique_id"],
                document.filename,
                document.content_type,
                document.content,
                f"documents/file_{serial}{_extension(document.filename)}",
            )
        elif not isinstance(document, str) or not document:
            raise _bad("there is no document in the request")
        caption: str | None = None
        caption_entities: list[JSON] = []
        raw_caption = _text_param(params, "caption")
        if raw_caption:
            caption, caption_entities = _render(raw_caption, params.get("parse_mode"), params.get("caption_entities"))
            if len(caption) > MAX_CAPTION_LENGTH:
                raise _bad("message caption is too long")
        markup = _check_markup(params.get("reply_markup"))
        reply_to = self._reply_target(params, chat_id)
        stored = self._store(
            chat_id,
            sender=self.bot_user,
            from_bot=True,
            document=info,
            caption=caption or None,
            caption_entities=caption_entities,
            reply_markup=markup,
            reply_to=reply_to,
        )
        return self._message_json(stored)

    async def _send_photo(self, params: JSON) -> Any:
        """A photo upload: a real PNG or JPEG within Telegram's limits; kept as the PhotoSizes Telegram
        makes of it (the longest side scaled into 90, 320, 800, 1280 and 2560 px boxes)."""
        chat_id = self._chat_id(params)
        photo = params.get("photo")
        if isinstance(photo, UploadedFile):
            if not photo.content:
                raise _bad("file must be non-empty")
            if len(photo.content) > MAX_PHOTO_BYTES:
                raise _ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request Entity Too Large")
            size = image_size(photo.content)
            if size is None:
                raise _bad("IMAGE_PROCESS_FAILED")
            width, height = size
            if width + height > MAX_PHOTO_SIDES or max(width, height) > MAX_PHOTO_RATIO * min(width, height):
                raise _bad("PHOTO_INVALID_DIMENSIONS")
            sizes = _photo_sizes(next(self._ids), width, height, len(photo.content))
        elif isinstance(photo, str) and photo:
            known = {
                size["file_id"]: stored.photo
                for chat in self._messages.values()
                for stored in chat.values()
                if stored.photo
                for size in stored.photo
            }
            if photo not in known:
                raise _bad("wrong file identifier/HTTP URL specified")
            sizes = [dict(size) for size in known[photo] or []]
        else:
            raise _bad("there is no photo in the request")
        caption: str | None = None
        caption_entities: list[JSON] = []
        raw_caption = _text_param(params, "caption")
        if raw_caption:
            caption, caption_entities = _render(raw_caption, params.get("parse_mode"), params.get("caption_entities"))
            if len(caption) > MAX_CAPTION_LENGTH:
                raise _bad("message caption is too long")
        markup = _check_markup(params.get("reply_markup"))
        reply_to = self._reply_target(params, chat_id)
        stored = self._store(
            chat_id,
            sender=self.bot_user,
            from_bot=True,
            photo=sizes,
            caption=caption or None,
            caption_entities=caption_entities,
            reply_markup=markup,
            reply_to=reply_to,
        )
        return self._message_json(stored)

    async def _get_file(self, params: JSON) -> Any:
        file_id = _text_param(params, "file_id")
        if not file_id:
            raise _bad("file_id not specified")
        stored = self._files.get(file_id)
        if stored is None:
            raise _bad("invalid file_id")
        if len(stored.content) > MAX_DOWNLOAD_BYTES:
            raise _bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    async def _send_chat_action(self, params: JSON) -> Any:
        self._chat_id(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True


# ------------------------------------------------------------------------ helpers


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or baseline/progressive JPEG image; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(b"\xff\xd8"):
        index = 2
        while index + 9 < len(data):
            if data[index] != 0xFF:
                return None
            marker = data[index + 1]
            length = int.from_bytes(data[index + 2 : index + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2):
                return int.from_bytes(data[index + 7 : index + 9], "big"), int.from_bytes(
                    data[index + 5 : index + 7], "big"
                )
            index += 2 + length
    return None


def _photo_sizes(serial: int, width: int, height: int, file_size: int) -> list[JSON]:
    sizes: list[JSON] = []
    longest = max(width, height)
    for number, box in enumerate(PHOTO_BOXES):
        scale = min(1.0, box / longest)
        sizes.append(
            {
                "file_id": f"AgACAgIAAxkBAAI{serial:08d}{number}",
                "file_unique_id": f"AQAD{serial}{number}",
                "width": max(1, round(width * scale)),
                "height": max(1, round(height * scale)),
                "file_size": round(file_size * scale * scale),
            }
        )
        if scale == 1.0:
            break
    return sizes


def _command_entities(text: str) -> list[JSON]:
    """A text or caption starting with "/" begins with a bot_command entity (the @botname suffix included)."""
    if not text.startswith("/"):
        return []
    command = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": utf16_length(command)}]


def _extension(file_name: str | None) -> str:
    """The extension Telegram keeps in a file_path ("notes.csv" -> ".csv")."""
    suffix = (file_name or "").rpartition(".")[2] if "." in (file_name or "") else ""
    return f".{suffix.lower()}" if suffix.isalnum() and len(suffix) <= 8 else ""


def _document_json(stored: _StoredFile) -> JSON:
    document: JSON = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.content),
    }
    if stored.file_name is not None:
        document["file_name"] = stored.file_name
    if stored.mime_type is not None:
        document["mime_type"] = stored.mime_type
    return document


def _guess_chat_type(chat_id: int) -> str:
    if chat_id > 0:
        return "private"
    return "supergroup" if chat_id <= -1_000_000_000_000 else "group"


def _scope_key(scope: Any) -> str:
    if not isinstance(scope, dict) or scope.get("type") in (None, "default"):
        return "default"
    return json.dumps(scope, sort_keys=True)


def _blocked_description(chat_type: str) -> str:
    if chat_type == "private":
        return "Forbidden: bot was blocked by the user"
    return f"Forbidden: bot was kicked from the {chat_type} chat"


def _injected_error(fault: _Fault) -> _ApiError:
    if fault.status == HTTPStatus.TOO_MANY_REQUESTS:
        retry_after = fault.retry_after if fault.retry_after is not None else 1
        error = _too_many(retry_after)
        if fault.description:
            error.description = fault.description
        return error
    defaults = {
        400: "Bad Request: injected failure",
        401: "Unauthorized",
        403: "Forbidden: bot was blocked by the user",
        404: "Not Found",
        409: CONFLICT,
        500: "Internal Server Error",
        502: "Bad Gateway",
    }
    if fault.description:
        description = fault.description
    elif fault.status in defaults:
        description = defaults[fault.status]
    else:
        try:
            description = HTTPStatus(fault.status).phrase
        except ValueError:
            description = f"Error {fault.status}"
    return _ApiError(fault.status, description)


def _check_text_length(text: str) -> None:
    if not text:
        raise _bad("message text is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise _bad("message is too long")


def _poll_options(raw: Any, max_options: int) -> list[str]:
    """Options as strings; they arrive as strings or InputPollOption objects."""
    if not isinstance(raw, list):
        raise _bad("can't parse options JSON object")
    options: list[str] = []
    for item in raw:
        if isinstance(item, dict):
            text = item.get("text")
            mode = item.get("text_parse_mode")
        else:
            text, mode = item, None
        if not isinstance(text, str):
            raise _bad("can't parse InputPollOption JSON object")
        rendered, _ = _render(text, mode)
        if not rendered:
            raise _bad("poll options must be non-empty")
        if len(rendered) > MAX_POLL_OPTION_LENGTH:
            raise _bad(f"poll options length must not exceed {MAX_POLL_OPTION_LENGTH}")
        options.append(rendered)
    if len(options) < 2:
        raise _bad("poll must have at least 2 option")
    if len(options) > max_options:
        raise _bad(f"poll can't have more than {max_options} options")
    return options


def _correct_option_ids(params: Mapping[str, Any], poll_type: str, option_count: int, multiple: bool) -> list[int]:
    """correct_option_ids (Bot API 9.6+) or the older single correct_option_id."""
    raw = params.get("correct_option_ids")
    single = params.get("correct_option_id")
    if raw is None and single is not None:
        raw = [single]
    if poll_type != "quiz":
        if raw:
            raise _bad("correct option ids can be specified only for quizzes")
        return []
    if not isinstance(raw, list) or not raw:
        raise _bad("correct option id must be specified for quizzes")
    ids: list[int] = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad("wrong correct option id specified")
        if not 0 <= value < option_count or value in ids:
            raise _bad("wrong correct option id specified")
        ids.append(value)
    if len(ids) > 1 and not multiple:
        raise _bad("a quiz with one answer must have exactly one correct option")
    return ids


_RESTRICTED_FLAGS: tuple[str, ...] = (
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_send_messages",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_manage_topics",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_edit_tag",
    "can_react_to_messages",
)


def _member_json(status: str, user: JSON) -> JSON:
    member: JSON = {"status": status, "user": user}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member.update(
            can_be_edited=False,
            is_anonymous=False,
            can_manage_chat=True,
            can_delete_messages=True,
            can_manage_video_chats=True,
            can_restrict_members=True,
            can_promote_members=False,
            can_change_info=True,
            can_invite_users=True,
            can_post_stories=False,
            can_edit_stories=False,
            can_delete_stories=False,
            can_pin_messages=True,
        )
    elif status == "restricted":
        member.update(is_member=True, until_date=0)
        member.update(dict.fromkeys(_RESTRICTED_FLAGS, False))
    elif status == "kicked":
        member["until_date"] = 0
    return member
