"""Topics answer to the names people type (`/question ethics`, `/quiz 5 llms`), declared as `aliases:` in a
deck's header; an alias that could mean two topics fails validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.core.bank import DeckError, QuestionBank
from bot.core.commands import Commands
from bot.core.study import StudyService
from bot.core.views import Reply
from tests.conftest import CONTENT, caller
from tests.fakes import FakeClock, MemoryStore
from tests.unit.test_bank import card


@pytest.fixture(scope="module")
def shipped() -> QuestionBank:
    return QuestionBank.load(CONTENT)


def asked_topic(bank: QuestionBank, reply: Reply) -> str:
    """The topic of the card whose question the reply shows."""
    text = " ".join(reply.plain_text().split())
    (asked,) = [c for c in bank.cards if " ".join(c.question.split()) in text]
    return asked.topic


@pytest.mark.parametrize(
    ("typed", "topic"),
    [
        ("ethics", "interpretability-ethics"),
        ("LLMs", "llm"),
        ("rnn", "sequence-models"),
        ("Computer Vision", "cnn-vision"),
        ("behavioural", "behavioral"),
        ("math", "maths"),
        ("responsible_ai", "interpretability-ethics"),
    ],
)
async def test_question_with_a_common_name_asks_a_card_of_that_topic(
    shipped: QuestionBank, typed: str, topic: str
) -> None:
    commands = Commands(StudyService(MemoryStore(), shipped, FakeClock()))
    for who in ("1", "2", "3"):  # three learners: three (new) cards, all from the one topic
        reply = await commands.run(caller(who), "question", typed)
        assert asked_topic(shipped, reply) == topic


def test_every_shipped_topic_has_aliases_and_each_finds_its_topic(shipped: QuestionBank) -> None:
    for topic in shipped.topics:
        aliases = shipped.aliases(topic.slug)
        assert len(aliases) >= 3, topic.slug
        for alias in aliases:
            assert shipped.find_topic(alias) == topic, alias
            assert shipped.find_topic(alias.upper()) == topic, alias


def test_slugs_names_and_unique_prefixes_still_find_topics(shipped: QuestionBank) -> None:
    assert shipped.find_topic("llm") == shipped.find_topic("Large language models") == shipped.find_topic("llms")
    found = shipped.find_topic("opt")
    assert found is not None and found.slug == "optimization"
    assert shipped.find_topic("astrology") is None and shipped.find_topic("  ") is None


def write_deck(path: Path, topics: dict[str, str], aliases: dict[str, list[str]], deck: str = "d") -> Path:
    cards = [card(f"{deck}-{slug}", topic=slug) for slug in topics]
    header = {"deck": deck, "title": "T", "topics": topics, "aliases": aliases, "cards": cards}
    path.write_text(yaml.safe_dump(header, sort_keys=False), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(DeckError) as info:
        QuestionBank.load(path)
    return info.value.problems


def test_aliases_load_and_find_their_topic(tmp_path: Path) -> None:
    path = write_deck(
        tmp_path / "d.yaml", {"fundamentals": "Fundamentals", "nlp": "NLP"}, {"nlp": ["Natural language", "text"]}
    )
    bank = QuestionBank.load(path)
    assert bank.aliases("nlp") == ("Natural language", "text") and bank.aliases("fundamentals") == ()
    found = bank.find_topic("natural_LANGUAGE")
    assert found is not None and found.slug == "nlp"
    assert "also: Natural language, text" in bank.summary()


def test_an_alias_that_is_another_topics_slug_name_or_alias_is_refused(tmp_path: Path) -> None:
    topics = {"fundamentals": "Fundamentals", "nlp": "NLP and embeddings", "llm": "Large language models"}
    aliases = {
        "fundamentals": ["basics", "nlp and embeddings"],  # another topic's name
        "nlp": ["text", "llm"],  # another topic's slug
        "llm": ["basics", "chat models"],  # fundamentals' alias
    }
    found = problems(write_deck(tmp_path / "d.yaml", topics, aliases))
    assert found == [
        "d.yaml: deck field 'aliases.fundamentals': alias 'nlp and embeddings' is already the name of topic 'nlp'",
        "d.yaml: deck field 'aliases.nlp': alias 'llm' is already the slug of topic 'llm'",
        "d.yaml: deck field 'aliases.llm': alias 'basics' is already the alias of topic 'fundamentals'",
    ]


def test_a_clash_across_two_decks_names_the_later_file(tmp_path: Path) -> None:
    write_deck(tmp_path / "a.yaml", {"fundamentals": "Fundamentals"}, {"fundamentals": ["basics"]}, deck="a")
    write_deck(tmp_path / "b.yaml", {"maths": "Maths"}, {"maths": ["Basics"]}, deck="b")
    assert problems(tmp_path) == [
        "b.yaml: deck field 'aliases.maths': alias 'Basics' is already the alias of topic 'fundamentals'"
    ]


def test_two_decks_sharing_a_topic_may_both_name_the_same_alias(tmp_path: Path) -> None:
    write_deck(tmp_path / "a.yaml", {"fundamentals": "Fundamentals"}, {"fundamentals": ["basics"]}, deck="a")
    write_deck(tmp_path / "b.yaml", {"fundamentals": "Fundamentals"}, {"fundamentals": ["basics", "intro"]}, deck="b")
    bank = QuestionBank.load(tmp_path)
    assert bank.aliases("fundamentals") == ("basics", "intro")


def test_malformed_aliases_are_refused_with_the_reason(tmp_path: Path) -> None:
    topics = {"fundamentals": "Fundamentals"}
    aliases = {
        "fundamentals": ["weak", "42", "c++", "x" * 41, "Fundamentals", "intro", "INTRO"],
        "quantum": ["qm"],
    }
    found = problems(write_deck(tmp_path / "d.yaml", topics, aliases))
    field = "d.yaml: deck field 'aliases.fundamentals'"
    assert found == [
        f"{field}: alias 'weak' is a word the commands read (/question weak ...)",
        f"{field}: alias '42': use letters, digits, spaces and hyphens, with at least one letter",
        f"{field}: alias 'c++': use letters, digits, spaces and hyphens, with at least one letter",
        f"{field}: alias '{'x' * 41}': at most 40 characters",
        f"{field}: alias 'Fundamentals' repeats the topic's own slug or name",
        f"{field}: alias 'INTRO' appears twice",
        "d.yaml: deck field 'aliases.quantum': unknown topic 'quantum' (declared: fundamentals)",
    ]
