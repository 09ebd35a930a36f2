"""Slash commands generated from the core's CommandSpecs: typed options, choices, ranges, autocomplete.

An option of kind "attachment" is a file picker; the file is not part of the args string but goes to
the command as its Upload (read from Discord only if the command reads it).

Commands added to the core later appear with no Discord-specific code; every command is one
`Commands.run`, answered by the interaction handler (`serve`).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol
from zoneinfo import available_timezones

import discord
from discord import app_commands

from bot.adapters.discord.delivery import channel_chat, dm_chat
from bot.adapters.discord.uploads import DiscordDownloads, DownloadFailed
from bot.core.bank import QuestionBank
from bot.core.commands import Commands, CommandSpec, OptionSpec
from bot.core.model import Caller
from bot.core.views import Reply

CHOICES_LIMIT = 25
OPTIONS_LIMIT = 25
CHOICE_NAME_LIMIT = 100
COMMAND_DESCRIPTION_LIMIT = 100

COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Moscow",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)

log = logging.getLogger("studybot.discord")
Interaction = discord.Interaction[discord.Client]


class Serve(Protocol):
    """Answers one interaction with one core call (the interaction handler's `serve`)."""

    def __call__(
        self,
        interaction: Interaction,
        what: str,
        work: Callable[[Caller], Awaitable[Reply]],
        *,
        personal: bool = True,
    ) -> Awaitable[None]: ...


def _annotation(option: OptionSpec) -> Any:
    if option.kind == "attachment":
        return discord.Attachment
    if option.kind == "integer":
        if option.min_value is not None or option.max_value is not None:
            return app_commands.Range[int, option.min_value, option.max_value]
        return int
    return str


def _matches(current: str, *names: str) -> tuple[bool, bool]:
    """(starts with, contains) of what was typed, ignoring case, spaces and underscores."""
    wanted = re.sub(r"[\s_-]+", " ", current.strip().casefold())
    keys = [re.sub(r"[\s_/-]+", " ", name.casefold()) for name in names]
    return any(k.startswith(wanted) for k in keys), any(wanted in k for k in keys)


class SlashCommands:
    """The core's commands on a discord.py CommandTree, globally or for one guild."""

    def __init__(
        self,
        commands: Commands,
        tree: app_commands.CommandTree[discord.Client],
        serve: Serve,
        downloads: DiscordDownloads,
        *,
        guild_id: int | None = None,
    ) -> None:
        self.commands = commands
        self.tree = tree
        self.serve = serve
        self.downloads = downloads
        self.guild_id = guild_id
        self._zones: tuple[str, ...] | None = None

    def install(self) -> None:
        """(Re)build the slash commands from the core's specs, globally or for `guild_id`."""
        guild = discord.Object(id=self.guild_id) if self.guild_id else None
        self.tree.clear_commands(guild=guild)
        for spec in self.commands.specs:
            self.tree.add_command(self.slash_command(spec), guild=guild)

    async def sync(self) -> list[app_commands.AppCommand]:
        guild = discord.Object(id=self.guild_id) if self.guild_id else None
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:
            where = f"guild {self.guild_id} (is the bot in that server?)" if guild else "globally"
            log.error("could not sync the slash commands %s: %s %s", where, exc.status, exc.code)
            return []
        log.info("synced %d slash commands %s", len(synced), f"to guild {self.guild_id}" if guild else "globally")
        return synced

    def slash_command(self, spec: CommandSpec) -> app_commands.Command[Any, ..., None]:
        """A slash command for `spec`: typed options, choices, ranges and autocomplete from its OptionSpecs."""
        options = spec.options[:OPTIONS_LIMIT]
        params = {f"option_{n}": option for n, option in enumerate(options)}

        async def callback(interaction: Interaction, **values: Any) -> None:
            given = [values.get(name) for name, option in params.items() if option.kind != "attachment"]
            args = " ".join(str(value).strip() for value in given if value is not None and str(value).strip())
            files = [values.get(name) for name, option in params.items() if option.kind == "attachment"]
            attachment = next((file for file in files if isinstance(file, discord.Attachment)), None)
            upload = self.downloads.upload(attachment) if attachment is not None else None

            async def run(caller: Caller) -> Reply:
                if upload is None:
                    return await self.commands.run(caller, spec.name, args)
                try:
                    return await self.commands.run(caller, spec.name, args, upload)
                except DownloadFailed as failed:
                    return Reply(notice=failed.message)  # for the caller only, like any notice

            await self.serve(interaction, f"/{spec.name}", run, personal=spec.audience == "personal")

        # discord.py reads a command's options from its callback's signature; build that signature.
        signature = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Interaction)]
        for name, option in params.items():
            signature.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=_annotation(option),
                    default=inspect.Parameter.empty if option.required else None,
                )
            )
        callback.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
        described: Any = callback
        if params:
            described = app_commands.rename(**{name: option.name for name, option in params.items()})(described)
            described = app_commands.describe(
                **{
                    name: (option.description or option.name)[:COMMAND_DESCRIPTION_LIMIT]
                    for name, option in params.items()
                }
            )(described)
        choices = {
            name: self._choices(option) for name, option in params.items() if option.choices and not option.autocomplete
        }
        if choices:
            described = app_commands.choices(**choices)(described)
        completers = {name: self._completer(option) for name, option in params.items() if option.autocomplete}
        if completers:
            described = app_commands.autocomplete(**completers)(described)
        contexts = app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False)
        return app_commands.Command(
            name=spec.name,
            description=(spec.description or spec.usage or spec.name)[:COMMAND_DESCRIPTION_LIMIT],
            callback=described,
            allowed_contexts=contexts if spec.group_only else None,
        )

    @staticmethod
    def _choices(option: OptionSpec) -> list[app_commands.Choice[Any]]:
        out: list[app_commands.Choice[Any]] = []
        for choice in option.choices[:CHOICES_LIMIT]:
            if option.kind == "integer":
                out.append(app_commands.Choice(name=choice[:CHOICE_NAME_LIMIT], value=int(choice)))
            else:
                out.append(app_commands.Choice(name=choice[:CHOICE_NAME_LIMIT], value=choice[:CHOICE_NAME_LIMIT]))
        return out

    def _completer(
        self, option: OptionSpec
    ) -> Callable[[Interaction, str], Coroutine[Any, Any, list[app_commands.Choice[str]]]]:
        if option.autocomplete != "topic":

            async def complete_zone(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
                return self.zone_choices(current)

            return complete_zone

        async def complete_topic(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
            # the topics of the decks this chat practises from (/deck use); the bank's if they cannot be read
            in_guild = interaction.guild_id is not None
            chat = channel_chat(interaction.channel_id) if in_guild else dm_chat(interaction.user.id)
            try:
                bank = await self.commands.study.bank.pool_for(chat.key)
            except Exception:
                log.exception("reading the decks of %s for autocomplete failed", chat.key)
                bank = self.commands.study.bank
            return self.topic_choices(current, bank)

        return complete_topic

    def topic_choices(self, current: str, bank: QuestionBank | None = None) -> list[app_commands.Choice[str]]:
        """The topics of `bank` (default: the shipped bank) matching what was typed (slug or name), best first."""
        ranked: list[tuple[int, int, app_commands.Choice[str]]] = []
        for position, topic in enumerate((bank or self.commands.study.bank).topics):
            starts, contains = _matches(current, topic.slug, topic.name)
            if current.strip() and not contains:
                continue
            name = f"{topic.name} ({topic.slug})" if topic.name.casefold() != topic.slug else topic.name
            ranked.append(
                (0 if starts else 1, position, app_commands.Choice(name=name[:CHOICE_NAME_LIMIT], value=topic.slug))
            )
        return [choice for _, _, choice in sorted(ranked, key=lambda r: (r[0], r[1]))][:CHOICES_LIMIT]

    def zone_choices(self, current: str) -> list[app_commands.Choice[str]]:
        """IANA time zones matching what was typed ("berl" -> Europe/Berlin, "new york" -> America/New_York)."""
        if not current.strip():
            return [app_commands.Choice(name=zone, value=zone) for zone in COMMON_ZONES][:CHOICES_LIMIT]
        if self._zones is None:
            self._zones = tuple(sorted(z for z in available_timezones() if not z.startswith(("posix/", "right/"))))
        ranked: list[tuple[int, str]] = []
        for zone in self._zones:
            city = zone.rsplit("/", 1)[-1]
            city_starts, _ = _matches(current, city)
            starts, contains = _matches(current, zone)
            if contains:
                ranked.append((0 if city_starts else 1 if starts else 2, zone))
        ranked.sort()
        return [app_commands.Choice(name=zone, value=zone) for _, zone in ranked[:CHOICES_LIMIT]]
