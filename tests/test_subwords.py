"""Subwords: n-grams as gensim computes them, fastText's vector of an unseen word,
coverage with n-grams."""

from __future__ import annotations

import numpy as np
import pytest

from utils.pretraining import Word2VecConfig
from utils.subwords import (
    char_ngrams,
    ngram_inventory,
    ngram_mean,
    subword_vectors,
    train_fasttext,
)


@pytest.mark.parametrize(
    ("word", "low", "high"),
    [("where", 3, 6), ("a", 3, 6), ("banana", 2, 4), ("čaj", 1, 3)],
)
def test_char_ngrams_match_gensim(word: str, low: int, high: int) -> None:
    from gensim.models.fasttext_inner import compute_ngrams

    assert char_ngrams(word, low, high) == compute_ngrams(word, low, high)


def test_inventory_holds_every_ngram() -> None:
    assert ngram_inventory(["ab"], 2, 3) == {"<a", "ab", "b>", "<ab", "ab>"}


@pytest.fixture(scope="module")
def fasttext():
    rng = np.random.default_rng(0)
    stems = ["play", "work", "walk", "talk", "jump"]
    docs = [
        [f"{rng.choice(stems)}{rng.choice(['', 'ed', 'ing', 's'])}" for _ in range(30)]
        for _ in range(60)
    ]
    wv, seconds = train_fasttext(
        docs,
        Word2VecConfig(dim=8, epochs=1, min_count=3, seed=0),
        max_n=4,
        bucket=5_000,
    )
    return wv


def test_unseen_word_vector_is_the_mean_of_its_ngram_buckets(fasttext) -> None:
    assert "replaying" not in fasttext.key_to_index
    np.testing.assert_allclose(
        ngram_mean("replaying", fasttext), fasttext["replaying"], atol=1e-6
    )


def test_subword_vectors_keep_seen_words_and_words_with_seen_ngrams(fasttext) -> None:
    table = subword_vectors(["played", "replaying", "qqqq", "played"], fasttext)
    assert table.words == [
        "played",
        "replaying",
    ]  # qqqq shares no n-gram with the training words
    np.testing.assert_allclose(table["replaying"], fasttext["replaying"])
