"""Operations commands: `studybot health` and `studybot backup` (no event loop, plain sqlite3)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

HEARTBEAT = "daily-tick"
HEALTHY_WITHIN_S = 180  # the tick runs every minute; three missed ticks is unhealthy


def health(db_path: Path, *, now: float | None = None, within_s: int = HEALTHY_WITHIN_S) -> tuple[bool, str]:
    """Whether the database opens and the scheduler ticked recently, with one line saying why."""
    if not db_path.exists():
        return False, f"unhealthy: no database at {db_path} (has the bot started?)"
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute("SELECT at FROM heartbeats WHERE name = ?", (HEARTBEAT,)).fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        return False, f"unhealthy: the database cannot be read: {exc}"
    if row is None:
        return False, "unhealthy: the scheduler has not ticked yet"
    age = (now if now is not None else time.time()) - row[0] / 1000
    if age > within_s:
        return False, f"unhealthy: the scheduler last ticked {age:.0f} s ago (limit {within_s} s)"
    return True, f"healthy: database opens, scheduler ticked {max(age, 0):.0f} s ago"


def backup(db_path: Path, target: Path) -> str:
    """A consistent copy of the live database (SQLite's online backup API), safe while the bot runs."""
    if not db_path.exists():
        raise FileNotFoundError(f"no database at {db_path}")
    if target.exists() and target.is_dir():
        target = target / f"studybot-{time.strftime('%Y%m%d-%H%M%S')}.db"
    live = {db_path.resolve(), *(Path(f"{db_path.resolve()}{suffix}") for suffix in ("-wal", "-shm"))}
    if target.resolve() in live:
        raise RuntimeError(f"{target} is the live database itself; choose another file or a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    destination = sqlite3.connect(target)
    try:
        source.backup(destination)
        learners = destination.execute("SELECT COUNT(*) FROM learners").fetchone()[0]
        check = destination.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        destination.close()
        source.close()
    if check != "ok":
        raise RuntimeError(f"the copy failed its integrity check: {check}")
    return f"backed up {learners} learner(s) to {target}"
