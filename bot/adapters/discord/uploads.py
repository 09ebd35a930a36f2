"""Files sent with a slash command: an attachment option becomes the core's Upload, downloaded only when read.

The size is what Discord says in the interaction (the core may refuse a file without fetching it);
`read()` fetches the attachment from Discord's CDN under the adapter's retry policy (5xx, timeouts and
connection errors retried, each try bounded by the request timeout). A download that still fails raises
DownloadFailed, which the slash command turns into a plain "attach it again" line for the caller only.
"""

from __future__ import annotations

import logging

import discord

from bot.adapters.common import Failure, RetryingSender
from bot.adapters.discord.delivery import classify
from bot.core.model import Upload, UploadFailed
from bot.core.ports import ChatStore, Clock, Delivery

DOWNLOAD_FAILED = "I couldn't download that file from Discord; please attach it again."

log = logging.getLogger("studybot.discord")


class DownloadFailed(UploadFailed):
    """A file the user sent could not be fetched; `message` is what to tell them."""


def classify_download(exc: Exception) -> Failure | None:
    """Discord's errors for a download: as for sending, except that a 403/404 is about the file (expired,
    deleted), never a reason to stop writing to the chat."""
    failure = classify(exc)
    if failure is not None and failure.delivery is Delivery.UNREACHABLE:
        return Failure(Delivery.REJECTED, failure.detail)
    return failure


class DiscordDownloads:
    """Turns attachments into Uploads whose `read()` fetches them under one retry policy."""

    def __init__(
        self,
        chats: ChatStore,
        clock: Clock,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        request_timeout: float = 15.0,
    ) -> None:
        self.sender = RetryingSender(
            chats, clock, classify_download, log, retries=retries, backoff=backoff, timeout=request_timeout
        )

    def upload(self, attachment: discord.Attachment) -> Upload:
        async def read() -> bytes:
            return await self.fetch(attachment)

        return Upload(attachment.filename, attachment.size, read)

    async def fetch(self, attachment: discord.Attachment) -> bytes:
        delivery, content, detail = await self.sender.call(None, attachment.read)
        if delivery is Delivery.SENT and content is not None:
            return content
        log.warning(
            "could not download %r (attachment %s) from Discord: %s", attachment.filename, attachment.id, detail
        )
        raise DownloadFailed(DOWNLOAD_FAILED, detail)
