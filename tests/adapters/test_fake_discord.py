"""A real discord.py client against the fake Discord REST API + gateway."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.adapters.fake_discord import (
    EPHEMERAL,
    LOADING,
    FakeDiscord,
    RecordedRequest,
    point_discord_at,
)

TOKEN = "x" * 24 + ".fake." + "y" * 27
TOPICS = ["backprop", "batch norm", "bias-variance", "transformers"]
NEXT_ID = "study:next"


@dataclass
class Bot:
    client: discord.Client
    tree: app_commands.CommandTree[discord.Client]
    seen: dict[str, Any] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)


class NextCardView(discord.ui.View):
    def __init__(self, bot: Bot) -> None:
        super().__init__(timeout=None)
        self.bot = bot

    @discord.ui.button(label="Next", style=discord.ButtonStyle.primary, custom_id=NEXT_ID)
    async def next_card(self, interaction: discord.Interaction, button: discord.ui.Button[NextCardView]) -> None:
        self.bot.seen["clicked_by"] = interaction.user.id
        self.bot.seen["clicked_message"] = interaction.message.id if interaction.message else None
        await interaction.response.edit_message(content="next card", view=None)

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]) -> None:
        self.bot.errors.append(error)


class FeedbackModal(discord.ui.Modal, title="How did it go?"):
    answer: discord.ui.TextInput[FeedbackModal] = discord.ui.TextInput(
        label="Your answer", custom_id="answer", max_length=200
    )

    def __init__(self, bot: Bot) -> None:
        super().__init__(custom_id="feedback")
        self.bot = bot

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.bot.seen["answer"] = self.answer.value
        await interaction.response.send_message("thanks", ephemeral=True)

    # discord.py's Modal.on_error drops View's ``item`` parameter, which mypy reports as an override.
    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:  # type: ignore[override]
        self.bot.errors.append(error)


class FastClient(discord.Client):
    """discord.py sleeps 5 s before every non-initial IDENTIFY; tests do not need to."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


def build_bot(intents: discord.Intents) -> Bot:
    client = FastClient(intents=intents, guild_ready_timeout=0.05)
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    bot = Bot(client, tree)

    @tree.command(name="ping", description="Check the bot is alive")
    async def ping(interaction: discord.Interaction) -> None:
        bot.seen["ping_response"] = await interaction.response.send_message("pong", ephemeral=True)

    @tree.command(name="study", description="Study a topic")
    @app_commands.describe(topic="Topic to study")
    async def study(interaction: discord.Interaction, topic: str) -> None:
        bot.seen["topic"] = topic
        await interaction.response.send_message(f"studying {topic}")

    @study.autocomplete("topic")
    async def topic_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=t, value=t) for t in TOPICS if t.startswith(current)]

    @tree.command(name="whoami", description="Who is asking")
    async def whoami(interaction: discord.Interaction) -> None:
        bot.seen["user"] = interaction.user
        bot.seen["guild"] = interaction.guild
        bot.seen["channel"] = interaction.channel
        bot.seen["permissions"] = interaction.permissions
        await interaction.response.defer(thinking=True, ephemeral=True)
        bot.seen["followup"] = await interaction.followup.send("you are you", wait=True)

    @tree.command(name="feedback", description="Tell us how it went")
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(FeedbackModal(bot))

    @tree.error
    async def on_tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        bot.errors.append(error)

    async def setup_hook() -> None:
        client.add_view(NextCardView(bot))

    client.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot


@contextlib.asynccontextmanager
async def running_bot(fake: FakeDiscord, intents: discord.Intents | None = None) -> AsyncIterator[Bot]:
    bot = build_bot(intents or discord.Intents.default())
    await bot.client.login(TOKEN)
    task = asyncio.create_task(bot.client.connect())
    try:
        await asyncio.wait_for(bot.client.wait_until_ready(), 5)
        yield bot
    finally:
        await bot.client.close()
        await asyncio.wait_for(task, 5)  # connect() returns cleanly after close()
    assert not bot.errors, bot.errors


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN) as server:
        with point_discord_at(server):
            yield server


def statuses(fake: FakeDiscord, method: str, fragment: str) -> list[int]:
    return [r.status for r in fake.requests if r.method == method and fragment in r.path]


