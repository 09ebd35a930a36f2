"""Files sent with a command: a Telegram document becomes the core's Upload, downloaded only when read.

The size is what Telegram says in the message (the core may refuse a file without fetching it); `read()`
asks getFile for a download path and fetches the bytes from the file server, each step under the
adapter's retry policy (timeouts and 5xx retried). A download that still fails raises DownloadFailed,
which the update handler turns into a plain "send it again" line instead of the generic apology.
"""

from __future__ import annotations

import logging

from telegram import Bot, Document, File, Message

from bot.adapters.common import Failure, RetryingSender
from bot.adapters.telegram.delivery import classify
from bot.core.model import Upload, UploadFailed
from bot.core.ports import ChatStore, Clock, Delivery

DOWNLOAD_FAILED = "I couldn't download that file from Telegram; please send it again."
TOO_BIG = "That file is too big for me to download from Telegram (bots can fetch files up to 20 MB)."

log = logging.getLogger("studybot.telegram")


class DownloadFailed(UploadFailed):
    """A file the user sent could not be fetched; `message` is what to tell them."""


def classify_download(exc: Exception) -> Failure | None:
    """Telegram's errors for a download: as for sending, except that a refusal is about the file, never
    a reason to stop writing to the chat."""
    failure = classify(exc)
    if failure is not None and failure.delivery is Delivery.UNREACHABLE:
        return Failure(Delivery.REJECTED, failure.detail)
    return failure


def attached_document(message: Message) -> Document | None:
    """The document a command came with: the message's own, else the one of the message it replies to."""
    if message.document is not None:
        return message.document
    replied = message.reply_to_message
    return replied.document if replied is not None else None


class TelegramDownloads:
    """Turns documents into Uploads whose `read()` fetches them under one retry policy."""

    def __init__(self, chats: ChatStore, clock: Clock, *, retries: int = 3, backoff: float = 0.5) -> None:
        self.sender = RetryingSender(chats, clock, classify_download, log, retries=retries, backoff=backoff)

    def upload(self, bot: Bot, document: Document) -> Upload:
        name = document.file_name or "file"

        async def read() -> bytes:
            return await self.fetch(bot, document.file_id, name)

        return Upload(name, document.file_size, read)

    async def fetch(self, bot: Bot, file_id: str, name: str) -> bytes:
        delivery, file, detail = await self.sender.call(None, lambda: bot.get_file(file_id))
        if delivery is Delivery.SENT and isinstance(file, File):
            delivery, content, detail = await self.sender.call(None, file.download_as_bytearray)
            if delivery is Delivery.SENT and content is not None:
                return bytes(content)
        log.warning("could not download %r from Telegram: %s", name, detail)
        raise DownloadFailed(TOO_BIG if "file is too big" in detail.lower() else DOWNLOAD_FAILED, detail)
