"""Free-text key-point matching."""

from __future__ import annotations

from bot.core.grading import grade, stem

POINTS = ("chain rule", "gradient of the loss for every weight", "vanishing gradients", "skip connections")


def test_case_punctuation_plurals_and_word_order_do_not_matter() -> None:
    result = grade("RULE (the chain one)! Gradients flow; every weight's loss gradient; skip-connection.", POINTS)
    assert result.covered == ("chain rule", "gradient of the loss for every weight", "skip connections")
    assert result.missed == ("vanishing gradients",)


def test_british_and_american_spellings_match() -> None:
    assert grade("we use batch normalisation", ("batch normalization",)).covered
    assert grade("regularizing the weights", ("weight regularisation",)).covered


def test_an_unrelated_answer_covers_nothing() -> None:
    result = grade("I would use a random forest instead.", POINTS)
    assert result.covered == () and result.score == 0.0


def test_an_empty_answer_covers_nothing() -> None:
    assert grade("", POINTS).missed == POINTS


def test_most_of_a_long_key_point_is_enough_but_one_word_is_not() -> None:
    point = ("gradient of the loss for every weight",)
    assert grade("the gradient of the loss", point).covered
    assert grade("the loss", point).missed


def test_stemming_keeps_short_and_irregular_words_stable() -> None:
    assert stem("classes") == stem("class")
    assert stem("probabilities") == stem("probability")
    assert stem("biases") == stem("bias")
    assert stem("relu") == "relu"


def test_word_order_and_inflection_are_free() -> None:
    assert grade("the gradients vanish in deep nets", ("vanishing gradients",)).covered
