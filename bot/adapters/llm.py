"""The optional model grader's transport: any OpenAI-compatible chat server through the `openai` SDK.

OpenAI, a local Ollama, vLLM or llama.cpp server all speak `/v1/chat/completions`. The reply is
requested as a JSON schema through `response_format`; a server that rejects that parameter is
asked again without it (and not offered it again), since the core parses the JSON from the
message text either way. Every failure becomes ModelUnavailable with a short reason, which the
core turns into the offline grader's judgement. Nothing here logs an answer or the API key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import openai
from openai import AsyncOpenAI

from bot.core.ports import ModelUnavailable

log = logging.getLogger("studybot.llm")

# Local servers need no key, but the SDK insists on one.
NO_KEY = "not-needed"


class OpenAIChatModel:
    """ChatModel over the `openai` SDK: one request per call, no retries (the offline grader is the retry)."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 10.0) -> None:
        self.model = model
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key or NO_KEY, timeout=timeout, max_retries=0)
        self.schema_supported = True

    async def complete(self, messages: Sequence[Mapping[str, str]], schema: Mapping[str, object]) -> str:
        request: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages], "temperature": 0}
        if self.schema_supported:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "grading", "schema": dict(schema), "strict": True},
            }
        try:
            try:
                response = await self.client.chat.completions.create(**request)
            except openai.BadRequestError as exc:
                if "response_format" not in request or not _about_response_format(exc):
                    raise
                log.info("the model server does not take response_format; asking for plain JSON from now on")
                self.schema_supported = False
                del request["response_format"]
                response = await self.client.chat.completions.create(**request)
        except openai.APITimeoutError:
            raise ModelUnavailable("timeout") from None
        except openai.RateLimitError:
            raise ModelUnavailable("rate limited (429)") from None
        except openai.APIStatusError as exc:
            raise ModelUnavailable(f"HTTP {exc.status_code}") from None
        except openai.APIConnectionError:
            raise ModelUnavailable("connection failed") from None
        except openai.OpenAIError as exc:  # malformed responses and the like
            raise ModelUnavailable(type(exc).__name__) from None
        if not response.choices:
            raise ModelUnavailable("no choices in the reply")
        choice = response.choices[0]
        if getattr(choice.message, "refusal", None) or choice.finish_reason == "content_filter":
            raise ModelUnavailable("refusal")
        content = choice.message.content
        if not isinstance(content, str) or not content.strip():
            raise ModelUnavailable("empty reply")
        return content

    async def close(self) -> None:
        await self.client.close()


def _about_response_format(exc: openai.BadRequestError) -> bool:
    text = f"{exc.message} {exc.body}".lower()
    return "response_format" in text or "json_schema" in text or "response format" in text