@pytest.mark.asyncio
async def test_login_ready_and_sync(fake: FakeDiscord) -> None:
    guild_id = fake.add_guild(name="Study Group", channels=("general", "quiz"))
    async with running_bot(fake) as bot:
        client = bot.client
        assert client.user is not None and client.user.id == fake.bot_user_id
        assert client.application_id == fake.application_id
        guild = client.get_guild(guild_id)
        assert guild is not None and not guild.unavailable
        assert [c.name for c in guild.text_channels] == ["general", "quiz"]
        assert guild.me is not None and guild.me.guild_permissions.manage_messages
        assert fake.identify_payloads[0]["intents"] == discord.Intents.default().value
        assert statuses(fake, "GET", "/users/@me") == [200]
        assert statuses(fake, "GET", "/oauth2/applications/@me") == [200]

        synced = await bot.tree.sync()
        assert {c.name for c in synced} == {"ping", "study", "whoami", "feedback"}
        stored = {c["name"]: c for c in fake.synced_commands[None]}
        assert {c.id for c in synced} == {int(c["id"]) for c in stored.values()}
        assert stored["study"]["options"][0]["name"] == "topic"

        bot.tree.copy_global_to(guild=discord.Object(guild_id))
        guild_synced = await bot.tree.sync(guild=discord.Object(guild_id))
        assert all(c.guild_id == guild_id for c in guild_synced)
        assert {c["name"] for c in fake.synced_commands[guild_id]} == {"ping", "study", "whoami", "feedback"}
        # Re-syncing keeps command ids stable, like Discord's bulk overwrite.
        again = await bot.tree.sync()
        assert {c.id for c in again} == {c.id for c in synced}
    assert fake.connected_clients == 0


@pytest.mark.asyncio
async def test_slash_command_ephemeral_reply(fake: FakeDiscord) -> None:
    async with running_bot(fake, discord.Intents.none()) as bot:
        await bot.tree.sync()
        payload = await fake.send_interaction(fake.slash_interaction("ping", user_id=4242, username="ann"))
        callback = await fake.wait_for_callback(payload)
        assert callback.type == 4
        assert callback.data is not None
        assert callback.data["content"] == "pong" and callback.data["flags"] == EPHEMERAL
        original = fake.original_message(payload)
        assert original is not None and original["flags"] & EPHEMERAL
        # discord.py parsed the with_response body into an InteractionCallbackResponse.
        response = bot.seen["ping_response"]
        assert response.message_id == int(original["id"]) and response.is_ephemeral()
        callback_paths = [r.path for r in fake.requests if r.path.endswith("/callback")]
        assert callback_paths == [f"/api/v10/interactions/{payload['id']}/{payload['token']}/callback"]


@pytest.mark.asyncio
async def test_guild_command_member_permissions_defer_and_followup(fake: FakeDiscord) -> None:
    guild_id = fake.add_guild(name="Study Group")
    mods = fake.add_role(guild_id, "mods", discord.Permissions(manage_messages=True).value)
    fake.add_member(guild_id, 777, username="mod", roles=[mods])
    async with running_bot(fake) as bot:
        payload = await fake.send_interaction(fake.slash_interaction("whoami", guild_id=guild_id, user_id=777))
        await fake.wait_for(("POST", f"/webhooks/{fake.application_id}/"))
        user, guild, channel = bot.seen["user"], bot.seen["guild"], bot.seen["channel"]
        assert isinstance(user, discord.Member) and user.name == "mod"
        assert [r.name for r in user.roles] == ["@everyone", "mods"]
        assert guild is not None and guild.name == "Study Group"
        assert isinstance(channel, discord.TextChannel) and channel.name == "general"
        assert bot.seen["permissions"].manage_messages and not bot.seen["permissions"].administrator
        callback = await fake.wait_for_callback(payload)
        assert callback.type == 5 and callback.data == {"flags": EPHEMERAL}
        # The first followup replaced the "thinking" message, keeping it ephemeral.
        original = fake.original_message(payload)
        assert original is not None
        assert original["content"] == "you are you"
        assert original["flags"] & EPHEMERAL and not original["flags"] & LOADING
        assert bot.seen["followup"].id == int(original["id"])


