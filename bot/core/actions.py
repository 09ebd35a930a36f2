"""Compact button actions: `verb:target[:arg]`, at most 64 bytes, parsed strictly.

Any client can forge callback data, so parsing only establishes the shape; the services then
check that the target exists, belongs to the caller and is in a state that accepts the verb.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

MAX_ACTION_BYTES = 64


class Verb(enum.StrEnum):
    SHOW_ANSWER = "sa"
    CHOICE = "mc"
    OPTION = "op"
    RATE = "rt"
    SKIP = "sk"
    NEXT = "nx"
    FULL_ANSWER = "fa"
    QUIZ_OPTION = "qo"  # group quiz round: arg = option index
    FORGET = "fg"  # confirm deleting all of the learner's data
    INTERVIEW_SKIP = "is"  # target = interview id, arg = its step (2 * question + 1 for a follow-up)
    INTERVIEW_END = "ie"
    # the question after unanswered daily pushes: target = subscription id, arg = keep 0, move 1, stop 2,
    # or 100 + an hour to move the push to
    DAILY_CHECK_IN = "dk"
    DECK_REMOVE = "dx"  # /deck remove's confirmation: target = deck id, arg 1 remove, 0 keep


_PATTERN = re.compile(r"^([a-z]{2}):(\d{1,15})(?::(\d{1,3}))?$")


@dataclass(frozen=True, slots=True)
class Action:
    verb: Verb
    target: int
    arg: int | None = None

    def encode(self) -> str:
        text = f"{self.verb.value}:{self.target}" + ("" if self.arg is None else f":{self.arg}")
        assert len(text.encode()) <= MAX_ACTION_BYTES
        return text


def parse_action(data: str | None) -> Action | None:
    """The action encoded in `data`, or None for anything malformed or unknown."""
    if not data or len(data) > MAX_ACTION_BYTES:
        return None
    match = _PATTERN.match(data)
    if match is None:
        return None
    try:
        verb = Verb(match.group(1))
    except ValueError:
        return None
    arg = match.group(3)
    return Action(verb=verb, target=int(match.group(2)), arg=None if arg is None else int(arg))
