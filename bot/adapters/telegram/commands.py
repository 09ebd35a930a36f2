"""The command menu Telegram shows under "/": the core's CommandSpecs, published with setMyCommands."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from telegram import Bot, BotCommand

from bot.adapters.telegram.delivery import TelegramSender
from bot.core.commands import CommandSpec
from bot.core.ports import Delivery

DESCRIPTION_LIMIT = 256  # a menu entry's description

log = logging.getLogger("studybot.telegram")


def command_menu(specs: Iterable[CommandSpec]) -> list[BotCommand]:
    """One menu entry per command, in the core's order."""
    return [BotCommand(spec.name, spec.description[:DESCRIPTION_LIMIT]) for spec in specs]


async def publish_commands(bot: Bot, sender: TelegramSender, specs: Iterable[CommandSpec]) -> None:
    """Replace the bot's command menu; a failure is logged, not raised (the bot works without a menu)."""
    menu = command_menu(specs)
    delivery, _, detail = await sender.call(None, lambda: bot.set_my_commands(menu))
    if delivery is not Delivery.SENT:
        log.warning("could not publish the command list: %s", detail)