@pytest.mark.asyncio
async def test_persistent_button_edits_message(fake: FakeDiscord) -> None:
    guild_id = fake.add_guild()
    channel_id = fake.guild_channel_ids(guild_id)[0]
    async with running_bot(fake) as bot:
        channel = bot.client.get_channel(channel_id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("card 1", view=NextCardView(bot))
        stored = fake.messages[sent.id]
        assert stored["components"][0]["components"][0]["custom_id"] == NEXT_ID

        payload = await fake.send_interaction(fake.component_interaction(NEXT_ID, message=sent.id, user_id=31337))
        callback = await fake.wait_for_callback(payload)
        assert callback.type == 7
        assert callback.data is not None and callback.data["content"] == "next card"
        assert bot.seen["clicked_by"] == 31337 and bot.seen["clicked_message"] == sent.id
        assert fake.messages[sent.id]["content"] == "next card"
        assert fake.messages[sent.id]["components"] == []
        assert fake.messages[sent.id]["edited_timestamp"] is not None


@pytest.mark.asyncio
async def test_autocomplete_returns_choices(fake: FakeDiscord) -> None:
    async with running_bot(fake, discord.Intents.none()) as bot:
        await bot.tree.sync()
        payload = await fake.send_interaction(fake.autocomplete_interaction("study", "topic", "b"))
        callback = await fake.wait_for_callback(payload)
        assert callback.type == 8
        assert callback.data is not None
        assert [c["value"] for c in callback.data["choices"]] == ["backprop", "batch norm", "bias-variance"]

        payload = await fake.send_interaction(fake.slash_interaction("study", {"topic": "backprop"}))
        assert (await fake.wait_for_callback(payload)).type == 4
        assert bot.seen["topic"] == "backprop"


@pytest.mark.asyncio
async def test_rate_limited_callback_is_retried(fake: FakeDiscord) -> None:
    fake.fail_next("POST /interactions/{id}/{token}/callback", 429, retry_after=0.3)
    async with running_bot(fake, discord.Intents.none()):
        started = time.monotonic()
        payload = await fake.send_interaction(fake.slash_interaction("ping"))
        callback = await fake.wait_for_callback(payload)
        assert time.monotonic() - started >= 0.3
        assert callback.type == 4
        assert statuses(fake, "POST", "/callback") == [429, 200]


@pytest.mark.asyncio
async def test_dm_refused_raises_forbidden(fake: FakeDiscord) -> None:
    fake.user_payload(555, "closed-dms")
    fake.block_dms(555)
    async with running_bot(fake, discord.Intents.none()) as bot:
        user = await bot.client.fetch_user(555)
        with pytest.raises(discord.Forbidden) as refused:
            await user.send("your daily review is ready")
        assert refused.value.status == 403 and refused.value.code == 50007

        fake.block_dms(555, blocked=False)
        fake.fail_next("POST /channels/{channel_id}/messages", 403)
        with pytest.raises(discord.Forbidden) as injected:
            await user.send("again")
        assert injected.value.code == 50007
        sent = await user.send("third time lucky")
        assert fake.messages[sent.id]["content"] == "third time lucky"
        assert statuses(fake, "POST", "/users/@me/channels") == [200]


@pytest.mark.asyncio
async def test_server_error_is_retried(fake: FakeDiscord) -> None:
    guild_id = fake.add_guild()
    async with running_bot(fake) as bot:
        channel = bot.client.get_channel(fake.guild_channel_ids(guild_id)[0])
        assert isinstance(channel, discord.TextChannel)
        fake.fail_next("POST /channels", 500)
        message = await channel.send("hello")
        assert statuses(fake, "POST", "/messages") == [500, 200]
        assert fake.messages[message.id]["content"] == "hello"


@pytest.mark.asyncio
async def test_discord_limits_are_enforced(fake: FakeDiscord) -> None:
    guild_id = fake.add_guild()
    channel_id = fake.guild_channel_ids(guild_id)[0]
    async with running_bot(fake) as bot:
        channel = bot.client.get_channel(channel_id)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        assert too_long.value.status == 400 and too_long.value.code == 50035
        assert "content" in too_long.value.text
        with pytest.raises(discord.HTTPException) as big_embed:
            await channel.send(embed=discord.Embed(title="t" * 257, description="d" * 4097))
        assert big_embed.value.code == 50035
        assert "embeds.0.title" in big_embed.value.text and "embeds.0.description" in big_embed.value.text
        await channel.send("x" * 2000, embed=discord.Embed(title="t" * 256, description="d" * 4096))

    url = f"{fake.base_url}/api/v10/channels/{channel_id}/messages"
    headers = {"Authorization": f"Bot {TOKEN}"}

    def row(count: int, custom_id: str = "b", label: str = "ok") -> dict[str, Any]:
        return {
            "type": 1,
            "components": [
                {"type": 2, "style": 1, "label": label, "custom_id": f"{custom_id}{n}"} for n in range(count)
            ],
        }

    async with aiohttp.ClientSession() as session:
        bad_bodies = [
            {"content": "six rows", "components": [row(1, f"r{n}-") for n in range(6)]},
            {"content": "six buttons", "components": [row(6)]},
            {"content": "long id", "components": [row(1, "c" * 100)]},
            {"content": "long label", "components": [row(1, label="l" * 81)]},
            {"content": ""},
        ]
        for body in bad_bodies:
            async with session.post(url, json=body, headers=headers) as response:
                assert response.status == 400, body
                assert response.headers["Content-Type"] == "application/json"
                error = await response.json()
                assert error["code"] in (50035, 50006)
        async with session.post(url, json={"content": "ok", "components": [row(5)] * 1}, headers=headers) as response:
            assert response.status == 200


@pytest.mark.asyncio
async def test_an_embed_shows_an_attached_image_by_its_attachment_name(fake: FakeDiscord) -> None:
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (1080, 1900), "white").save(png, format="PNG")
    guild_id = fake.add_guild()
    async with running_bot(fake) as bot:
        channel = bot.client.get_channel(fake.guild_channel_ids(guild_id)[0])
        assert isinstance(channel, discord.TextChannel)
        embed = discord.Embed(title="Progress").set_image(url="attachment://stats.png")
        sent = await channel.send(embed=embed, file=discord.File(io.BytesIO(png.getvalue()), filename="stats.png"))
        message = fake.messages[sent.id]
        (attachment,) = message["attachments"]
        assert (attachment["filename"], attachment["width"], attachment["height"]) == ("stats.png", 1080, 1900)
        assert message["embeds"][0]["image"]["url"] == attachment["url"]
        assert fake.uploads[int(attachment["id"])] == png.getvalue()
        assert sent.embeds[0].image.width == 1080

        with pytest.raises(discord.HTTPException) as bad_scheme:
            await channel.send(embed=discord.Embed(title="x").set_image(url="ftp://example.invalid/a.png"))
        assert bad_scheme.value.code == 50035 and "embeds.0.image.url" in bad_scheme.value.text


