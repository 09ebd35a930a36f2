"""The terminal chat as a user runs it: `studybot` with piped input, in a subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def run_bot(tmp_path: Path, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN")}
    env["STUDYBOT_DB"] = str(tmp_path / "data" / "studybot.db")
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )


def first_question(output: str) -> str:
    marker = "Answer in your own words"
    before = output.split(marker)[0].strip().splitlines()
    return before[-1].strip()


def test_piped_question_choice_and_rating_persist_across_runs(tmp_path: Path) -> None:
    first = run_bot(tmp_path, "/question\n1\n4\n")  # ask, show the answer, rate Easy
    assert first.returncode == 0, first.stderr
    assert "Model answer" in first.stdout
    assert "Rated Easy" in first.stdout
    asked = first_question(first.stdout)
    assert asked.endswith("?") or asked.endswith(".")

    con = sqlite3.connect(tmp_path / "data" / "studybot.db")
    assert con.execute("SELECT COUNT(*), MIN(rating) FROM reviews").fetchone() == (1, 4)
    con.close()

    second = run_bot(tmp_path, "/question\n/stats\n")
    assert second.returncode == 0, second.stderr
    assert first_question(second.stdout) != asked  # the rated card is not new again
    assert "Cards seen: 1 of" in second.stdout


def test_multiple_choice_by_letter_and_a_free_text_answer(tmp_path: Path) -> None:
    result = run_bot(tmp_path, "/question\n2\nB\n2\n/question\nbackpropagation uses the chain rule\n/quit\n", "chat")
    assert result.returncode == 0, result.stderr
    assert ("Correct!" in result.stdout) or ("Not quite." in result.stdout)
    assert "key points" in result.stdout


def test_unknown_topic_and_unknown_command_are_explained(tmp_path: Path) -> None:
    result = run_bot(tmp_path, "/question astrology\n/dance\nhello\n")
    assert result.returncode == 0
    assert "I don't know the topic “astrology”" in result.stdout
    assert "I don't know /dance" in result.stdout
    assert "No question is open" in result.stdout


def test_content_check_rejects_a_broken_deck_with_exit_code_1(tmp_path: Path) -> None:
    deck = tmp_path / "broken.yaml"
    deck.write_text(
        "deck: broken\ntitle: Broken\ntopics: {basics: Basics}\ncards:\n"
        "  - id: a\n    topic: nope\n    kind: technical\n    difficulty: 9\n    question: Why?\n"
        "    answer: Because.\n    key_points: [x]\n",
        encoding="utf-8",
    )
    result = run_bot(tmp_path, "", "content", "check", str(deck))
    assert result.returncode == 1
    for expected in (
        "card 'a' field 'difficulty'",
        "card 'a' field 'key_points'",
        "unknown topic 'nope'",
        "card 'a' field 'quiz'",
    ):
        assert expected in result.stderr


def test_content_check_summarises_the_shipped_bank(tmp_path: Path) -> None:
    result = run_bot(tmp_path, "", "content", "check")
    assert result.returncode == 0, result.stderr
    assert "source article questions covered: 30/30" in result.stdout


def test_a_non_answer_in_the_terminal_leaves_the_question_open_and_stores_nothing(tmp_path: Path) -> None:
    result = run_bot(tmp_path, "/question\nhello\n7\n\x1b[A\n", "chat")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("I didn't take") == 2 and "Model answer" not in result.stdout
    assert "“7” is not one of the listed keys. Type 1, 2 or 3 to choose a button" in result.stdout
    assert result.stdout.count("[1] Show answer") == 3
    con = sqlite3.connect(tmp_path / "data" / "studybot.db")
    assert con.execute("SELECT COUNT(*) FROM reviews").fetchone() == (0,)
    assert con.execute("SELECT status FROM attempts").fetchall() == [("open",)]
    con.close()
    shown = run_bot(tmp_path, "1\n", "chat")  # a new session: no buttons listed yet, so "1" is text
    assert "I didn't take" in shown.stdout


def test_studybot_grade_prints_each_key_point_and_the_grader(tmp_path: Path) -> None:
    answer = "ReLU is max(0,x) but units can die and never activate again; sigmoid saturates so gradients vanish.\n"
    plain = run_bot(tmp_path, answer, "grade", "activation-functions-overview")
    assert plain.returncode == 0, plain.stderr
    assert "grader: lexical" in plain.stdout and "✓ [2] sigmoid saturates" in plain.stdout
    assert "✗ [4] GELU or SiLU" in plain.stdout

    as_json = run_bot(tmp_path, answer, "grade", "activation-functions-overview", "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["card"] == "activation-functions-overview" and data["grader"] == "lexical"
    assert 2 in data["covered"] and data["key_points"][2] == {"text": "sigmoid saturates", "covered": True}
    assert 0.0 <= data["score"] <= 1.0 and data["score"] == round(len(data["covered"]) / 6, 4)


def test_studybot_grade_refuses_an_unknown_card_and_an_empty_answer(tmp_path: Path) -> None:
    unknown = run_bot(tmp_path, "some answer\n", "grade", "activation-function")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.count("\n") == 1 and "activation-functions-overview" in unknown.stderr
    empty = run_bot(tmp_path, "", "grade", "softmax-function")
    assert empty.returncode == 2 and "no answer on stdin" in empty.stderr


def test_the_open_questions_keys_stay_valid_after_other_commands_and_ratings_answer_to_their_names(
    tmp_path: Path,
) -> None:
    result = run_bot(tmp_path, "/question\n1\n/help\n/topics\n0\ngood\n", "chat")
    assert result.returncode == 0, result.stderr
    assert "“0” is not one of the listed keys. Type 1, 2, 3 or 4 to choose a button" in result.stdout
    assert "Rated Good" in result.stdout and "No question is open" not in result.stdout
    con = sqlite3.connect(tmp_path / "data" / "studybot.db")
    assert con.execute("SELECT COUNT(*), MIN(rating) FROM reviews").fetchone() == (1, 3)
    con.close()


def test_a_letter_that_is_not_an_option_lists_the_valid_keys_and_grades_nothing(tmp_path: Path) -> None:
    result = run_bot(tmp_path, "/question\n2\nE\n/topics\nb\n", "chat")
    assert result.returncode == 0, result.stderr
    assert "“E” is not one of the listed keys. Type A, B, C, D or 1 to choose a button" in result.stdout
    assert "key points" not in result.stdout.split("“E”")[1].split("Correct")[0].split("Not quite")[0]
    assert ("Correct!" in result.stdout) or ("Not quite." in result.stdout)


def test_studybot_version_prints_the_installed_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = run_bot(tmp_path, "", "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"studybot {version('studybot')}"


def test_a_mock_interview_in_the_terminal_answers_by_line_skips_ends_and_reports(tmp_path: Path) -> None:
    answer = "The gradient flows backwards through the layers by the chain rule and the loss shrinks over training"
    result = run_bot(tmp_path, f"/interview 3\n{answer}\n/skip\n1\n/end\n/interview history\n", "chat")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Mock interview · 3 questions" in out and "Question 1 of 3" in out and "[1] Skip  [2] End interview" in out
    verdict = "key points." in out or "doesn't seem to be about this question" in out
    assert verdict and "Follow-up · question 1 of 3" in out  # coach mode: a verdict, then a follow-up
    assert "Question 1: " in out and "recorded as" in out  # /skip passed the follow-up: the question is scored
    assert "Question 2 skipped (scored 0, not reviewed)." in out  # key 1 pressed Skip
    assert "Interview report · " in out and "ended after 2 questions" in out
    assert "Your interviews, latest first" in out and "(ended early)" in out
    con = sqlite3.connect(tmp_path / "data" / "studybot.db")
    assert con.execute("SELECT COUNT(*) FROM reviews WHERE mode = 'interview'").fetchone() == (1,)
    assert con.execute("SELECT status FROM interviews").fetchall() == [("ended",)]
    con.close()


def test_export_in_the_terminal_goes_to_the_data_folder_and_never_overwrites_an_earlier_one(tmp_path: Path) -> None:
    first = run_bot(tmp_path, "/question\n1\n3\n/export\n/export\n", "chat")
    assert first.returncode == 0, first.stderr
    exports = tmp_path / "data" / "exports"
    saved = sorted(p.name for p in exports.iterdir())
    assert len(saved) == 2 and saved[0] != saved[1], saved
    for name in saved:
        assert f"to {exports / name}" in first.stdout
        assert json.loads((exports / name).read_text())["reviews"]  # each is a whole export
    assert not list(tmp_path.glob("*.json"))  # nothing dropped in the folder the chat started in


def test_solo_quiz_keys_answer_the_quiz_and_question_waits_for_it(tmp_path: Path) -> None:
    result = run_bot(tmp_path, "/question\n/quiz 2 60\n/question\nb\n/stopquiz\n1\n", "chat")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Your quiz is still running: answer its question first, or end it with /stopquiz." in out
    assert "(Locked in: B)" in out and "you: B · correct: " in out and "I didn't take" not in out
    assert "Stopped by " in out and "How well did you know it?" in out  # after the quiz, 1 is Show answer again


def test_deck_import_path_in_the_terminal_imports_a_csv_and_question_draws_from_it(tmp_path: Path) -> None:
    (tmp_path / "my notes.csv").write_text(
        "question,answer\nWhat is a residual connection?,Adding a block's input to its output.\n",
        encoding="utf-8",
    )
    result = run_bot(
        tmp_path,
        '/deck import "my notes.csv" notes\n/deck use notes\n/question\n/deck import nowhere.csv\n/deck import\n',
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Imported the deck notes from my notes.csv: 1 card." in out
    assert "This chat now practises from notes: 1 card" in out
    assert first_question(out) == "What is a residual connection?"
    assert "I can't find the file nowhere.csv." in out
    assert "To import a deck, type /deck import PATH." in out
