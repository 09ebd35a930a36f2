"""The fake Telegram Bot API, driven by the real python-telegram-bot client.

These tests pin down that the fake answers like Telegram where the adapter
depends on it: what it accepts, what it refuses and with which error, and how
long polling, fault injection and rate limits look from PTB's side.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import warnings
from collections.abc import AsyncIterator, Sequence
from typing import Literal

import aiohttp
import pytest
import pytest_asyncio
import telegram
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, CommandHandler, ContextTypes
from telegram.request import HTTPXRequest

from tests.adapters.fake_telegram import FakeTelegram, parse_html

CHAT = 1001
GROUP = -1001234567890

# PTB 22.8 builds RetryAfter's message from its deprecated int ``retry_after``
# and warns about it itself unless PTB_TIMEDELTA is set.
ptb_retry_after_warning = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def keyboard(data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Reveal", callback_data=data)]])


def seconds(value: int | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


def loopback_bot(fake: FakeTelegram, token: str | None = None) -> Bot:
    """A real Bot talking to the fake.

    The fake speaks plain HTTP, so TLS verification is switched off: building
    httpx's default SSL context costs ~0.1 s per client, most of this file's run time.
    """
    return Bot(
        token or fake.token,
        base_url=f"{fake.base_url}/bot",
        request=HTTPXRequest(httpx_kwargs={"verify": False}),
        get_updates_request=HTTPXRequest(httpx_kwargs={"verify": False}),
    )


@pytest_asyncio.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with loopback_bot(fake) as client:
        yield client


# ------------------------------------------------------------------ basics


@pytest.mark.asyncio
async def test_get_me_describes_the_configured_bot(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()

    assert me.username == "studybot_test_bot"
    assert me.is_bot and me.can_join_groups
    assert me.id == fake.bot_id
    assert fake.base_url.startswith("http://127.0.0.1:") and fake.api_url == fake.base_url


@pytest.mark.asyncio
async def test_sent_messages_are_recorded_and_stored_with_increasing_ids(fake: FakeTelegram, bot: Bot) -> None:
    first = await bot.send_message(CHAT, "<b>Question</b> &lt;1&gt;", parse_mode="HTML")
    second = await bot.send_message(CHAT, "plain", reply_markup=keyboard("reveal:1"))

    assert second.message_id == first.message_id + 1
    assert first.text == "Question <1>"
    assert first.entities[0].type == "bold" and first.entities[0].length == len("Question")
    assert abs(first.date.timestamp() - dtm.datetime.now(dtm.UTC).timestamp()) < 60
    assert fake.sent_texts(CHAT) == ["<b>Question</b> &lt;1&gt;", "plain"]
    assert fake.sent_texts(CHAT, rendered=True) == ["Question <1>", "plain"]
    stored = fake.message(CHAT, second.message_id)
    assert stored is not None and stored.reply_markup == keyboard("reveal:1").to_dict()
    assert fake.calls_to("sendMessage")[0].chat_id == CHAT


@pytest.mark.asyncio
async def test_json_form_and_query_bodies_are_all_accepted(fake: FakeTelegram) -> None:
    url = f"{fake.base_url}/bot{fake.token}/sendMessage"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"chat_id": CHAT, "text": "json"}) as response:
            assert (await response.json())["result"]["text"] == "json"
        async with http.post(url, data={"chat_id": str(CHAT), "text": "form"}) as response:
            assert (await response.json())["result"]["chat"]["id"] == CHAT
        async with http.get(url, params={"chat_id": str(CHAT), "text": "query"}) as response:
            assert response.status == 200

    assert fake.sent_texts(CHAT) == ["json", "form", "query"]


@pytest.mark.asyncio
async def test_wrong_token_is_unauthorized_and_unknown_method_is_a_bad_request(fake: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake.base_url}/bot1:wrong/getMe") as response:
            assert response.status == 401
            assert await response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.post(f"{fake.base_url}/bot{fake.token}/sendTelepathy") as response:
            assert response.status == 400
            assert (await response.json())["description"] == "Bad Request: method not found"

    with pytest.raises(telegram.error.InvalidToken):
        async with loopback_bot(fake, token="1:wrong"):
            pass  # initialize() calls getMe


# -------------------------------------------------------------- validation


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "html",
    [
        "<b>never closed",
        "1 < 2",
        "<div>not a Telegram tag</div>",
        "<b><i>crossed</b></i>",
        "AT&T",
        "</b>",
        '<span class="red">x</span>',
    ],
)
async def test_html_telegram_cannot_parse_is_a_bad_request(bot: Bot, html: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(CHAT, html, parse_mode="HTML")


@pytest.mark.asyncio
async def test_every_allowed_tag_is_accepted(bot: Bot) -> None:
    html = (
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike>"
        '<del>d</del><span class="tg-spoiler">p</span><tg-spoiler>t</tg-spoiler>'
        '<a href="https://example.org/?a=1&amp;b=2">a</a><code>c</code><pre>p</pre>'
        '<pre><code class="language-python">x = 1</code></pre><blockquote>q</blockquote>'
        '<blockquote expandable>x</blockquote><tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
        "&quot;&#65;&#x42;"
    )

    message = await bot.send_message(CHAT, html, parse_mode="HTML")

    assert message.text is not None and message.text.endswith('"AB')
    pre = [e for e in message.entities if e.type == "pre" and e.language]
    assert pre and pre[0].language == "python"
    assert {"expandable_blockquote", "spoiler", "custom_emoji", "text_link"} <= {e.type for e in message.entities}


def test_entity_offsets_are_in_utf16_units() -> None:
    text, entities = parse_html("🎓 <b>deep</b>")

    assert text == "🎓 deep"
    assert entities == [{"type": "bold", "offset": 3, "length": 4}]


@pytest.mark.asyncio
async def test_text_length_is_counted_after_entity_parsing(bot: Bot) -> None:
    at_limit = await bot.send_message(CHAT, "<b>" + "&amp;" * 4096 + "</b>", parse_mode="HTML")
    assert at_limit.text == "&" * 4096

    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(CHAT, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(CHAT, "<b>  </b>", parse_mode="HTML")


@pytest.mark.asyncio
async def test_callback_data_is_limited_to_64_bytes(bot: Bot) -> None:
    await bot.send_message(CHAT, "ok", reply_markup=keyboard("x" * 64))

    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(CHAT, "too long", reply_markup=keyboard("x" * 65))
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(CHAT, "33 two-byte chars", reply_markup=keyboard("é" * 33))
    with pytest.raises(BadRequest, match=r"(?i)text buttons are unallowed"):
        await bot.send_message(CHAT, "no action", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x")]]))


@pytest.mark.asyncio
async def test_an_edit_that_changes_nothing_is_not_modified(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "<b>Q1</b>", parse_mode="HTML", reply_markup=keyboard("reveal:1"))

    with pytest.raises(BadRequest, match=r"(?i)message is not modified: specified new message content"):
        await bot.edit_message_text(
            "<b>Q1</b>", CHAT, sent.message_id, parse_mode="HTML", reply_markup=keyboard("reveal:1")
        )

    # Dropping the keyboard is a change, as on Telegram.
    await bot.edit_message_text("<b>Q1</b>", CHAT, sent.message_id, parse_mode="HTML")
    stored = fake.message(CHAT, sent.message_id)
    assert stored is not None and stored.reply_markup is None and stored.edit_date is not None
    await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard("rate:good"))
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard("rate:good"))
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("gone", CHAT, 999)


@pytest.mark.asyncio
async def test_deleted_messages_cannot_be_edited(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "bye")

    assert await bot.delete_message(CHAT, sent.message_id)
    assert fake.message(CHAT, sent.message_id) is None
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("again", CHAT, sent.message_id)


# ------------------------------------------------------------------- polls


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("question", "options", "correct", "explanation", "open_period"),
    [
        ("Q" * 301, ["a", "b"], [0], None, 30),
        ("Q?", ["only one"], [0], None, 30),
        ("Q?", [str(i) for i in range(11)], [0], None, 30),
        ("Q?", ["a", "b" * 101], [0], None, 30),
        ("Q?", ["a", "b"], [2], None, 30),
        ("Q?", ["a", "b"], None, None, 30),
        ("Q?", ["a", "b"], [0], "e" * 201, 30),
        ("Q?", ["a", "b"], [0], "1\n2\n3\n4", 30),
        ("Q?", ["a", "b"], [0], None, 4),
        ("Q?", ["a", "b"], [0], None, 601),
    ],
)
async def test_quiz_polls_over_the_limits_are_bad_requests(
    bot: Bot,
    question: str,
    options: list[str],
    correct: Sequence[Literal[0, 1, 2]] | None,
    explanation: str | None,
    open_period: int,
) -> None:
    with pytest.raises(BadRequest):
        await bot.send_poll(
            GROUP,
            question,
            options,
            type="quiz",
            correct_option_ids=correct,
            explanation=explanation,
            open_period=open_period,
            is_anonymous=False,
        )


@pytest.mark.asyncio
async def test_a_valid_quiz_poll_is_sent_answered_and_stopped(fake: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_poll(
        GROUP,
        "Q" * 300,
        [telegram.InputPollOption("o" * 100), "second", "third"],
        type="quiz",
        correct_option_ids=[1],
        explanation="e" * 200,
        open_period=600,
        is_anonymous=False,
    )

    poll = message.poll
    assert poll is not None and poll.type == "quiz" and not poll.is_anonymous and not poll.is_closed
    assert poll.correct_option_ids == (1,) and [o.voter_count for o in poll.options] == [0, 0, 0]
    assert poll.options[0].text == "o" * 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        period = poll.open_period
    assert period is not None and seconds(period) == 600

    ann = fake.make_user(7, "Ann")
    answer = Update.de_json(fake.poll_answer_update(poll.id, ann, [1]), bot)
    assert answer.poll_answer is not None and answer.poll_answer.option_ids == (1,)

    stopped = await bot.stop_poll(GROUP, message.message_id)
    assert stopped.is_closed and stopped.options[1].voter_count == 1
    with pytest.raises(BadRequest, match=r"(?i)already been closed"):
        await bot.stop_poll(GROUP, message.message_id)

    other = await bot.send_poll(GROUP, "Another?", ["a", "b"], type="quiz", correct_option_ids=[0])
    assert other.poll is not None and other.poll.id != poll.id


# ---------------------------------------------------------------- updates


@pytest.mark.asyncio
async def test_long_polling_returns_pushed_updates_and_respects_offset(fake: FakeTelegram, bot: Bot) -> None:
    ann = fake.make_user(CHAT, "Ann")
    first = fake.push_update(fake.message_update(CHAT, ann, "/start"))
    second = fake.push_update(fake.message_update(CHAT, ann, "hello"))

    updates = await bot.get_updates(timeout=1)
    assert [u.update_id for u in updates] == [first["update_id"], second["update_id"]]
    assert updates[0].message is not None and updates[0].message.text == "/start"
    assert updates[0].message.entities[0].type == "bot_command"

    updates = await bot.get_updates(offset=first["update_id"] + 1, timeout=1)
    assert [u.update_id for u in updates] == [second["update_id"]]

    waiting = asyncio.create_task(bot.get_updates(offset=second["update_id"] + 1, timeout=2))
    await fake.wait_for_long_poll()
    assert fake.pending_updates == []
    third = fake.push_update(fake.message_update(CHAT, ann, "late"))
    assert [u.update_id for u in await waiting] == [third["update_id"]]


@pytest.mark.asyncio
async def test_long_polling_with_nothing_queued_returns_empty_after_the_timeout(bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    assert await bot.get_updates(timeout=1) == ()
    assert 0.8 < loop.time() - started < 3


@pytest.mark.asyncio
async def test_a_callback_update_carries_the_stored_message(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "<b>Q1</b>", parse_mode="HTML", reply_markup=keyboard("reveal:1"))
    await bot.edit_message_text("<b>Q1</b> answer", CHAT, sent.message_id, parse_mode="HTML")
    ann = fake.make_user(CHAT, "Ann", username="ann")

    update = Update.de_json(fake.callback_update(CHAT, ann, sent.message_id, "reveal:1"), bot)

    query = update.callback_query
    assert query is not None and query.data == "reveal:1" and query.from_user.username == "ann"
    assert isinstance(query.message, telegram.Message) and query.message.text == "Q1 answer"
    assert await query.answer("Shown")
    assert fake.callback_answers[0].text == "Shown"
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await query.answer()  # a query is answered once


@pytest.mark.asyncio
async def test_callback_answers_are_limited_to_200_characters(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "Q", reply_markup=keyboard("x"))
    update = fake.callback_update(CHAT, fake.make_user(CHAT), sent.message_id, "x")

    with pytest.raises(BadRequest, match=r"(?i)message_too_long"):
        await bot.answer_callback_query(update["callback_query"]["id"], "a" * 201)


def test_a_command_entity_counts_utf16_units_and_the_bot_mention() -> None:
    fake = FakeTelegram()
    ann = fake.make_user(5)

    update = fake.message_update(GROUP, ann, "/quiz@studybot_test_bot 5", chat_type="supergroup", chat_title="ML")

    assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 23}]
    assert update["message"]["chat"] == {"id": GROUP, "type": "supergroup", "title": "ML"}


# --------------------------------------------------------- faults and limits


@pytest.mark.asyncio
@ptb_retry_after_warning
async def test_an_injected_429_raises_retry_after(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", 429, retry_after=7)

    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(CHAT, "hi")

    assert seconds(caught.value.retry_after) == 7
    assert fake.calls_to("sendMessage")[0].status == 429
    assert (await bot.send_message(CHAT, "again")).text == "again"


@pytest.mark.asyncio
async def test_a_blocked_chat_is_forbidden_until_unblocked(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", 403, chat_id=CHAT)
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot.send_message(CHAT, "hi")

    fake.block_chat(CHAT)
    with pytest.raises(Forbidden):
        await bot.send_poll(CHAT, "Q?", ["a", "b"])
    fake.unblock_chat(CHAT)
    await bot.send_message(CHAT, "welcome back")


@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "text"), [(500, "Internal Server Error"), (502, "Bad Gateway")])
async def test_server_errors_raise_network_error(fake: FakeTelegram, bot: Bot, status: int, text: str) -> None:
    fake.fail_next("sendMessage", status)

    with pytest.raises(NetworkError, match=text) as caught:
        await bot.send_message(CHAT, "hi")

    assert not isinstance(caught.value, BadRequest)


@pytest.mark.asyncio
async def test_a_slow_answer_times_the_client_out(fake: FakeTelegram, bot: Bot) -> None:
    fake.delay_next("sendMessage", 2)

    with pytest.raises(TimedOut):
        await bot.send_message(CHAT, "slow", read_timeout=0.2)

    hung_up = await fake.wait_for("sendMessage", predicate=lambda call: call.status == 499)
    assert hung_up[0].params["text"] == "slow"
    assert fake.messages(CHAT) == []


@pytest.mark.asyncio
async def test_a_lost_answer_can_still_deliver_the_message(fake: FakeTelegram, bot: Bot) -> None:
    fake.delay_next("sendMessage", 2, process_first=True)

    with pytest.raises(TimedOut):
        await bot.send_message(CHAT, "delivered anyway", read_timeout=0.2)

    assert [m.text for m in fake.messages(CHAT)] == ["delivered anyway"]


@pytest.mark.asyncio
@ptb_retry_after_warning
async def test_sending_faster_than_the_per_chat_budget_is_rate_limited() -> None:
    async with FakeTelegram(per_chat_per_s=1) as fake, loopback_bot(fake) as bot:
        await bot.send_message(CHAT, "one")
        await bot.send_message(CHAT + 1, "another chat has its own budget")
        with pytest.raises(RetryAfter):
            await bot.send_message(CHAT, "two")

        assert fake.rate_limited == 1
        assert fake.sent_texts(CHAT) == ["one"]


@pytest.mark.asyncio
@ptb_retry_after_warning
async def test_global_and_group_budgets_are_enforced_on_send_methods_only() -> None:
    async with FakeTelegram(rate_limit_per_s=2, per_group_per_min=1) as fake, loopback_bot(fake) as bot:
        await bot.send_message(GROUP, "round 1")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(GROUP, "round 2")  # 20/min in production; 1/min here
        assert 1 < seconds(caught.value.retry_after) <= 60

        await bot.send_message(CHAT, "private")  # second send within the global second
        assert await bot.send_chat_action(CHAT, "typing")  # not a send: no budget spent
        with pytest.raises(RetryAfter):
            await bot.send_message(CHAT + 1, "third send within the second")

        assert fake.rate_limited == 2
        assert [call.status for call in fake.calls_to("sendMessage")] == [200, 429, 200, 429]


@pytest.mark.asyncio
async def test_wait_for_gives_up_with_a_timeout_error(fake: FakeTelegram) -> None:
    with pytest.raises(TimeoutError, match="sendMessage"):
        await fake.wait_for("sendMessage", timeout=0.05)


# ------------------------------------------------------------ other methods


@pytest.mark.asyncio
async def test_commands_are_validated_and_stored(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([("question", "Ask me an interview question"), ("daily", "Daily question")])

    assert [c.command for c in await bot.get_my_commands()] == ["question", "daily"]
    assert fake.commands[0] == {"command": "question", "description": "Ask me an interview question"}
    with pytest.raises(BadRequest):
        await bot.set_my_commands([("Question", "capital letters")])
    with pytest.raises(BadRequest):
        await bot.set_my_commands([("help", "d" * 257)])


@pytest.mark.asyncio
async def test_chat_member_status_is_configurable(fake: FakeTelegram, bot: Bot) -> None:
    assert (await bot.get_chat_member(GROUP, 7)).status == "member"

    fake.set_member_status(GROUP, 7, "administrator")
    fake.set_member_status(GROUP, 8, "creator")

    assert (await bot.get_chat_member(GROUP, 7)).status == "administrator"
    assert (await bot.get_chat_member(GROUP, 8)).status == "creator"
    assert (await bot.get_chat(GROUP)).type == "supergroup"


@pytest.mark.asyncio
async def test_documents_keep_their_bytes_and_file_name(fake: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_document(CHAT, b"id,score\n1,3\n", filename="stats.csv", caption="Your stats")

    assert message.document is not None and message.document.file_name == "stats.csv"
    upload = fake.calls_to("sendDocument")[0].params["document"]
    assert upload.filename == "stats.csv" and upload.content == b"id,score\n1,3\n"
    assert await bot.send_chat_action(CHAT, "typing")
    assert (await bot.get_webhook_info()).pending_update_count == 0


def png_of(width: int, height: int) -> bytes:
    """A real PNG of that size (Pillow comes with matplotlib)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.asyncio
