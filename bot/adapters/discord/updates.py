"""Discord interactions -> core calls: slash commands, button presses and answer-box submissions.

Every interaction is one core call answered within Discord's 3-second window (deferred when the core
is slower). Buttons are persistent without any per-message state: a button's custom_id *is* the core's
action string, so a press on a message sent before a restart is handled exactly like a fresh one, and
the core validates it (ownership, staleness, forgery) the same way.

In a server, answers are ephemeral unless the command's audience is the whole chat (the core's
CommandSpec.audience); `Reply.private` always means ephemeral. In DMs, plain messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import discord
from discord import app_commands

from bot.adapters.common import SORRY, log_handled
from bot.adapters.discord.delivery import channel_chat, dm_chat
from bot.adapters.discord.render import (
    ANSWER_INPUT_ID,
    ANSWER_MODAL_ID,
    CUSTOM_ID_LIMIT,
    PLATFORM,
    TYPE_ANSWER_ID,
    MessagePart,
    answer_modal,
    edit_kwargs,
    notice_part,
    render,
    send_kwargs,
    without_picture,
)
from bot.core.commands import Commands
from bot.core.model import Caller, Identity
from bot.core.ports import ChatStore
from bot.core.views import Reply
from bot.logs import redact

NO_OPEN_QUESTION = "No question is open. Send /question to get one."
DMS_CLOSED = (
    "I couldn't send you a direct message (your DMs are closed to me), so pushes to you are paused. "
    "Allow direct messages from this server's members, then send /daily to resume."
)

log = logging.getLogger("studybot.discord")
Interaction = discord.Interaction[discord.Client]


def caller_of(interaction: Interaction) -> Caller:
    user = interaction.user
    name = user.display_name or user.name or str(user.id)
    if interaction.guild_id is not None:
        return Caller(
            identity=Identity(PLATFORM, str(user.id)),
            display_name=name,
            chat=channel_chat(interaction.channel_id),
            is_chat_admin=interaction.permissions.manage_guild,
        )
    return Caller(identity=Identity(PLATFORM, str(user.id)), display_name=name, chat=dm_chat(user.id))


@dataclass
class _Turn:
    """One interaction being answered, and how far the answer got."""

    interaction: Interaction
    caller: Caller
    what: str
    started: float = field(default_factory=time.perf_counter)
    deferred: bool = False
    thinking_ephemeral: bool | None = None  # a "thinking…" placeholder still to be replaced

    @property
    def in_guild(self) -> bool:
        return self.interaction.guild_id is not None


class Interactions:
    """Answers every interaction: each turns into one core call, and its Reply into Discord messages."""

    def __init__(self, commands: Commands, chats: ChatStore, *, token: str, defer_after: float = 2.0) -> None:
        self.commands = commands
        self.chats = chats
        self.token = token  # only to keep it out of the logs
        self.defer_after = defer_after
        self._handling: set[asyncio.Task[Any]] = set()
        self._told_dms_closed: set[str] = set()

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a bound, not a cancel scope
        """Wait (at most `timeout` seconds) until the interactions being handled are fully answered."""
        pending = {task for task in self._handling if task is not asyncio.current_task() and not task.done()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def on_interaction(self, interaction: Interaction) -> None:
        """Buttons and modal submissions (slash commands and autocomplete go through the tree)."""
        data = cast(dict[str, Any], interaction.data or {})
        custom_id = str(data.get("custom_id") or "")
        if interaction.type is discord.InteractionType.component:
            if custom_id == TYPE_ANSWER_ID:
                await self._open_answer_modal(interaction)
            else:
                await self.serve(interaction, f"button {custom_id[:CUSTOM_ID_LIMIT]}", self._press(custom_id))
        elif interaction.type is discord.InteractionType.modal_submit and custom_id == ANSWER_MODAL_ID:
            text = _modal_value(data.get("components") or [], ANSWER_INPUT_ID) or ""
            await self.serve(interaction, "typed answer", self._typed(text))

    def _press(self, custom_id: str) -> Callable[[Caller], Awaitable[Reply]]:
        def press(caller: Caller) -> Awaitable[Reply]:
            return self.commands.press(caller, custom_id)

        return press

    def _typed(self, text: str) -> Callable[[Caller], Awaitable[Reply]]:
        async def typed(caller: Caller) -> Reply:
            reply = await self.commands.text(caller, text)
            return reply if reply is not None else Reply(notice=NO_OPEN_QUESTION)

        return typed

    async def _open_answer_modal(self, interaction: Interaction) -> None:
        try:
            await interaction.response.send_modal(answer_modal())
        except Exception as exc:
            await self._fail(_Turn(interaction, caller_of(interaction), "type answer"), exc)

    async def serve(
        self,
        interaction: Interaction,
        what: str,
        work: Callable[[Caller], Awaitable[Reply]],
        *,
        personal: bool = True,
    ) -> None:
        """Answer one interaction with one core call, within Discord's 3-second window."""
        turn = _Turn(interaction, caller_of(interaction), what)
        current = asyncio.current_task()
        if current is not None:
            self._handling.add(current)
            current.add_done_callback(self._handling.discard)
        try:
            task = asyncio.ensure_future(self._call_core(turn.caller, work))
            done, _ = await asyncio.wait({task}, timeout=self.defer_after)
            if not done:
                task.add_done_callback(_consume)  # if answering fails, the core call still finishes
                await self._defer(turn, personal=personal)
            reply = await task
            if interaction.type is discord.InteractionType.application_command:
                await self._answer_command(turn, reply, personal=personal)
            else:
                await self._answer_component(turn, reply)
            await self._after(turn)
        except Exception as exc:
            await self._fail(turn, exc)
            return
        log_handled(
            log,
            what,
            turn.started,
            update=interaction.id,
            chat=turn.caller.chat.chat_id,
            user=interaction.user.id,
            command=what,
            platform=PLATFORM,
        )

    async def _call_core(self, caller: Caller, work: Callable[[Caller], Awaitable[Reply]]) -> Reply:
        # Someone talking to the bot in DMs can be DM'd again.
        if not caller.chat.is_group and await self.chats.mark_reachable(caller.chat.key):
            self._told_dms_closed.discard(caller.chat.key)
        return await work(caller)

    async def _defer(self, turn: _Turn, *, personal: bool) -> None:
        interaction = turn.interaction
        if interaction.type is discord.InteractionType.application_command:
            ephemeral = turn.in_guild and personal
            await interaction.response.defer(ephemeral=ephemeral, thinking=True)
            turn.thinking_ephemeral = ephemeral
        else:
            await interaction.response.defer()  # "deferred update": the pressed message may be edited later
        turn.deferred = True

    async def _send(self, turn: _Turn, part: MessagePart, *, ephemeral: bool) -> None:
        """A new message: the interaction's response if none was sent yet, else a followup. A message
        Discord refuses because of its picture goes again without it: the text matters more."""
        try:
            await self._send_part(turn, part, ephemeral=ephemeral)
        except discord.HTTPException as exc:
            rest = without_picture(part, f"{exc.status} {exc.code}: {exc.text}")
            if rest is None:
                raise
            await self._send_part(turn, rest, ephemeral=ephemeral)

    async def _send_part(self, turn: _Turn, part: MessagePart, *, ephemeral: bool) -> None:
        interaction = turn.interaction
        kwargs = send_kwargs(part)
        if not interaction.response.is_done():
            await interaction.response.send_message(ephemeral=ephemeral, **kwargs)
            return
        if turn.thinking_ephemeral is not None:
            # The first followup replaces "thinking…" and keeps its visibility; a private answer to
            # a public placeholder must not, so the placeholder goes.
            if ephemeral and not turn.thinking_ephemeral:
                await interaction.delete_original_response()
            turn.thinking_ephemeral = None
        await interaction.followup.send(ephemeral=ephemeral, **kwargs)

    async def _answer_command(self, turn: _Turn, reply: Reply, *, personal: bool) -> None:
        ephemeral = turn.in_guild and (personal or reply.private)
        if reply.is_notice_only:
            await self._send(turn, notice_part(reply.notice or "Done."), ephemeral=turn.in_guild)
        else:
            for part in render(reply):
                await self._send(turn, part, ephemeral=ephemeral)
        await self._send_extra(turn, reply, ephemeral=ephemeral)

    async def _answer_component(self, turn: _Turn, reply: Reply) -> None:
        interaction = turn.interaction
        message = interaction.message
        message_ephemeral = bool(message is not None and message.flags.ephemeral)
        if reply.is_notice_only:
            await self._send(turn, notice_part(reply.notice or "Done."), ephemeral=True)
            await self._send_extra(turn, reply, ephemeral=turn.in_guild)
            return
        parts = render(reply)
        if reply.edit and message is not None and parts:
            first, rest = parts[0], parts[1:]
            if rest:  # the buttons belong under the last part
                first = MessagePart(first.title, first.description, first.footer, first.content, (), first.attachment)
            if interaction.response.is_done():
                await interaction.edit_original_response(**edit_kwargs(first))
            else:
                await interaction.response.edit_message(**edit_kwargs(first))
            for part in rest:
                await self._send(turn, part, ephemeral=turn.in_guild and message_ephemeral)
            if reply.notice and turn.in_guild and not message_ephemeral:
                await self._send(turn, notice_part(reply.notice), ephemeral=True)
            ephemeral = turn.in_guild and (message_ephemeral or reply.private)
        else:
            ephemeral = turn.in_guild and (message is None or message_ephemeral or reply.private)
            for part in parts:
                await self._send(turn, part, ephemeral=ephemeral)
        await self._send_extra(turn, reply, ephemeral=ephemeral)

    async def _send_extra(self, turn: _Turn, reply: Reply, *, ephemeral: bool) -> None:
        for more in reply.extra:
            if more.is_notice_only:
                if more.notice:
                    await self._send(turn, notice_part(more.notice), ephemeral=True)
                continue
            for part in render(more):
                await self._send(turn, part, ephemeral=turn.in_guild and (ephemeral or more.private))

    async def _after(self, turn: _Turn) -> None:
        """One-off notes for the caller, each as an ephemeral followup."""
        notes: list[str] = []
        note = await self.commands.pending_notice(turn.caller)
        if note:
            notes.append(note)
        if turn.in_guild:
            key = dm_chat(turn.interaction.user.id).key
            if await self.chats.is_reachable(key):
                self._told_dms_closed.discard(key)
            elif key not in self._told_dms_closed:
                self._told_dms_closed.add(key)
                notes.append(DMS_CLOSED)
        for text in notes:
            await self._send(turn, notice_part(text), ephemeral=True)

    async def _fail(self, turn: _Turn, exc: BaseException) -> None:
        interaction = turn.interaction
        secrets = [self.token]
        details = redact("".join(traceback.format_exception(exc)), secrets)
        log.error(
            "interaction %s (%s) by user %s failed: %s\n%s",
            interaction.id,
            turn.what,
            interaction.user.id,
            redact(f"{type(exc).__name__}: {exc}", secrets),
            details,
            extra={
                "update": interaction.id,
                "chat": turn.caller.chat.chat_id,
                "user": interaction.user.id,
                "command": turn.what,
                "platform": PLATFORM,
            },
        )
        if interaction.type is discord.InteractionType.autocomplete:
            return
        try:
            if interaction.response.is_done():
                await interaction.followup.send(SORRY, ephemeral=True)
            else:
                await interaction.response.send_message(SORRY, ephemeral=True)
        except Exception as again:
            log.warning(
                "could not apologise for interaction %s: %s",
                interaction.id,
                redact(f"{type(again).__name__}: {again}", secrets),
            )

    async def on_tree_error(self, interaction: Interaction, error: app_commands.AppCommandError) -> None:
        command = interaction.command.name if interaction.command else "?"
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await self._fail(_Turn(interaction, caller_of(interaction), f"/{command}"), cause)


def _modal_value(components: Sequence[Any], custom_id: str) -> str | None:
    """The value of the text input `custom_id`, wherever the modal nests it (rows or labels)."""
    for component in components:
        if not isinstance(component, dict):
            continue
        if component.get("custom_id") == custom_id and "value" in component:
            return str(component["value"])
        for key in ("components", "component"):
            nested = component.get(key)
            found = _modal_value(nested if isinstance(nested, list) else [nested], custom_id) if nested else None
            if found is not None:
                return found
    return None


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("a core call finished with an error after its interaction failed", exc_info=task.exception())
