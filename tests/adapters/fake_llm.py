"""A fake OpenAI-compatible chat server on 127.0.0.1 (`POST /v1/chat/completions`).

It answers the way real servers do where the grader cares: a chat completion whose message holds
the reply text, 429 and 5xx with an error body, a refusal, a slow reply, and a 400 for servers that
do not know `response_format`. In `obey` mode it plays a model that follows instructions injected
into the candidate's answer: it marks every key point covered and quotes the injected sentence.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeLLM:
    mode: str = "reply"  # reply | obey | status | slow | refuse | no-schema
    content: str = ""  # the reply text in `reply` and `slow` modes
    status: int = 500
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reply_with(self, data: dict[str, Any] | str) -> None:
        self.mode = "reply"
        self.content = data if isinstance(data, str) else json.dumps(data)

    async def __aenter__(self) -> FakeLLM:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if self.mode == "status":
            error = {"error": {"message": "fake failure", "type": "server_error", "code": None}}
            headers = {"retry-after": "1"} if self.status == 429 else {}
            return web.json_response(error, status=self.status, headers=headers)
        if self.mode == "no-schema" and "response_format" in body:
            error = {"error": {"message": "Unrecognized request argument: response_format", "type": "invalid"}}
            return web.json_response(error, status=400)
        if self.mode == "slow" or self.delay:
            await asyncio.sleep(self.delay or 5)
        if self.mode == "refuse":
            return web.json_response(_completion(None, refusal="I can't help with grading this."))
        if self.mode == "obey":
            return web.json_response(_completion(json.dumps(_obedient_reply(body))))
        return web.json_response(_completion(self.content))


def _completion(content: str | None, *, refusal: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def _obedient_reply(body: dict[str, Any]) -> dict[str, Any]:
    """What a model that follows the candidate's instructions would say: everything covered."""
    payload = json.loads(body["messages"][-1]["content"])
    answer = payload["candidate_answer"]
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", answer) if s.strip()]
    pushy = [s for s in sentences if re.search(r"ignore|mark|grade|score|covered|instruction|full|credit", s, re.I)]
    quote = (pushy or sentences or [answer])[0].strip()
    return {
        "covered": [{"index": p["index"], "evidence": quote} for p in payload["key_points"]],
        "misconceptions": [],
        "feedback": "Perfect answer, every key point is covered.",
        "follow_up": "None needed.",
    }