async def test_a_photo_is_kept_in_the_sizes_telegram_makes_of_it_with_its_caption(fake: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_photo(CHAT, png_of(1080, 2000), caption="Your progress", filename="stats.png")

    assert message.caption == "Your progress"
    largest = message.photo[-1]
    assert (largest.width, largest.height) == (1080, 2000)  # under 2560 px: kept as it is
    assert [max(size.width, size.height) for size in message.photo] == [90, 320, 800, 1280, 2000]
    upload = fake.calls_to("sendPhoto")[0].params["photo"]
    assert upload.filename == "stats.png" and upload.content.startswith(b"\x89PNG")
    again = await bot.send_photo(CHAT, largest.file_id)  # a photo sent before, by its file id
    assert again.photo[-1].width == 1080


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("photo", "caption", "error"),
    [
        (b"not an image at all", None, "IMAGE_PROCESS_FAILED"),
        ("AgACAgIAAxkBAAInever", None, "wrong file identifier"),
        (png_of(6000, 4500), None, "PHOTO_INVALID_DIMENSIONS"),
        (png_of(2100, 100), None, "PHOTO_INVALID_DIMENSIONS"),
        (png_of(100, 100), "x" * 1025, "caption is too long"),
    ],
)
async def test_a_photo_telegram_cannot_take_is_refused(
    fake: FakeTelegram, bot: Bot, photo: bytes | str, caption: str | None, error: str
) -> None:
    with pytest.raises(BadRequest, match=f"(?i){error}"):  # PTB recases the error codes
        await bot.send_photo(CHAT, photo, caption=caption)
    assert fake.messages(CHAT) == []


# ------------------------------------------------------------ a real Application


@pytest.mark.asyncio
async def test_an_application_polling_the_fake_answers_start(fake: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Welcome to <b>StudyBot</b>", parse_mode="HTML")

    application = Application.builder().token(fake.token).base_url(f"{fake.base_url}/bot").build()
    application.add_handler(CommandHandler("start", start))
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0, timeout=1)
    try:
        fake.push_update(fake.message_update(CHAT, fake.make_user(CHAT, "Ann"), "/start"))
        replies = await fake.wait_for("sendMessage", predicate=lambda call: call.ok)
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()

    assert replies[0].chat_id == CHAT
    assert fake.sent_texts(CHAT, rendered=True) == ["Welcome to StudyBot"]
    assert fake.calls_to("deleteWebhook") and fake.pending_updates == []
