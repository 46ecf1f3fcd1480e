"""Senses: occurrence vectors are means of context vectors; typical words per cluster.
"""

from __future__ import annotations

import numpy as np

from utils.data import WordVectors
from utils.senses import occurrence_contexts, typical_context_words

TABLE = WordVectors(
    ["bank", "river", "water", "money", "loan", "the"],
    np.array(
        [[1, 1, 0], [0, 3, 0], [0, 1, 0.1], [2, 0, 0], [1, 0, 0.1], [0, 0, 1]],
        np.float32,
    ),
)


def test_each_occurrence_is_the_normalised_mean_of_its_known_context_words() -> None:
    docs = [["the", "river", "bank", "zzz"], ["money", "bank", "loan"], ["bank"]]
    vectors, bags = occurrence_contexts(docs, "bank", TABLE, window=1, skip={"the"})
    assert bags == [["river"], ["money", "loan"]]  # the lone 'bank' has no context
    assert np.allclose(vectors[0], [0, 1, 0])
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    expected = unit(unit(np.array([2.0, 0, 0])) + unit(np.array([1.0, 0, 0.1])))
    assert np.allclose(vectors[1], expected, atol=1e-6)


def test_typical_words_are_those_concentrated_in_a_cluster() -> None:
    bags = [["river", "water"], ["river"], ["money", "loan"], ["money", "river"]]
    frame = typical_context_words(bags, np.array([0, 0, 1, 1]), k=2, min_count=1)
    assert list(frame.columns) == ["group 1 (2 uses)", "group 2 (2 uses)"]
    assert list(frame.iloc[:, 0]) == ["water", "river"]
    assert set(frame.iloc[:, 1]) == {"money", "loan"}
