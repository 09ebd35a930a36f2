"""Deck validation: every problem reported at once, each naming file, card and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.core.bank import DeckError, QuestionBank


def card(card_id: str, **changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": card_id,
        "topic": "fundamentals",
        "kind": "technical",
        "difficulty": 1,
        "question": "What is a neuron?",
        "answer": "A weighted sum followed by a non-linearity.",
        "key_points": ["weighted sum", "bias", "activation"],
        "quiz": {
            "prompt": "What does a neuron compute?",
            "correct": "A weighted sum passed through a non-linearity",
            "distractors": ["A sort of its inputs", "The median of its inputs", "A random projection"],
            "explanation": "Weights, a bias and an activation.",
        },
        "follow_ups": ["Why the bias?", "Why a non-linearity?"],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def write(tmp_path: Path, cards: list[dict[str, object]], name: str = "deck.yaml", deck: str = "d") -> Path:
    path = tmp_path / name
    path.write_text(
        yaml.safe_dump({"deck": deck, "title": "T", "topics": {"fundamentals": "Fundamentals"}, "cards": cards}),
        encoding="utf-8",
    )
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(DeckError) as info:
        QuestionBank.load(path)
    return info.value.problems


def test_a_valid_deck_loads(tmp_path: Path) -> None:
    bank = QuestionBank.load(write(tmp_path, [card("neuron", seed=1), card("bias-term")]))
    assert len(bank) == 2
    assert bank.seeds()[1].id == "neuron"
    assert bank.find_topic("Fundamentals") is not None


def test_every_problem_is_listed_with_file_card_and_field(tmp_path: Path) -> None:
    quiz = dict(card("x")["quiz"])  # type: ignore[call-overload]
    long_quiz = {**quiz, "correct": "y" * 101, "explanation": "z" * 201}
    repeated = {**quiz, "distractors": ["A sort of its inputs", "A weighted sum passed through a non-linearity", "c"]}
    cards = [
        card("ok"),
        card("ok"),  # duplicate id
        card("wrong-topic", topic="quantum"),
        card("no-points", key_points=None),
        card("long-quiz", quiz=long_quiz),
        card("repeat", quiz=repeated),
        card("empty-distractors", quiz={**quiz, "distractors": []}),
        card("no-quiz", quiz=None),
        card("long-question", question="?" * 301),
    ]
    found = problems(write(tmp_path, cards))
    expected = [
        "deck.yaml: card 'ok' field 'id': duplicate id",
        "deck.yaml: card 'wrong-topic' field 'topic': unknown topic 'quantum'",
        "deck.yaml: card 'no-points' field 'key_points'",
        "deck.yaml: card 'long-quiz' field 'quiz.correct'",
        "deck.yaml: card 'long-quiz' field 'quiz.explanation'",
        "deck.yaml: card 'repeat' field 'quiz.distractors': repeats the correct option",
        "deck.yaml: card 'empty-distractors' field 'quiz.distractors'",
        "deck.yaml: card 'no-quiz' field 'quiz': a technical card needs a multiple-choice item",
        "deck.yaml: card 'long-question' field 'question'",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in found), (start, found)
    assert len(found) == len(expected)


def test_duplicates_across_decks_and_repeated_seeds_are_refused(tmp_path: Path) -> None:
    write(tmp_path, [card("a", seed=3)], "one.yaml", deck="one")
    write(tmp_path, [card("a"), card("b", seed=3)], "two.yaml", deck="two")
    found = problems(tmp_path)
    assert any("two.yaml: card 'a' field 'id': duplicate id, also in one.yaml" in p for p in found)
    assert any("two.yaml: card 'b' field 'seed': article question 3 is already card 'a'" in p for p in found)


def test_unreadable_yaml_and_missing_folders_are_reported(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("deck: [unclosed", encoding="utf-8")
    assert problems(tmp_path)[0].startswith("broken.yaml: cannot read the deck")
    assert "no such file" in problems(tmp_path / "nowhere")[0]


def test_a_behavioural_card_may_omit_the_quiz(tmp_path: Path) -> None:
    bank = QuestionBank.load(write(tmp_path, [card("story", kind="behavioral", quiz=None, follow_ups=None)]))
    (story,) = bank.cards
    assert story.quiz is None
