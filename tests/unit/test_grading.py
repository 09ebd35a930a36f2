"""The offline grader: stems, accepted phrasings, the glossary, the off-topic guard and non-answers."""

from __future__ import annotations

import pytest

from bot.core.grading import Glossary, GlossaryError, Judgement, LexicalGrader, stem
from bot.core.model import Card, KeyPoint, Kind, Rating

RELU = Card(
    id="activations",
    deck="test",
    topic="basics",
    kind=Kind.TECHNICAL,
    difficulty=1,
    question="Why do neural networks need activation functions, and which ones are used?",
    answer="Activations add non-linearity. Sigmoid saturates; ReLU is max(0, x) but units can die; "
    "Leaky ReLU keeps a small slope for negative inputs. Softmax turns logits into probabilities.",
    key_points=(
        KeyPoint("introduce non-linearity"),
        KeyPoint("sigmoid saturates"),
        KeyPoint("dying ReLU", ("dead neurons", "units stuck at zero")),
        KeyPoint("leaky ReLU fixes dead units"),
    ),
    follow_ups=("Why is GELU used in transformers?", "What happens to a dead ReLU unit's gradient?"),
)
TRANSFER = Card(
    id="transfer",
    deck="test",
    topic="applied",
    kind=Kind.TECHNICAL,
    difficulty=1,
    question="What is transfer learning and how do you fine-tune a pretrained network?",
    answer="Start from pretrained weights, replace the head, fine-tune with a smaller learning rate, "
    "optionally freezing the early layers.",
    key_points=(KeyPoint("pretrained weights"), KeyPoint("smaller learning rate"), KeyPoint("freeze early layers")),
)
BATCHNORM = Card(
    id="batchnorm",
    deck="test",
    topic="basics",
    kind=Kind.TECHNICAL,
    difficulty=1,
    question="How does batch normalization work?",
    answer="It normalizes activations with the minibatch mean and variance, then a learnable scale and shift.",
    key_points=(KeyPoint("minibatch mean and variance"), KeyPoint("learnable scale and shift")),
)
GLOSSARY = Glossary((("batch normalization", "batch norm", "batchnorm", "bn"), ("learning rate", "lr")))


@pytest.fixture
def grader() -> LexicalGrader:
    return LexicalGrader([RELU, TRANSFER, BATCHNORM], GLOSSARY)


def covered(judgement: Judgement) -> list[str]:
    return [judgement.key_points[i].text for i in judgement.covered]


def test_an_accepted_phrasing_covers_its_point(grader: LexicalGrader) -> None:
    judgement = grader.grade(RELU, "ReLU is max(0,x), but neurons can die: dead neurons never activate again.")
    assert "dying ReLU" in covered(judgement)


def test_inflections_and_word_families_match_through_the_stemmer(grader: LexicalGrader) -> None:
    judgement = grader.grade(RELU, "a sigmoid saturation problem: for big inputs the sigmoid is flat")
    assert covered(judgement) == ["sigmoid saturates"]
    assert stem("saturates") == stem("saturation")
    assert stem("normalisation") == stem("normalization")


def test_hyphenated_and_joined_spellings_are_the_same_word(grader: LexicalGrader) -> None:
    assert "introduce non-linearity" in covered(grader.grade(RELU, "they introduce nonlinearity into the network"))


def test_the_glossary_expands_abbreviations_in_the_answer(grader: LexicalGrader) -> None:
    judgement = grader.grade(BATCHNORM, "BN: normalise w/ minibatch mean + variance, then learnable scale & shift")
    assert covered(judgement) == ["minibatch mean and variance", "learnable scale and shift"]


def test_a_point_needs_its_distinctive_word_not_just_the_common_ones(grader: LexicalGrader) -> None:
    answer = "Batch norm allows higher learning rates and makes training of the network more stable."
    assert "smaller learning rate" not in covered(grader.grade(TRANSFER, answer))


def test_an_off_topic_answer_earns_nothing_and_says_so(grader: LexicalGrader) -> None:
    answer = "Batch norm normalises with the minibatch mean and variance, and you can then use a smaller learning rate."
    judgement = grader.grade(RELU, answer)
    assert judgement.off_topic and judgement.covered == ()
    assert judgement.suggested_rating is Rating.AGAIN


def test_an_on_topic_answer_is_not_off_topic(grader: LexicalGrader) -> None:
    judgement = grader.grade(TRANSFER, "take pretrained weights, freeze the early layers and fine-tune the rest")
    assert not judgement.off_topic
    assert covered(judgement) == ["pretrained weights", "freeze early layers"]


@pytest.mark.parametrize(
    "text",
    ["hello", "7", "b", "idk", "I don't know", "ok thanks", "\x1b[A", "^[[A", "???", "   ", "42.0", "no idea, sorry"],
)
def test_non_answers_are_recognised(grader: LexicalGrader, text: str) -> None:
    assert grader.non_answer(RELU, text) is not None


def test_a_stray_letter_during_multiple_choice_names_the_valid_options(grader: LexicalGrader) -> None:
    assert grader.non_answer(RELU, "E", options=4) == "“E” is not one of the options (A, B, C, D)"


@pytest.mark.parametrize("text", ["ReLU dies", "BN then LR up", "sigmoid saturates, relu dies, leaky fixes it"])
def test_short_answers_in_the_cards_own_words_are_answers(grader: LexicalGrader, text: str) -> None:
    card = BATCHNORM if text.startswith("BN") else RELU
    assert grader.non_answer(card, text) is None


def test_the_follow_up_targets_what_was_missed(grader: LexicalGrader) -> None:
    judgement = grader.grade(RELU, "they add non-linearity to the network, and the sigmoid saturates")
    assert judgement.follow_up == "What happens to a dead ReLU unit's gradient?"


def test_suggested_rating_follows_the_share_of_points() -> None:
    def judged(covered: tuple[int, ...]) -> Judgement:
        return Judgement("c", "lexical", RELU.key_points, covered)

    assert judged((0, 1, 2, 3)).suggested_rating is Rating.EASY
    assert judged((0, 1)).suggested_rating is Rating.GOOD
    assert judged((0,)).suggested_rating is Rating.HARD
    assert judged(()).suggested_rating is Rating.AGAIN


def test_a_term_in_two_glossary_groups_is_refused() -> None:
    with pytest.raises(GlossaryError, match="group 2: 'bn' is already in group 1"):
        Glossary((("batch normalization", "bn"), ("bayesian network", "bn")))


def test_a_glossary_file_must_be_groups_of_terms() -> None:
    with pytest.raises(GlossaryError):
        Glossary.from_data({"groups": [["only one"]]})
    with pytest.raises(GlossaryError):
        Glossary.from_data(["lr", "learning rate"])
    assert len(Glossary.from_data({"groups": [["learning rate", "lr"]]})) == 1
