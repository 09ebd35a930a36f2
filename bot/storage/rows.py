"""Row <-> model mapping, written once for every repository and both engines.

Times are stored as integer milliseconds since the Unix epoch (UTC); JSON columns as text. A query
that joins several tables names the columns of each with a prefix (`l_id`, `s_due`), and the same
functions read them with that prefix.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.core.model import (
    Attempt,
    AttemptStatus,
    CardState,
    Learner,
    Match,
    MatchStatus,
    Preview,
    Rating,
    Round,
    RoundAnswer,
    Subscription,
)
from bot.storage.db import Row

LEARNER_COLUMNS = (
    "id",
    "display_name",
    "timezone",
    "new_per_day",
    "created_at",
    "reviews_per_day",
    "show_streak",
    "rating_explained",
    "quiet_hours",
)
STATE_COLUMNS = ("state", "step", "stability", "difficulty", "due", "last_review", "reps", "lapses", "first_day")
ATTEMPT_COLUMNS = (
    "id",
    "learner_id",
    "card_id",
    "chat_key",
    "topic",
    "status",
    "options",
    "previews",
    "created_at",
    "closed_at",
)


def columns(alias: str, names: tuple[str, ...], prefix: str = "") -> str:
    """`a.id AS p_id, a.name AS p_name, ...` for a SELECT list."""
    return ", ".join(f"{alias}.{name} AS {prefix}{name}" for name in names)


def to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def opt_ms(moment: datetime | None) -> int | None:
    return None if moment is None else to_ms(moment)


def opt_dt(value: int | None) -> datetime | None:
    return None if value is None else from_ms(value)


def learner(row: Row, prefix: str = "") -> Learner | None:
    if row[prefix + "id"] is None:
        return None
    return Learner(
        id=row[prefix + "id"],
        display_name=row[prefix + "display_name"],
        timezone=row[prefix + "timezone"],
        new_per_day=row[prefix + "new_per_day"],
        created_at=from_ms(row[prefix + "created_at"]),
        reviews_per_day=row[prefix + "reviews_per_day"],
        show_streak=bool(row[prefix + "show_streak"]),
        rating_explained=bool(row[prefix + "rating_explained"]),
        quiet_hours=row[prefix + "quiet_hours"],
    )


def card_state(row: Row, learner_id: int, card_id: str, prefix: str = "") -> CardState | None:
    if row[prefix + "due"] is None:
        return None
    return CardState(
        learner_id=learner_id,
        card_id=card_id,
        state=row[prefix + "state"],
        step=row[prefix + "step"],
        stability=row[prefix + "stability"],
        difficulty=row[prefix + "difficulty"],
        due=from_ms(row[prefix + "due"]),
        last_review=opt_dt(row[prefix + "last_review"]),
        reps=row[prefix + "reps"],
        lapses=row[prefix + "lapses"],
        first_day=row[prefix + "first_day"],
    )


def card_state_values(state: CardState) -> tuple[Any, ...]:
    """(learner_id, card_id, *STATE_COLUMNS) for an INSERT."""
    return (
        state.learner_id,
        state.card_id,
        state.state,
        state.step,
        state.stability,
        state.difficulty,
        to_ms(state.due),
        opt_ms(state.last_review),
        state.reps,
        state.lapses,
        state.first_day,
    )


def _state_to_json(state: CardState) -> dict[str, Any]:
    return {
        "state": state.state,
        "step": state.step,
        "stability": state.stability,
        "difficulty": state.difficulty,
        "due": to_ms(state.due),
        "last_review": opt_ms(state.last_review),
        "reps": state.reps,
        "lapses": state.lapses,
        "first_day": state.first_day,
    }


def previews_json(previews: tuple[Preview, ...]) -> str:
    return json.dumps(
        [{"rating": int(p.rating), "label": p.interval_label, "state": _state_to_json(p.state)} for p in previews]
    )


def attempt(row: Row, prefix: str = "") -> Attempt | None:
    if row[prefix + "id"] is None:
        return None
    learner_id, card_id = row[prefix + "learner_id"], row[prefix + "card_id"]
    previews = []
    for item in json.loads(row[prefix + "previews"]):
        state = card_state(item["state"], learner_id, card_id)
        assert state is not None
        previews.append(Preview(rating=Rating(item["rating"]), state=state, interval_label=item["label"]))
    return Attempt(
        id=row[prefix + "id"],
        learner_id=learner_id,
        card_id=card_id,
        chat_key=row[prefix + "chat_key"],
        status=AttemptStatus(row[prefix + "status"]),
        created_at=from_ms(row[prefix + "created_at"]),
        options=tuple(json.loads(row[prefix + "options"])),
        previews=tuple(previews),
        closed_at=opt_dt(row[prefix + "closed_at"]),
        topic=row[prefix + "topic"],
    )


def subscription(row: Row) -> Subscription:
    return Subscription(
        id=row["id"],
        chat_key=row["chat_key"],
        platform=row["platform"],
        chat_id=row["chat_id"],
        is_group=bool(row["is_group"]),
        learner_id=row["learner_id"],
        local_time=row["local_time"],
        timezone=row["timezone"],
        next_push_at=from_ms(row["next_push_at"]),
        paused_reason=row["paused_reason"],
        created_at=from_ms(row["created_at"]),
        always=bool(row["always"]),
        count_from=from_ms(row["count_from"]) if row["count_from"] else None,
    )


def match(row: Row) -> Match:
    return Match(
        id=row["id"],
        chat_key=row["chat_key"],
        platform=row["platform"],
        chat_id=row["chat_id"],
        starter_id=row["starter_id"],
        topic=row["topic"],
        questions=row["questions"],
        seconds=row["seconds"],
        solo=bool(row["solo"]),
        status=MatchStatus(row["status"]),
        card_ids=tuple(json.loads(row["card_ids"])),
        rounds_played=row["rounds_played"],
        idle_rounds=row["idle_rounds"],
        started_at=from_ms(row["started_at"]),
        end_reason=row["end_reason"],
        winner_id=row["winner_id"],
    )


def round_(row: Row) -> Round:
    return Round(
        id=row["id"],
        match_id=row["match_id"],
        chat_key=row["chat_key"],
        number=row["number"],
        card_id=row["card_id"],
        options=tuple(json.loads(row["options"])),
        correct_index=row["correct_index"],
        speed_bonus=row["speed_bonus"],
        opened_at=from_ms(row["opened_at"]),
        closes_at=from_ms(row["closes_at"]),
        closed=bool(row["closed"]),
        poll_id=row["poll_id"],
        message_id=row["message_id"],
    )


def round_answer(row: Row) -> RoundAnswer:
    return RoundAnswer(
        round_id=row["round_id"],
        learner_id=row["learner_id"],
        option_index=row["option_index"],
        correct=bool(row["correct"]),
        points=row["points"],
        elapsed_ms=row["elapsed_ms"],
        answered_at=from_ms(row["answered_at"]),
    )


TIME_COLUMNS = frozenset(
    {
        "created_at",
        "due",
        "last_review",
        "reviewed_at",
        "closed_at",
        "next_push_at",
        "answered_at",
        "unreachable_since",
        "started_at",
        "ended_at",
        "linked_at",
    }
)


def exported(row: Row) -> dict[str, Any]:
    """A row for an export: times as ISO 8601, JSON columns decoded."""
    out: dict[str, Any] = {}
    for key in row.keys():  # noqa: SIM118 (iterating a sqlite3.Row gives values)
        value = row[key]
        if key in TIME_COLUMNS and isinstance(value, int):
            out[key] = from_ms(value).isoformat()
        elif key in ("options", "previews") and isinstance(value, str):
            out[key] = json.loads(value)
        else:
            out[key] = value
    return out