@pytest.mark.asyncio
async def test_rest_shape_errors_and_auth(fake: FakeDiscord) -> None:
    headers = {"Authorization": f"Bot {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake.base_url}/api/v10/nope", headers=headers) as response:
            assert response.status == 404
            assert response.headers["Content-Type"] == "application/json"
            assert await response.json() == {"message": "404: Not Found", "code": 0}
        async with session.get(f"{fake.base_url}/api/v10/users/@me") as response:
            assert response.status == 401
        async with session.get(f"{fake.base_url}/api/v10/gateway/bot", headers=headers) as response:
            body = await response.json()
            assert body["url"] == fake.gateway_url and body["shards"] == 1
            assert body["session_start_limit"]["max_concurrency"] == 1
    fake.fail_next("GET /gateway", 429, retry_after=1.5)
    async with aiohttp.ClientSession() as session, session.get(f"{fake.base_url}/api/v10/gateway") as response:
        assert response.status == 429
        assert response.headers["Via"] == "1.1 google"
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert await response.json() == {"message": "You are being rate limited.", "retry_after": 1.5, "global": False}
    recorded = await fake.wait_for(lambda r: r.status == 429)
    assert recorded == [RecordedRequest("GET", "/api/v10/gateway", None, 429)]


@pytest.mark.asyncio
async def test_zlib_stream_reconnect_and_resume_replay() -> None:
    async with FakeDiscord(token=TOKEN, compress=True) as fake:
        with point_discord_at(fake):
            async with running_bot(fake, discord.Intents.none()) as bot:
                assert "compress=zlib-stream" in fake.gateway_connections[0]
                resumed = asyncio.Event()
                bot.client.event(_on_resumed(resumed))

                await fake.request_reconnect()
                await asyncio.wait_for(resumed.wait(), 5)
                assert fake.resumes == 1
                assert fake.gateway_connections[-1].startswith("/gateway/resume?")

                # An event dispatched while the socket is down is replayed on RESUME.
                resumed.clear()
                await fake.disconnect_clients(4000)
                payload = fake.slash_interaction("ping")
                assert await fake.dispatch("INTERACTION_CREATE", payload) == 0  # buffered
                await asyncio.wait_for(resumed.wait(), 5)
                assert (await fake.wait_for_callback(payload)).type == 4
                assert fake.resumes == 2
                assert len(fake.identify_payloads) == 1

                # An invalidated session makes discord.py IDENTIFY again on a fresh session.
                await fake.invalidate_sessions()
                await fake.wait_until_ready(count=2)
                await asyncio.wait_for(bot.client.wait_until_ready(), 5)
                payload = await fake.send_interaction(fake.slash_interaction("ping"))
                assert (await fake.wait_for_callback(payload)).type == 4


