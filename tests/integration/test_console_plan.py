"""/plan and /question weak in the terminal chat, as a user runs it: `studybot` with piped input."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.test_console import run_bot

pytestmark = pytest.mark.slow


def test_a_plan_and_a_weak_question_in_the_terminal(tmp_path: Path) -> None:
    target = datetime.now(UTC).date() + timedelta(days=40)  # the learner's zone is UTC by default
    result = run_bot(tmp_path, f"/plan {target.isoformat()} transformers\n/question weak\n/plan\n/quit\n", "chat")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Plan set: interview on {target:%a %d %b %Y} (UTC)" in out
    assert "Topics: transformers (11 cards)." in out and "I set your daily new cards to 1 (it was 10)" in out
    assert "Not enough reviews yet to tell your weakest topic" in out
    assert "Attention and transformers · " in out  # the plan's topic comes first
    assert "[1] Show answer" in out
    assert f"40 days to your interview ({target:%a %d %b}) · 11 cards of your plan still new" in out

    con = sqlite3.connect(tmp_path / "data" / "studybot.db")
    assert con.execute("SELECT target_day, topics, new_per_day FROM plans").fetchall() == [
        (target.isoformat(), '["transformers"]', 1)
    ]
    con.close()

    bad = run_bot(tmp_path, "/plan 2020-01-01\n/plan someday\n", "chat")
    assert "01 Jan 2020 has already passed. A plan needs a date after today." in bad.stdout
    assert "“someday” is not a date written as YYYY-MM-DD." in bad.stdout
