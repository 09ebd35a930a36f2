"""ProgressRepository: what /stats' picture needs, in one read (the core's ProgressStore port).

One statement (its own transaction, one round trip): the learner's card states and, from the review
log, the number of reviews on each local day since a given day, UNION ALL'd on the kind of row. The
day range uses the reviews (learner_id, local_day) index; ISO dates compare as text.
"""

from __future__ import annotations

from bot.core.progress import ProgressHistory
from bot.storage import rows
from bot.storage.db import Database
from bot.storage.rows import STATE_COLUMNS

_PROGRESS_HISTORY = (
    f"SELECT 0 AS kind, card_id AS name, {', '.join(STATE_COLUMNS)}, 0 AS reviews "
    "FROM card_states WHERE learner_id = ? "
    f"UNION ALL SELECT 1, local_day, {', '.join('NULL' for _ in STATE_COLUMNS)}, COUNT(*) "
    "FROM reviews WHERE learner_id = ? AND local_day >= ? GROUP BY local_day"
)


class ProgressRepository:
    db: Database

    async def progress_history(self, learner_id: int, since_day: str) -> ProgressHistory:
        """The learner's card states and their review counts per local day from `since_day` (YYYY-MM-DD) on."""
        found = await self.db.fetch(_PROGRESS_HISTORY, learner_id, learner_id, since_day)
        states = []
        per_day: dict[str, int] = {}
        for row in found:
            if row["kind"] == 0:
                state = rows.card_state(row, learner_id, row["name"])
                assert state is not None  # due is NOT NULL
                states.append(state)
            else:
                per_day[row["name"]] = int(row["reviews"])
        return ProgressHistory(states=tuple(states), reviews_per_day=per_day)