def _on_resumed(event: asyncio.Event) -> Any:
    async def on_resumed() -> None:
        event.set()

    return on_resumed


@pytest.mark.asyncio
async def test_modal_round_trip(fake: FakeDiscord) -> None:
    async with running_bot(fake, discord.Intents.none()) as bot:
        command = await fake.send_interaction(fake.slash_interaction("feedback", user_id=99))
        modal = await fake.wait_for_callback(command)
        assert modal.type == 9
        assert modal.data is not None and modal.data["custom_id"] == "feedback"
        submit = await fake.send_interaction(fake.modal_submit_interaction("feedback", {"answer": "great"}, user_id=99))
        reply = await fake.wait_for_callback(submit)
        assert reply.type == 4 and bot.seen["answer"] == "great"


@pytest.mark.asyncio
async def test_interaction_protocol_errors(fake: FakeDiscord) -> None:
    payload = fake.slash_interaction("ping")
    callback_url = f"{fake.base_url}/api/v10/interactions/{payload['id']}/{payload['token']}/callback"
    followup_url = f"{fake.base_url}/api/v10/webhooks/{fake.application_id}/{payload['token']}"

    async def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with session.post(url, json=body) as response:
            return response.status, (await response.json() if response.status != 204 else None)

    async with aiohttp.ClientSession() as session:
        unknown_webhook = {"message": "Unknown Webhook", "code": 10015}
        assert await post(followup_url, {"content": "too early"}) == (404, unknown_webhook)
        status, body = await post(callback_url, {"type": 7, "data": {"content": "not a component"}})
        assert status == 400 and body["errors"]["type"]["_errors"][0]["code"] == "INTERACTION_RESPONSE_TYPE_INVALID"
        status, body = await post(callback_url, {"type": 4, "data": {"content": "x" * 2001}})
        assert status == 400 and "content" in body["errors"]["data"]
        assert await post(callback_url, {"type": 4, "data": {"content": "ok"}}) == (204, None)
        status, body = await post(callback_url, {"type": 4, "data": {"content": "twice"}})
        assert (status, body["code"]) == (400, 40060)
        status, body = await post(followup_url + "?wait=true", {"content": "later", "flags": EPHEMERAL})
        assert status == 200 and body["flags"] == EPHEMERAL

        late = fake.slash_interaction("ping")
        fake.callback_deadline = 0.0
        late_url = f"{fake.base_url}/api/v10/interactions/{late['id']}/{late['token']}/callback"
        status, body = await post(late_url, {"type": 4, "data": {"content": "too late"}})
        assert (status, body["code"]) == (404, 10062)
    assert [c.data for c in fake.callbacks] == [{"content": "ok"}]
