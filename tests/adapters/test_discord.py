"""The Discord adapter end to end: a real discord.py client against the fake REST API + gateway."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
import discord.gateway
import discord.http
import pytest
import yarl

from bot.adapters.discord import (
    ANSWER_MODAL_ID,
    DESCRIPTION_LIMIT,
    DMS_CLOSED,
    EMBED_TOTAL_LIMIT,
    SORRY,
    TYPE_ANSWER_ID,
    TYPE_ANSWER_LABEL,
    DiscordBot,
    api_base,
    build_view,
    render,
)
from bot.core import study as study_module
from bot.core.commands import CommandSpec, OptionSpec
from bot.core.model import Caller, Chat, Identity, Upload
from bot.core.ports import Delivery
from bot.core.views import Bullets, Button, Paragraph, QuizPoll, Reply, Title, how_to_answer
from bot.storage.sqlite import SqliteStore
from tests.adapters.conftest import DISCORD_GUILD, DISCORD_TOKEN, make_discord
from tests.adapters.fake_discord import EPHEMERAL, LOADING, FakeDiscord, InteractionCallback, point_discord_at
from tests.adapters.stack import every_card_view

JSON = dict[str, Any]
ANN = 710000000000000001
BOB = 710000000000000002


# --- helpers ------------------------------------------------------------------------------------------


async def slash(
    fake: FakeDiscord,
    name: str,
    options: dict[str, Any] | None = None,
    *,
    user: int = ANN,
    guild: bool = True,
    **kw: Any,
) -> tuple[JSON, InteractionCallback]:
    payload = fake.slash_interaction(name, options, user_id=user, guild_id=DISCORD_GUILD if guild else None, **kw)
    await fake.send_interaction(payload)
    return payload, await fake.wait_for_callback(payload)


async def press(
    fake: FakeDiscord, message: JSON, label: str, *, user: int = ANN, **kw: Any
) -> tuple[JSON, InteractionCallback]:
    payload = fake.component_interaction(buttons(message)[label], message=int(message["id"]), user_id=user, **kw)
    await fake.send_interaction(payload)
    return payload, await fake.wait_for_callback(payload)


def original(fake: FakeDiscord, payload: JSON) -> JSON:
    message = fake.original_message(payload)
    assert message is not None, "the interaction has no response message"
    return message


def buttons(message: JSON) -> dict[str, str]:
    return {
        c["label"].split(" · ")[0]: c["custom_id"]
        for row in message.get("components", [])
        for c in row.get("components", [])
    }


def text_of(message: JSON) -> str:
    embeds = message.get("embeds") or []
    parts = [message.get("content") or ""]
    for embed in embeds:
        parts += [embed.get("title") or "", embed.get("description") or "", (embed.get("footer") or {}).get("text", "")]
    return "\n".join(p for p in parts if p)


def followups(fake: FakeDiscord, payload: JSON) -> list[JSON]:
    token = payload["token"]
    return [
        r.json
        for r in fake.requests
        if r.method == "POST" and r.path.endswith(f"/webhooks/{fake.application_id}/{token}")
    ]


async def review_count(store: SqliteStore) -> int:
    row = await store.db.fetchrow("SELECT COUNT(*) FROM reviews")
    return int(row[0]) if row else 0


def all_ok(fake: FakeDiscord) -> bool:
    return all(r.status < 400 for r in fake.requests)


# --- slash commands from the specs ---------------------------------------------------------------------


async def test_commands_are_synced_globally_from_the_specs(discord_fake: FakeDiscord, discord_bot: DiscordBot) -> None:
    synced = {c["name"]: c for c in discord_fake.synced_commands[None]}
    assert list(synced) == [spec.name for spec in discord_bot.commands.specs]
    assert all(0 < len(c["description"]) <= 100 for c in synced.values())
    (topic,) = synced["question"]["options"]
    assert topic["name"] == "topic" and topic["type"] == 3 and topic["autocomplete"] and not topic["required"]
    (n,) = synced["newcards"]["options"]
    assert (n["type"], n["min_value"], n["max_value"]) == (4, 0, 50)
    assert DISCORD_GUILD not in discord_fake.synced_commands


async def test_commands_sync_to_the_configured_guild(discord_fake: FakeDiscord, sqlite: SqliteStore) -> None:
    bot = make_discord(discord_fake, sqlite, guild_id=DISCORD_GUILD)
    await bot.start()
    try:
        assert {c["name"] for c in discord_fake.synced_commands[DISCORD_GUILD]} >= {"question", "stats", "help"}
        assert None not in discord_fake.synced_commands
        _, callback = await slash(discord_fake, "help")
        assert callback.type == 4
    finally:
        await bot.stop()


async def test_a_command_added_later_appears_with_its_options_and_gets_them_joined(
    discord_fake: FakeDiscord, sqlite: SqliteStore
) -> None:
    bot = make_discord(discord_fake, sqlite)
    seen: list[tuple[Caller, str]] = []

    async def daily(caller: Caller, args: str) -> Reply:
        seen.append((caller, args))
        return Reply(blocks=(Paragraph.of(f"daily at {args}"),))

    bot.commands.register(
        CommandSpec(
            "daily",
            "/daily HH:MM [zone]",
            "One question a day at your local time",
            admin_aware=True,
            audience="chat",
            options=(
                OptionSpec("time", "HH:MM or off", required=True),
                OptionSpec("zone", "Your time zone", autocomplete="zone"),
                OptionSpec("mode", "How", choices=("quiz", "card")),
            ),
        ),
        daily,
    )
    bot.commands.register(CommandSpec("stopquiz", "/stopquiz", "Stop the quiz", group_only=True), daily)
    await bot.start()
    try:
        synced = {c["name"]: c for c in discord_fake.synced_commands[None]}
        time_, zone, mode = synced["daily"]["options"]
        assert (time_["name"], time_["required"]) == ("time", True)
        assert zone["autocomplete"] and [c["value"] for c in mode["choices"]] == ["quiz", "card"]
        assert synced["stopquiz"]["contexts"] == [0]  # servers only

        payload = discord_fake.autocomplete_interaction("daily", "zone", "berl", guild_id=DISCORD_GUILD)
        await discord_fake.send_interaction(payload)
        choices = (await discord_fake.wait_for_callback(payload)).data or {}
        assert choices["choices"][0]["value"] == "Europe/Berlin"
        payload = discord_fake.autocomplete_interaction("daily", "zone", "new york", guild_id=DISCORD_GUILD)
        await discord_fake.send_interaction(payload)
        choices = (await discord_fake.wait_for_callback(payload)).data or {}
        assert [c["value"] for c in choices["choices"]] == ["America/New_York"]

        owner_payload, callback = await slash(
            discord_fake, "daily", {"time": "07:30", "zone": "Europe/Berlin"}, permissions=1 << 5
        )
        assert callback.type == 4 and not (callback.data or {}).get("flags", 0) & EPHEMERAL  # group admin: public
        caller, args = seen[-1]
        assert args == "07:30 Europe/Berlin"
        assert caller.chat.key == f"discord:channel:{owner_payload['channel_id']}" and caller.chat.is_group
        assert caller.is_chat_admin and caller.identity.external_id == str(ANN)
        await slash(discord_fake, "daily", {"time": "off"}, user=BOB, guild=False)
        caller, args = seen[-1]
        assert args == "off" and caller.chat.key == f"discord:user:{BOB}" and not caller.is_chat_admin
    finally:
        await bot.stop()


async def test_topic_autocomplete_offers_the_banks_topics(discord_fake: FakeDiscord, discord_bot: DiscordBot) -> None:
    payload = discord_fake.autocomplete_interaction("question", "topic", "opt", guild_id=DISCORD_GUILD)
    await discord_fake.send_interaction(payload)
    callback = await discord_fake.wait_for_callback(payload)
    assert callback.type == 8
    assert (callback.data or {})["choices"] == [{"name": "Optimisation (optim)", "value": "optim"}]

    payload = discord_fake.autocomplete_interaction("question", "topic", "", guild_id=DISCORD_GUILD)
    await discord_fake.send_interaction(payload)
    everything = (await discord_fake.wait_for_callback(payload)).data or {}
    assert [c["value"] for c in everything["choices"]] == ["basics", "optim", "stories"]

    payload, callback = await slash(discord_fake, "question", {"topic": "optim"})
    assert "Optimisation" in text_of(original(discord_fake, payload))


async def test_topic_autocomplete_offers_the_topics_of_the_decks_this_chat_uses(
    discord_fake: FakeDiscord, discord_bot: DiscordBot
) -> None:
    csv = b"question,answer,topic\nWhat is a KV cache?,Stored keys and values.,Inference tricks\n"

    async def read() -> bytes:
        return csv

    bob = Caller(Identity("discord", str(BOB)), "Bob", Chat("discord", f"user:{BOB}"))
    await discord_bot.commands.run(bob, "deck", "import notes", Upload("notes.csv", len(csv), read))
    await discord_bot.commands.run(bob, "deck", "use notes")

    payload = discord_fake.autocomplete_interaction("question", "topic", "", user_id=BOB)  # Bob's DM
    await discord_fake.send_interaction(payload)
    choices = ((await discord_fake.wait_for_callback(payload)).data or {})["choices"]
    assert choices == [{"name": "Inference tricks (inference-tricks)", "value": "inference-tricks"}]

    payload = discord_fake.autocomplete_interaction("question", "topic", "", guild_id=DISCORD_GUILD)  # the bank
    await discord_fake.send_interaction(payload)
    in_server = ((await discord_fake.wait_for_callback(payload)).data or {})["choices"]
    assert [c["value"] for c in in_server] == ["basics", "optim", "stories"]


def test_the_api_url_may_be_given_with_or_without_the_api_path() -> None:
    assert api_base("https://discord.example") == "https://discord.example/api/v10"
    assert api_base("https://discord.example/api/") == "https://discord.example/api/v10"
    assert api_base("http://127.0.0.1:8080/api/v9") == "http://127.0.0.1:8080/api/v9"


async def test_the_configured_api_and_gateway_urls_are_used(
    sqlite: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Discord's real addresses are unreachable here: only the configured ones can make this work.
    monkeypatch.setattr(discord.http.Route, "BASE", "https://discord.invalid/api/v10")
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL("wss://gateway.discord.invalid/"))
    async with FakeDiscord(token=DISCORD_TOKEN, guilds=[DISCORD_GUILD]) as fake:
        bot = make_discord(fake, sqlite)
        await bot.start()
        try:
            assert fake.identify_payloads and fake.synced_commands[None]
            assert fake.identify_payloads[0]["intents"] == discord.Intents(guilds=True).value  # nothing privileged
            _, callback = await slash(fake, "topics")
            assert callback.type == 4
        finally:
            await bot.stop()
        assert fake.connected_clients == 0


async def test_a_wrong_token_fails_start_and_leaves_nothing_open(sqlite: SqliteStore) -> None:
    async with FakeDiscord(token="M" * 26 + ".other." + "t" * 30) as fake:
        with point_discord_at(fake):
            bot = make_discord(fake, sqlite)
            with pytest.raises(discord.LoginFailure):
                await bot.start()
            assert bot.client.is_closed() and fake.connected_clients == 0
            await bot.stop()  # stopping a bot that never started is harmless


# --- practising ----------------------------------------------------------------------------------------


async def test_question_reveal_and_rate_edit_one_ephemeral_message_in_place(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, sqlite: SqliteStore
) -> None:
    payload, callback = await slash(discord_fake, "question")
    assert callback.type == 4
    question = original(discord_fake, payload)
    assert question["flags"] & EPHEMERAL  # personal practice in a server
    assert list(buttons(question)) == ["Show answer", TYPE_ANSWER_LABEL, "Multiple choice", "Skip"]
    assert "press ✍️ Type answer" in text_of(question) and "just type it" not in text_of(question)

    _, reveal = await press(discord_fake, question, "Show answer")
    assert reveal.type == 7
    revealed = discord_fake.messages[int(question["id"])]
    assert "Model answer" in text_of(revealed)
    assert list(buttons(revealed)) == ["Again", "Hard", "Good", "Easy"]

    _, rate = await press(discord_fake, revealed, "Good")
    assert rate.type == 7
    rated = discord_fake.messages[int(question["id"])]
    assert "Rated Good" in text_of(rated)
    assert list(buttons(rated)) == ["Next question ▶"]
    assert rated["flags"] & EPHEMERAL
    await discord_bot.drain()
    channel = int(payload["channel_id"])
    assert len(discord_fake.channel_messages(channel)) == 1  # edited, never re-sent
    assert await review_count(sqlite) == 1
    assert all_ok(discord_fake)


async def test_multiple_choice_right_and_wrong_in_dms(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, sqlite: SqliteStore
) -> None:
    outcomes = []
    for pick_correct in (True, False):
        payload, _ = await slash(discord_fake, "question", guild=False)
        question = original(discord_fake, payload)
        assert not question["flags"] & EPHEMERAL  # a DM is private already
        await press(discord_fake, question, "Multiple choice")
        shown = discord_fake.messages[int(question["id"])]
        lines = [line for line in text_of(shown).splitlines() if line.startswith("• ")]
        letters = [line[4] for line in lines]  # "• **A)** Right"
        right = next(line[4] for line in lines if line.endswith(" Right"))
        choice = right if pick_correct else next(letter for letter in letters if letter != right)
        _, picked = await press(discord_fake, shown, choice)
        assert picked.type == 7
        outcomes.append(text_of(discord_fake.messages[int(question["id"])]))
    assert "Correct!" in outcomes[0] and "Because it is right." in outcomes[0]
    assert "Not quite." in outcomes[1]
    assert await review_count(sqlite) == 2


async def test_the_type_answer_modal_is_graded_against_key_points(
    discord_fake: FakeDiscord, discord_bot: DiscordBot
) -> None:
    payload, _ = await slash(discord_fake, "question")
    question = original(discord_fake, payload)
    _, opened = await press(discord_fake, question, TYPE_ANSWER_LABEL)
    assert opened.type == 9
    modal = opened.data or {}
    assert modal["custom_id"] == ANSWER_MODAL_ID and modal["components"]

    submit = discord_fake.modal_submit_interaction(
        ANSWER_MODAL_ID,
        {"answer": "It is the chain rule applied backwards"},
        message=int(question["id"]),
        user_id=ANN,
        guild_id=DISCORD_GUILD,
    )
    await discord_fake.send_interaction(submit)
    graded = await discord_fake.wait_for_callback(submit)
    assert graded.type == 4
    reply = original(discord_fake, submit)
    assert reply["flags"] & EPHEMERAL
    assert "You covered 1 of 3 key points" in text_of(reply)
    assert "✓** chain rule" in text_of(reply)
    assert list(buttons(reply)) == ["Again", "Hard", "Good", "Easy"]

    again = discord_fake.modal_submit_interaction(
        ANSWER_MODAL_ID, {"answer": "more words"}, user_id=ANN, guild_id=DISCORD_GUILD
    )
    await discord_fake.send_interaction(again)
    nothing_open = await discord_fake.wait_for_callback(again)
    assert nothing_open.type == 4 and "No question is open" in (nothing_open.data or {}).get("content", "")


async def test_the_type_answer_button_follows_the_cores_answer_box_not_a_button_label(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(study_module, "SHOW_ANSWER_LABEL", "Reveal")  # the core renames its button
    payload, _ = await slash(discord_fake, "question")
    question = original(discord_fake, payload)
    assert list(buttons(question)) == ["Reveal", TYPE_ANSWER_LABEL, "Multiple choice", "Skip"]
    assert "press ✍️ Type answer" in text_of(question)
    _, opened = await press(discord_fake, question, TYPE_ANSWER_LABEL)
    assert opened.type == 9 and (opened.data or {})["custom_id"] == ANSWER_MODAL_ID


def test_a_reply_without_an_answer_box_is_rendered_as_the_core_wrote_it() -> None:
    reply = Reply(
        blocks=(how_to_answer("Answer in your own words ({how}).", "just type it"),),
        buttons=((Button("Show answer", "sa:1"), Button("Skip", "sk:1")),),
    )
    (part,) = render(reply)
    assert [b.label for row in part.buttons for b in row] == ["Show answer", "Skip"]
    assert "just type it" in (part.description or "") and "Type answer" not in (part.description or "")


def test_a_reply_with_an_answer_box_gets_its_button_where_the_core_placed_it_and_says_how_to_open_it() -> None:
    row = (Button("First", "a:1"), Button("Second", "a:2"))
    hint = how_to_answer("Answer ({how}).", "just type it")
    for at, expected in ((0, ["✍️ Type answer", "First", "Second"]), (2, ["First", "Second", "✍️ Type answer"])):
        (part,) = render(Reply(blocks=(hint,), buttons=(row,), answer_box=True, answer_box_at=at))
        assert [b.label for r in part.buttons for b in r] == expected
        assert "press ✍️ Type answer" in (part.description or "")
        assert "just type it" not in (part.description or "")


@pytest.mark.parametrize("text", ["hello", "7", "idk"])
async def test_a_non_answer_in_the_modal_leaves_the_question_open_and_stores_nothing(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, sqlite: SqliteStore, text: str
) -> None:
    payload, _ = await slash(discord_fake, "question")
    question = original(discord_fake, payload)
    submit = discord_fake.modal_submit_interaction(
        ANSWER_MODAL_ID, {"answer": text}, message=int(question["id"]), user_id=ANN, guild_id=DISCORD_GUILD
    )
    await discord_fake.send_interaction(submit)
    await discord_fake.wait_for_callback(submit)
    reply = original(discord_fake, submit)
    assert "I didn't take" in text_of(reply) and "Model answer" not in text_of(reply)
    assert "Show answer" in buttons(reply) and "Skip" in buttons(reply)
    assert await review_count(sqlite) == 0
    await press(discord_fake, question, "Show answer")  # the question is still open
    assert "Model answer" in text_of(discord_fake.messages[int(question["id"])])


async def test_someone_elses_buttons_answer_with_an_ephemeral_notice(
    discord_fake: FakeDiscord, discord_bot: DiscordBot
) -> None:
    payload, _ = await slash(discord_fake, "question")
    question = original(discord_fake, payload)
    before = text_of(question)
    _, refused = await press(discord_fake, question, "Show answer", user=BOB)
    assert refused.type == 4
    data = refused.data or {}
    assert data["flags"] & EPHEMERAL and "belongs to someone else" in data["content"]
    assert text_of(discord_fake.messages[int(question["id"])]) == before
    _, forged = await press(discord_fake, question, "Skip", user=ANN)
    assert forged.type == 7  # the owner still can


async def test_forged_custom_ids_are_refused_and_change_nothing(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, sqlite: SqliteStore
) -> None:
    payload, _ = await slash(discord_fake, "question")
    question = original(discord_fake, payload)
    for data in ("rt:1:4", "sa:99999", "hello", "x" * 100):
        forged = discord_fake.component_interaction(data, message=int(question["id"]), user_id=ANN)
        await discord_fake.send_interaction(forged)
        callback = await discord_fake.wait_for_callback(forged)
        assert callback.type == 4 and (callback.data or {})["flags"] & EPHEMERAL
    assert await review_count(sqlite) == 0


async def test_buttons_survive_a_restart_and_stale_ones_are_refused(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, sqlite: SqliteStore
) -> None:
    payload, _ = await slash(discord_fake, "question", guild=False)
    question = original(discord_fake, payload)
    await discord_bot.stop()

    restarted = make_discord(discord_fake, sqlite)
    await restarted.start()
    try:
        _, reveal = await press(discord_fake, question, "Show answer")
        assert reveal.type == 7
        revealed = discord_fake.messages[int(question["id"])]
        assert "Model answer" in text_of(revealed)

        await slash(discord_fake, "question", guild=False)  # a new question closes the old one
        _, stale = await press(discord_fake, revealed, "Good")
        assert stale.type == 4 and "already closed" in (stale.data or {})["content"]
        assert "Model answer" in text_of(discord_fake.messages[int(question["id"])])
        assert await review_count(sqlite) == 0
    finally:
        await restarted.stop()


async def test_a_slow_core_call_is_deferred_then_answered(discord_fake: FakeDiscord, sqlite: SqliteStore) -> None:
    bot = make_discord(discord_fake, sqlite, defer_after=0.05)
    release = asyncio.Event()
    real_run, real_press = bot.commands.run, bot.commands.press

    async def slow_run(caller: Caller, name: str, args: str = "") -> Reply:
        await release.wait()
        return await real_run(caller, name, args)

    async def slow_press(caller: Caller, data: str) -> Reply:
        await release.wait()
        return await real_press(caller, data)

    bot.commands.run = slow_run  # type: ignore[method-assign]
    bot.commands.press = slow_press  # type: ignore[method-assign]
    await bot.start()
    try:
        payload = await discord_fake.send_interaction(
            discord_fake.slash_interaction("question", user_id=ANN, guild_id=DISCORD_GUILD)
        )
        deferred = await discord_fake.wait_for_callback(payload)
        assert deferred.type == 5 and (deferred.data or {}).get("flags") == EPHEMERAL
        release.set()
        await bot.drain()
        question = original(discord_fake, payload)
        assert question["flags"] & EPHEMERAL and not question["flags"] & LOADING
        assert "Show answer" in buttons(question)

        release.clear()
        pressed = discord_fake.component_interaction(
            buttons(question)["Show answer"], message=int(question["id"]), user_id=ANN
        )
        await discord_fake.send_interaction(pressed)
        assert (await discord_fake.wait_for_callback(pressed)).type == 6
        release.set()
        await bot.drain()
        assert "Model answer" in text_of(discord_fake.messages[int(question["id"])])
        assert all_ok(discord_fake)
    finally:
        await bot.stop()


async def test_a_private_reply_to_a_public_command_stays_private(
    discord_fake: FakeDiscord, sqlite: SqliteStore
) -> None:
    bot = make_discord(discord_fake, sqlite)

    async def board(caller: Caller, args: str) -> Reply:
        if args == "mine":
            return Reply(blocks=(Paragraph.of("only you"),), private=True)
        return Reply(blocks=(Title("This week"), Paragraph.of("1. Ann")))

    bot.commands.register(
        CommandSpec(
            "leaderboard",
            "/leaderboard",
            "Standings",
            group_only=True,
            audience="chat",
            options=(OptionSpec("period", "p"),),
        ),
        board,
    )
    await bot.start()
    try:
        public, _ = await slash(discord_fake, "leaderboard")
        assert not original(discord_fake, public)["flags"] & EPHEMERAL
        private, _ = await slash(discord_fake, "leaderboard", {"period": "mine"})
        assert original(discord_fake, private)["flags"] & EPHEMERAL
    finally:
        await bot.stop()


# --- DMs and pushes --------------------------------------------------------------------------------------


async def test_a_dm_push_is_delivered_and_a_refused_dm_pauses_pushes_and_is_explained_once(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, sqlite: SqliteStore
) -> None:
    push = Reply(blocks=(Title("Your daily question"), Paragraph.of("What is backprop?")))
    sent = await discord_bot.notifier.send(f"user:{ANN}", push)
    assert sent.delivery is Delivery.SENT and sent.message_id is not None
    dm = discord_fake.messages[int(sent.message_id)]
    assert int(dm["channel_id"]) == discord_fake.dm_channel_id(ANN)
    assert dm["embeds"][0]["title"] == "Your daily question"

    discord_fake.block_dms(ANN)
    refused = await discord_bot.notifier.send(f"user:{ANN}", push)
    assert refused.delivery is Delivery.UNREACHABLE and "50007" in refused.detail
    assert not await sqlite.is_reachable(f"discord:user:{ANN}")
    requests = len(discord_fake.requests)
    again = await discord_bot.notifier.send(f"user:{ANN}", push)
    assert again.delivery is Delivery.UNREACHABLE and len(discord_fake.requests) == requests  # nothing sent

    first, _ = await slash(discord_fake, "help")
    await discord_bot.drain()
    told = followups(discord_fake, first)
    assert [f["content"] for f in told] == [DMS_CLOSED] and told[0]["flags"] == EPHEMERAL
    second, _ = await slash(discord_fake, "stats")
    await discord_bot.drain()
    assert followups(discord_fake, second) == []  # told once
    assert not await sqlite.is_reachable(f"discord:user:{ANN}")  # a server command proves nothing

    discord_fake.block_dms(ANN, blocked=False)
    await slash(discord_fake, "help", guild=False)  # talking in DMs does
    await discord_bot.drain()
    assert await sqlite.is_reachable(f"discord:user:{ANN}")
    assert (await discord_bot.notifier.send(f"user:{ANN}", push)).delivery is Delivery.SENT


async def test_pending_notices_from_the_core_follow_the_reply(
    discord_fake: FakeDiscord, discord_bot: DiscordBot
) -> None:
    async def paused(caller: Caller) -> str | None:
        return "Your daily question is paused." if caller.identity.external_id == str(ANN) else None

    discord_bot.commands.add_notice_provider(paused)
    payload, _ = await slash(discord_fake, "topics")
    await discord_bot.drain()
    assert [(f["content"], f["flags"]) for f in followups(discord_fake, payload)] == [
        ("Your daily question is paused.", EPHEMERAL)
    ]
    payload, _ = await slash(discord_fake, "topics", user=BOB)
    await discord_bot.drain()
    assert followups(discord_fake, payload) == []


async def test_channel_sends_retry_5xx_then_fail_and_a_400_is_rejected(
    discord_fake: FakeDiscord, discord_bot: DiscordBot
) -> None:
    channel = discord_fake.guild_channel_ids(DISCORD_GUILD)[0]
    reply = Reply(blocks=(Paragraph.of("round 1"),), buttons=((Button("A", "qo:1:0"), Button("B", "qo:1:1")),))
    route = "POST /channels/{channel_id}/messages"

    discord_fake.fail_next(route, 503)
    assert (await discord_bot.notifier.send(f"channel:{channel}", reply)).delivery is Delivery.SENT

    discord_fake.fail_next(route, 503, times=3)
    failed = await discord_bot.notifier.send(f"channel:{channel}", reply)
    assert failed.delivery is Delivery.FAILED

    discord_fake.fail_next(route, 400, code=50035)
    assert (await discord_bot.notifier.send(f"channel:{channel}", reply)).delivery is Delivery.REJECTED
    statuses = [r.status for r in discord_fake.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert statuses == [503, 200, 503, 503, 503, 400]


async def test_a_poll_and_an_attachment_are_sent_to_a_channel(
    discord_fake: FakeDiscord, discord_bot: DiscordBot
) -> None:
    channel = discord_fake.guild_channel_ids(DISCORD_GUILD)[0]
    poll = QuizPoll("What does backprop compute?", ("Gradients", "Losses", "Weights"), 0, "Chain rule.", 30)
    buttons_given = ((Button("A", "qo:7:0"), Button("B", "qo:7:1"), Button("C", "qo:7:2")),)
    sent = await discord_bot.notifier.send(
        f"channel:{channel}",
        Reply(poll=poll, buttons=buttons_given, attachment=("round.json", b"{}")),
    )
    assert sent.delivery is Delivery.SENT and sent.message_id
    message = discord_fake.messages[int(sent.message_id)]
    text = text_of(message)
    assert "**A)** Gradients" in text and "**C)** Weights" in text and "30 s" in text
    assert "Chain rule." not in text  # the explanation is the answer: not shown with the question
    assert buttons(message) == {"A": "qo:7:0", "B": "qo:7:1", "C": "qo:7:2"}
    assert [a["filename"] for a in message["attachments"]] == ["round.json"]


async def test_a_sent_message_can_be_edited_and_a_deleted_one_is_rejected(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, sqlite: SqliteStore
) -> None:
    channel = f"channel:{discord_fake.guild_channel_ids(DISCORD_GUILD)[0]}"
    sent = await discord_bot.notifier.send(
        channel, Reply(blocks=(Paragraph.of("round 1"),), buttons=((Button("A", "qo:1:0"),),))
    )
    assert sent.message_id is not None
    edited = await discord_bot.notifier.edit(channel, sent.message_id, Reply(blocks=(Paragraph.of("round 1 closed"),)))
    assert edited.delivery is Delivery.SENT
    message = discord_fake.messages[int(sent.message_id)]
    assert text_of(message) == "round 1 closed" and message["components"] == []
    del discord_fake.messages[int(sent.message_id)]
    gone = await discord_bot.notifier.edit(channel, sent.message_id, Reply(blocks=(Paragraph.of("again"),)))
    assert gone.delivery is Delivery.REJECTED and await sqlite.is_reachable(f"discord:{channel}")


# --- platform errors -----------------------------------------------------------------------------------


async def test_a_429_on_a_callback_is_retried_by_discord_py(discord_fake: FakeDiscord, discord_bot: DiscordBot) -> None:
    discord_fake.fail_next("POST /interactions/{id}/{token}/callback", 429, retry_after=0.2)
    _, callback = await slash(discord_fake, "help")
    assert callback.type == 4
    statuses = [r.status for r in discord_fake.requests if r.path.endswith("/callback")]
    assert statuses == [429, 200]


async def test_a_failing_command_apologises_and_logs_without_the_token(
    discord_fake: FakeDiscord,
    discord_bot: DiscordBot,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: object) -> Reply:
        raise RuntimeError(f"database on fire while calling Bot {DISCORD_TOKEN}")

    monkeypatch.setattr(discord_bot.commands, "run", broken)
    with caplog.at_level(logging.ERROR, logger="studybot.discord"):
        payload, callback = await slash(discord_fake, "stats")
        await discord_bot.drain()
    assert callback.type == 4
    assert (callback.data or {})["content"] == SORRY and (callback.data or {})["flags"] == EPHEMERAL
    records = [r for r in caplog.records if r.name == "studybot.discord" and r.levelno == logging.ERROR]
    assert len(records) == 1
    record = records[0]
    assert getattr(record, "update", None) == int(payload["id"]) and getattr(record, "user", None) == ANN
    assert getattr(record, "command", None) == "/stats"
    assert "database on fire" in record.getMessage()
    assert DISCORD_TOKEN not in record.getMessage() and record.exc_info is None


async def test_a_failure_after_the_reply_still_apologises_once(
    discord_fake: FakeDiscord, discord_bot: DiscordBot, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(caller: Caller) -> str | None:
        raise RuntimeError("notice provider broke")

    discord_bot.commands.add_notice_provider(broken)
    with caplog.at_level(logging.ERROR, logger="studybot.discord"):
        payload, callback = await slash(discord_fake, "help")
        await discord_bot.drain()
    assert callback.type == 4 and "Commands" in text_of(callback.data or {})
    assert [(f["content"], f["flags"]) for f in followups(discord_fake, payload)] == [(SORRY, EPHEMERAL)]
    assert any("notice provider broke" in r.getMessage() for r in caplog.records)


async def test_a_hostile_user_name_is_escaped(discord_fake: FakeDiscord, discord_bot: DiscordBot) -> None:
    hostile = "**Bob** @everyone `x`"
    payload, _ = await slash(discord_fake, "question", user=BOB, username=hostile)
    question = text_of(original(discord_fake, payload))
    assert "Question for **\\*\\*Bob\\*\\* @\u200beveryone \\`x\\`**" in question
    payload, callback = await slash(discord_fake, "start", user=BOB, username=hostile)
    welcome = original(discord_fake, payload)
    assert welcome["embeds"][0]["title"].startswith("Hi \\*\\*Bob\\*\\* @\u200beveryone \\`x\\`!")
    assert (callback.data or {})["allowed_mentions"] == {"parse": []}
    assert "@everyone" not in text_of(welcome)


# --- rendering -------------------------------------------------------------------------------------------


def test_long_replies_are_split_within_discords_limits() -> None:
    items = tuple((f"point {n} **not bold** " + "x" * 80,) for n in range(120))
    reply = Reply(
        blocks=(Title("T" * 400), Paragraph.of("intro"), Bullets(items), Paragraph.of("_" * 9000)),
        buttons=((Button("Next", "nx:1"),),),
    )
    parts = render(reply)
    assert len(parts) >= 4
    assert parts[0].title is not None and len(parts[0].title) <= 256
    for part in parts:
        embed = part.embed()
        assert embed is not None and 0 < len(embed.description or "") <= DESCRIPTION_LIMIT
        assert len(embed) <= EMBED_TOTAL_LIMIT
    assert [p.buttons for p in parts[:-1]] == [()] * (len(parts) - 1) and parts[-1].buttons


async def test_buttons_are_capped_at_five_rows_of_five_with_short_labels() -> None:
    rows = tuple(tuple(Button("L" * 120, f"op:{r}:{c}") for c in range(7)) for r in range(6))
    view = build_view(rows)
    assert view is not None and view.is_finished()  # render-only: discord.py keeps nothing per message
    components = view.to_components()
    assert [len(row["components"]) for row in components] == [5, 2, 5, 2, 5]  # over-long rows wrap
    assert all(len(b["label"]) <= 80 for row in components for b in row["components"])


async def test_every_card_of_the_shipped_bank_renders_within_discords_limits(sqlite: SqliteStore) -> None:
    views = await every_card_view(sqlite, "discord", "user:1")
    assert len(views) > 300
    for card_id, view in views:
        for part in render(view):
            embed = part.embed()
            assert embed is not None and len(embed.description or "") <= DESCRIPTION_LIMIT, card_id
            assert len(embed) <= EMBED_TOTAL_LIMIT, card_id
        built = build_view(view.buttons)
        assert built is not None
        for row in built.to_components():
            for b in row["components"]:
                assert 0 < len(b["custom_id"]) <= 100 and len(b["label"]) <= 80
    assert TYPE_ANSWER_ID not in {b.action for row in views[0][1].buttons for b in row}
