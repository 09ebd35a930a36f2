"""The offline grader's rules, one behaviour at a time: the glossary file, word weights, the share of a
point an answer must hold, word families, the off-topic guard, non-answers and the `studybot grade --json` output.

(tests/unit/test_grading.py covers the main paths; these pin the edges a learner or a content author meets.)
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from bot.core.grading import Glossary, GlossaryError, Judgement, LexicalGrader, stem, words
from bot.core.model import Card, KeyPoint, Kind


def card(card_id: str, question: str, answer: str, *points: KeyPoint | str, follow_ups: tuple[str, ...] = ()) -> Card:
    return Card(
        id=card_id,
        deck="test",
        topic="basics",
        kind=Kind.TECHNICAL,
        difficulty=1,
        question=question,
        answer=answer,
        key_points=tuple(p if isinstance(p, KeyPoint) else KeyPoint(p) for p in points),
        follow_ups=follow_ups,
    )


RELU = card(
    "activations",
    "Why do neural networks need activation functions, and which ones are used?",
    "Activations add non-linearity. Sigmoid saturates; ReLU is max(0, x) but units can die. "
    "Softmax turns logits into probabilities.",
    "introduce non-linearity",
    "sigmoid saturates",
    KeyPoint("dying ReLU", ("dead neurons",)),
    "softmax gives probabilities",
    follow_ups=("Why does a saturated sigmoid slow learning down?", "What happens to a dead ReLU unit?"),
)
TRANSFER = card(
    "transfer",
    "What is transfer learning and how do you fine-tune a pretrained network?",
    "Start from pretrained weights, replace the head, fine-tune with a smaller learning rate, "
    "optionally freezing the early layers.",
    "pretrained weights",
    "smaller learning rate",
    "freeze early layers",
)
BATCHNORM = card(
    "batchnorm",
    "How does batch normalization work?",
    "It normalizes activations with the minibatch mean and variance, then a learnable scale and shift.",
    "minibatch mean and variance",
    "learnable scale and shift",
)
EMBEDDINGS = card(
    "embeddings",
    "How are embedding layers trained and initialised?",
    "Only the looked-up rows get gradients, so the gradients are sparse; random initialisation breaks the "
    "symmetry between rows, and residual connections with layer normalization keep deep stacks trainable.",
    "sparse gradients",
    "symmetry breaking",
    "layer normalization",
    "residual connections",
)
DROPOUT = card(
    "dropout",
    "What does dropout do?",
    "It zeroes random units while training, a regularization that curbs co-adaptation.",
    "regularization",
    KeyPoint("more training data helps too", ("use more examples",)),
)


@pytest.fixture
def grader() -> LexicalGrader:
    return LexicalGrader([RELU, TRANSFER, BATCHNORM, EMBEDDINGS, DROPOUT])


def covered(judgement: Judgement) -> list[str]:
    return [judgement.key_points[i].text for i in judgement.covered]


# --- the glossary file ----------------------------------------------------------------------------

SHAPE = "the glossary is a mapping with one key, 'groups': a list of lists of terms"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (None, SHAPE),  # an empty file
        (["learning rate", "lr"], SHAPE),
        ({"groups": [["learning rate", "lr"]], "group": [["batch norm", "bn"]]}, SHAPE),  # a misspelt second key
        ({"groups": "learning rate, lr"}, SHAPE),
        ({"groups": [["learning rate", "lr"], "batch norm, bn"]}, "group 2: a list of non-empty terms"),
        ({"groups": [["learning rate", "lr"], ["weight decay", 0.01]]}, "group 2: a list of non-empty terms"),
        ({"groups": [["learning rate", "  "]]}, "group 1: a list of non-empty terms"),
        ({"groups": [["learning rate"]]}, "group 1: needs a canonical term and at least one other"),
        ({"groups": [["learning rate", "lr"], ["weight decay", "?!"]]}, "group 2: '?!' has no words"),
        (
            {"groups": [["sgdr", "stochastic gradient descent with warm restarts"]]},
            "group 1: 'stochastic gradient descent with warm restarts' is longer than 5 words",
        ),
    ],
)
def test_a_malformed_glossary_file_is_refused_with_what_is_wrong_and_where(data: object, problem: str) -> None:
    with pytest.raises(GlossaryError) as refused:
        Glossary.from_data(data)
    assert str(refused.value) == problem


def test_the_glossary_rewrites_each_synonym_to_its_groups_first_term_the_longest_match_first() -> None:
    glossary = Glossary.from_data(
        {"groups": [["learning rate", "lr"], ["annealing", "lr decay", "learning rate decay"]]}
    )
    assert glossary.rewrite(words("Use LR decay, not a fixed LR")) == [
        "use",
        "annealing",
        "not",
        "a",
        "fixed",
        "learning",
        "rate",
    ]
    assert glossary.rewrite(words("learning rate decay")) == ["annealing"]
    assert len(glossary) == 2


def test_a_canonical_term_that_starts_with_one_of_its_synonyms_stays_whole() -> None:
    glossary = Glossary.from_data(
        {"groups": [["guardrail metrics", "guardrails"], ["gradient-boosted trees", "gradient boosting", "gbdt"]]}
    )
    assert glossary.rewrite(words("Guardrail metrics, guardrails; gradient-boosted trees or GBDT")) == [
        *("guardrail", "metrics", "guardrail", "metrics"),
        *("gradient", "boosted", "trees", "or", "gradient", "boosted", "trees"),
    ]
    assert LexicalGrader([], glossary).terms("guardrail metrics") == ["guardrail", "metric"]


# --- words ----------------------------------------------------------------------------------------


def test_british_spellings_stem_like_american_ones_for_any_word_even_one_never_seen_before() -> None:
    syllables = ("ba", "ko", "ru", "ti", "ve", "lu", "mo", "ne", "sa", "do")
    rng = random.SystemRandom()  # a fresh word each run, so it cannot have been stemmed (and cached) before
    root = "".join(rng.choice(syllables) for _ in range(5))
    for british, american in (("isation", "ization"), ("ise", "ize"), ("ised", "ized"), ("ising", "izing")):
        stemmed = stem(root + british)
        assert isinstance(stemmed, str) and stemmed.startswith(root[:4]), (root, british, stemmed)
        assert stemmed == stem(root + american), (root, british)


def test_negations_become_not_and_single_letters_are_no_words_but_two_letter_abbreviations_are(
    grader: LexicalGrader,
) -> None:
    text = "It isn't convex, never smooth, without a doubt: x or GD"
    assert grader.terms(text) == ["not", "convex", "not", "smooth", "not", "doubt", "gd"]


def test_a_hyphenated_word_in_the_answer_also_counts_joined(grader: LexicalGrader) -> None:
    assert grader.present_terms("a non-linear map") == {"not", "linear", "map", "nonlinear"}
    point = card("nonlinear", "Why stack layers?", "Each adds a nonlinear activation.", "nonlinear activation")
    judgement = LexicalGrader([point, RELU]).grade(point, "each layer applies a non-linear activation")
    assert covered(judgement) == ["nonlinear activation"]


def test_rare_words_weigh_more_than_words_every_card_shares_and_everyday_words_weigh_little() -> None:
    cards = [
        card("a", "How does momentum help a network?", "Momentum smooths the updates."),
        card("b", "How does pooling help a network?", "Pooling downsamples."),
        card("c", "How does attention help a network?", "Attention weighs tokens."),
    ]
    grader = LexicalGrader(cards)
    assert grader.weight(stem("momentum")) == pytest.approx(1.0)  # in one card of three
    assert grader.weight(stem("network")) == pytest.approx(math.log(2) / math.log(4))  # in all three
    assert grader.weight(stem("models")) == pytest.approx(0.15)  # an everyday word
    assert grader.weight(stem("quokka")) == pytest.approx(1.0)  # in no card: as rare as can be


# --- how much of a point an answer must hold ----------------------------------------------------------


def test_the_distinctive_word_of_a_point_outweighs_words_every_card_shares() -> None:
    cards = [
        card(
            "momentum", "How does momentum help neural networks?", "It averages updates.", "momentum in neural networks"
        ),
        card("pooling", "How does pooling help neural networks?", "It downsamples feature maps."),
        card("attention", "How does attention help neural networks?", "It weighs tokens."),
        card("dropout", "How does dropout help neural networks?", "It zeroes units."),
    ]
    grader = LexicalGrader(cards)
    assert covered(grader.grade(cards[0], "add momentum to SGD")) == ["momentum in neural networks"]


def test_one_word_of_a_three_word_point_is_not_enough(grader: LexicalGrader) -> None:
    judgement = grader.grade(BATCHNORM, "it normalizes, then shifts the activations")
    assert "learnable scale and shift" not in covered(judgement)


def test_half_of_a_points_weight_covers_it_when_that_half_is_its_rarest_word(grader: LexicalGrader) -> None:
    judgement = grader.grade(EMBEDDINGS, "deep stacks train because of residual blocks")
    assert covered(judgement) == ["residual connections"]


def test_a_one_word_point_is_covered_by_that_word(grader: LexicalGrader) -> None:
    assert covered(grader.grade(DROPOUT, "dropout is a regularization technique")) == ["regularization"]


def test_an_accepted_phrasing_of_everyday_words_still_counts(grader: LexicalGrader) -> None:
    assert covered(grader.grade(DROPOUT, "just use more examples")) == ["more training data helps too"]


def test_the_rarest_word_of_a_point_is_the_least_shared_not_the_last_in_the_alphabet() -> None:
    cards = [
        card(
            "finetune",
            "How do you fine-tune a pretrained network?",
            "Use a lower learning rate.",
            "lower learning rate",
        ),
        card("optimizers", "How do you pick a learning rate?", "Run a learning rate finder."),
        card("pooling", "What does pooling do?", "It downsamples feature maps."),
    ]
    grader = LexicalGrader(cards)
    assert grader.grade(cards[0], "fine-tune it with a higher learning rate").covered == ()
    assert grader.grade(cards[0], "fine-tune it with a lower learning rate").covered == (0,)


def test_a_verb_alone_does_not_cover_a_point_with_a_hyphenated_word(grader: LexicalGrader) -> None:
    judgement = grader.grade(RELU, "sigmoid and tanh introduce saturation")
    assert covered(judgement) == ["sigmoid saturates"]


# --- word families --------------------------------------------------------------------------------


def test_word_families_match_both_ways_from_five_letters(grader: LexicalGrader) -> None:
    assert "sparse gradients" in covered(grader.grade(EMBEDDINGS, "the gradient sparsity of embedding rows"))
    assert "symmetry breaking" in covered(grader.grade(EMBEDDINGS, "random init breaks symmetric rows"))


def test_a_short_word_is_no_family_of_a_longer_one(grader: LexicalGrader) -> None:
    judgement = grader.grade(EMBEDDINGS, "clip the gradient norm of each embedding layer")
    assert "layer normalization" not in covered(judgement)


# --- the off-topic guard --------------------------------------------------------------------------

# One card per topic word: each word belongs to exactly one card, so each weighs the same.
_TOPICS = {
    "dropout": "dropout",
    "momentum": "momentum velocity inertia",
    **{
        word: word
        for word in (
            "pooling",
            "attention",
            "embedding",
            "tokenizer",
            "residual",
            "convolution",
            "recurrence",
            "quantization",
            "distillation",
            "augmentation",
        )
    },
}
_OTHERS = [w for w in _TOPICS if w not in ("dropout", "momentum")]
TOPIC_CARDS = [card(name, f"What is {name}?", f"{text.capitalize()}.", name) for name, text in _TOPICS.items()]
TOPIC_CARDS[0] = replace(TOPIC_CARDS[0], answer="Dropout makes models work better.")  # everyday words weigh little


@pytest.mark.parametrize(
    ("answer", "off_topic"),
    [
        ("dropout, momentum and velocity", False),  # another card fits twice as well: still on topic
        ("dropout, momentum, velocity and inertia", True),  # three times as well
        ("momentum and velocity", True),  # none of the card's words
        ("dropout with " + ", ".join(_OTHERS[:9]), False),  # one word in ten is the card's: enough
        ("dropout with " + ", ".join(_OTHERS[:10]), True),  # one in eleven is not
        ("dropout makes the model work, with momentum, velocity and inertia", True),  # everyday words do not help
        ("quokkas hop around Rottnest", False),  # no card's words at all: maybe right in other words
    ],
)
def test_an_answer_is_off_topic_when_too_little_of_it_is_the_cards_or_another_card_fits_far_better(
    answer: str, off_topic: bool
) -> None:
    judgement = LexicalGrader(TOPIC_CARDS).grade(TOPIC_CARDS[0], answer)
    assert judgement.off_topic is off_topic
    if off_topic:
        assert judgement.covered == ()


# --- non-answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("42", "a number or symbols alone is not an answer"),
        ("3.14 %", "a number or symbols alone is not an answer"),
        ("?!", "punctuation alone is not an answer"),
        ("b", "a letter or two is not an answer"),
        ("qz", "a letter or two is not an answer"),
        ("CNN", "it is too short to grade"),
        ("overfitting", "it is too short to grade"),
        ("sigmoid", "it is too short to grade"),  # the card's own word, but one word
        ("weights explode", "it is too short to grade"),  # two words, neither the card's
    ],
)
def test_what_a_non_answer_is_told(grader: LexicalGrader, text: str, reason: str) -> None:
    assert grader.non_answer(RELU, text) == reason


@pytest.mark.parametrize(
    "text",
    [
        "softmax probabilities",  # two words of the card's model answer
        "weights explode quickly",  # three content words, whoever's they are
    ],
)
def test_short_answers_that_are_still_answers(grader: LexicalGrader, text: str) -> None:
    assert grader.non_answer(RELU, text) is None


# --- the card's index -----------------------------------------------------------------------------


def test_a_card_the_grader_was_not_built_with_is_graded_on_its_own_points() -> None:
    grader = LexicalGrader([RELU, BATCHNORM])
    answer = "fine-tune the pretrained network with a smaller learning rate, frozen early layers and new weights"
    judgement = grader.grade(TRANSFER, answer)
    assert not judgement.off_topic
    assert covered(judgement) == ["pretrained weights", "smaller learning rate", "freeze early layers"]


def test_an_edited_card_is_graded_on_its_new_points(grader: LexicalGrader) -> None:
    answer = "take pretrained weights and freeze the early layers"
    assert grader.grade(TRANSFER, answer).covered == (0, 2)
    edited = replace(TRANSFER, key_points=(KeyPoint("pretrained weights"), KeyPoint("discriminative learning rates")))
    assert grader.grade(edited, answer).covered == (0,)


# --- follow-ups and the JSON of `studybot grade --json` -----------------------------------------------


def test_the_follow_up_asks_about_every_missed_point_not_only_the_last(grader: LexicalGrader) -> None:
    judgement = grader.grade(RELU, "the sigmoid saturates for large inputs, and activations add non-linearity")
    assert covered(judgement) == ["introduce non-linearity", "sigmoid saturates"]
    assert judgement.follow_up == "What happens to a dead ReLU unit?"


def test_the_json_of_a_judgement_lists_each_point_the_score_and_the_rating(grader: LexicalGrader) -> None:
    judgement = grader.grade(TRANSFER, "take pretrained weights, freeze the early layers and fine-tune the rest")
    assert judgement.as_dict() == {
        "card": "transfer",
        "grader": "lexical",
        "score": 0.6667,
        "covered": [0, 2],
        "key_points": [
            {"text": "pretrained weights", "covered": True},
            {"text": "smaller learning rate", "covered": False},
            {"text": "freeze early layers", "covered": True},
        ],
        "off_topic": False,
        "misconceptions": [],
        "feedback": None,
        "follow_up": None,
        "suggested_rating": "Good",
    }
    model = Judgement(
        "transfer",
        "llm",
        TRANSFER.key_points,
        (1,),
        misconceptions=("freezing everything is fine",),
        feedback="Name the head.",
        follow_up="Why a smaller rate?",
    )
    assert model.as_dict() | {"key_points": None} == {
        "card": "transfer",
        "grader": "llm",
        "score": 0.3333,
        "covered": [1],
        "key_points": None,
        "off_topic": False,
        "misconceptions": ["freezing everything is fine"],
        "feedback": "Name the head.",
        "follow_up": "Why a smaller rate?",
        "suggested_rating": "Hard",
    }
