"""The fake Bot API server (tests/adapters/fake_telegram.py) in its own process, with a user simulator.

Run by bench.common.FakeHost as `python -m bench.fakehost '<json options>'`. Running the fake (and the
simulated users) in a separate process keeps its CPU cost off the bot's event loop, as with the real
Telegram, and gives the bot a core of its own on a two-core machine.

Protocol: JSON lines. The first line out is {"token", "api_url"}; then each line in is a request
{"op": "drive" | "report" | "quit", ...} answered by one line out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import time
from collections import Counter
from typing import Any

from tests.adapters.fake_telegram import JSON, Call, FakeTelegram

REPLY_METHODS = ("sendMessage", "editMessageText")


class HostFake(FakeTelegram):
    """FakeTelegram that wakes a waiter when a chat gets its reply, and timestamps successful sends."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.waiters: dict[int, asyncio.Future[tuple[Call, float]]] = {}
        self.send_times: list[float] = []

    def _record(self, call: Call, status: int, body: JSON) -> None:
        super()._record(call, status, body)
        if status != 200:
            return
        if call.method == "sendMessage":
            self.send_times.append(time.monotonic())
        if call.method in REPLY_METHODS and isinstance(call.chat_id, int):
            waiter = self.waiters.pop(call.chat_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result((call, time.perf_counter()))


def _buttons(message: JSON) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [
        str(button.get("callback_data"))
        for row in markup.get("inline_keyboard", [])
        for button in row
        if button.get("callback_data")
    ]


async def drive(
    fake: HostFake,
    *,
    kind: str,
    updates: int,
    clients: int,
    users_per_client: int,
    user_base: int,
    timeout: float = 30.0,
    seed: int = 7,
) -> dict[str, Any]:
    """Simulated users, each client a closed loop: send an update, wait for its reply, send the next.

    kind "study": /question, then "Show answer" -> a rating, or "Multiple choice" -> an option (the
    buttons are read from the bot's replies). kind "echo": the same shape of updates for an echo bot.
    Latency is from queueing the update here to the fake recording the reply (sendMessage for a
    command, editMessageText for a button press).
    """
    rng = random.Random(seed)
    sent = 0
    latencies: dict[str, list[float]] = {"command": [], "press": []}
    problems: Counter[str] = Counter()

    async def feed(chat_id: int, update: JSON, label: str) -> Call | None:
        nonlocal sent
        waiter: asyncio.Future[tuple[Call, float]] = asyncio.get_running_loop().create_future()
        fake.waiters[chat_id] = waiter
        started = time.perf_counter()
        fake.push_update(update)
        sent += 1
        try:
            call, answered = await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            fake.waiters.pop(chat_id, None)
            problems["timeout"] += 1
            return None
        latencies[label].append(answered - started)
        return call

    async def study_client(index: int) -> None:
        users = [user_base + index * users_per_client + k + 1 for k in range(users_per_client)]
        exhausted: set[int] = set()
        cycle = 0
        while sent < updates and len(exhausted) < len(users):
            for uid in users:
                if sent >= updates:
                    return
                if uid in exhausted:
                    continue
                user = fake.make_user(uid, f"User{uid}")
                call = await feed(uid, fake.message_update(uid, user, "/question"), "command")
                if call is None:
                    continue
                message = call.result
                first = _buttons(message)
                show = [d for d in first if d.startswith("sa:")]
                choice = [d for d in first if d.startswith("mc:")]
                if not show:  # caught up for today: this user is done
                    exhausted.add(uid)
                    problems["caught_up"] += 1
                    continue
                use_choice = bool(choice) and cycle % 2 == 1
                data = choice[0] if use_choice else show[0]
                if sent >= updates:
                    return
                call = await feed(uid, fake.callback_update(uid, user, message["message_id"], data), "press")
                if call is None:
                    continue
                prefix = "op:" if use_choice else "rt:"
                options = [d for d in _buttons(call.result) if d.startswith(prefix)]
                if not options:
                    problems["no_buttons"] += 1
                    continue
                if sent >= updates:
                    return
                pick = rng.choice(options)
                await feed(uid, fake.callback_update(uid, user, message["message_id"], pick), "press")
            cycle += 1

    async def echo_client(index: int) -> None:
        users = [user_base + index * users_per_client + k + 1 for k in range(users_per_client)]
        while sent < updates:
            for uid in users:
                if sent >= updates:
                    return
                user = fake.make_user(uid, f"User{uid}")
                call = await feed(uid, fake.message_update(uid, user, "/question"), "command")
                if call is None:
                    continue
                message_id = call.result["message_id"]
                for data in ("sa:1", f"rt:1:{rng.randint(1, 4)}"):
                    if sent >= updates:
                        return
                    await feed(uid, fake.callback_update(uid, user, message_id, data), "press")

    client = study_client if kind == "study" else echo_client
    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    errors = Counter(f"{c.method}:{c.status}" for c in fake.calls if not c.ok)
    return {
        "updates": sent,
        "elapsed": elapsed,
        "latencies": latencies,
        "problems": dict(problems),
        "errors": dict(errors),
    }


def report(fake: HostFake, first_chat: int, last_chat: int) -> dict[str, Any]:
    """Successful sendMessage calls per chat in [first_chat, last_chat]: lost and duplicated pushes."""
    per_chat: Counter[int] = Counter()
    for call in fake.calls:
        if call.method == "sendMessage" and call.ok and isinstance(call.chat_id, int):
            per_chat[call.chat_id] += 1
    expected = range(first_chat, last_chat + 1)
    times = sorted(fake.send_times)
    peak = 0
    start = 0
    for end, moment in enumerate(times):  # the most sends in any 1-second window
        while times[start] <= moment - 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return {
        "ok_sends": sum(per_chat[c] for c in expected),
        "lost": sum(1 for c in expected if per_chat[c] == 0),
        "duplicates": sum(per_chat[c] - 1 for c in expected if per_chat[c] > 1),
        "rate_limited": fake.rate_limited,
        "errors": dict(Counter(f"{c.method}:{c.status}" for c in fake.calls if not c.ok)),
        "peak_per_1s": peak,
        "span_s": (times[-1] - times[0]) if len(times) > 1 else 0.0,
    }


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main(options: dict[str, Any]) -> None:
    logging.basicConfig(level=logging.ERROR)
    async with HostFake(**options) as fake:
        _say({"token": fake.token, "api_url": fake.api_url})
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            request = json.loads(line)
            op = request.get("op")
            try:
                if op == "quit":
                    _say({"ok": True})
                    break
                if op == "drive":
                    _say(await drive(fake, **request["args"]))
                elif op == "report":
                    _say(report(fake, int(request["first_chat"]), int(request["last_chat"])))
                else:
                    _say({"error": f"unknown op {op!r}"})
            except Exception as exc:  # report it to the parent instead of dying silently
                _say({"error": repr(exc)})


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))
