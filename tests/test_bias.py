"""Bias: WEAT effect size and permutation p-value by hand and by brute force; gender
direction; projection."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from utils.bias import (
    associations,
    gender_direction,
    neutralize,
    project,
    recoverable_labels,
    weat,
    weat_effect_size,
)
from utils.data import WordVectors

RNG = np.random.default_rng(0)


def test_effect_size_by_hand_and_scale_invariance() -> None:
    x, y = np.array([[1.0, 0.0], [1.0, 0.2]]), np.array([[0.0, 1.0], [0.3, 1.0]])
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    s = np.array(
        [1.0, (1 - 0.2) / np.hypot(1, 0.2), -1.0, (0.3 - 1) / np.hypot(0.3, 1)]
    )
    expected = (s[:2].mean() - s[2:].mean()) / s.std(ddof=1)
    assert weat_effect_size(x, y, a, b) == pytest.approx(expected)
    assert weat_effect_size(5 * x, y, 3 * a, b) == pytest.approx(expected)
    assert weat_effect_size(y, x, a, b) == pytest.approx(-expected)
    np.testing.assert_allclose(associations(x, a, b), s[:2])


def test_p_value_matches_the_exact_permutation_distribution() -> None:
    words = [f"w{i}" for i in range(12)]
    table = WordVectors(words, RNG.standard_normal((12, 5)).astype(np.float32))
    x, y, a, b = words[:4], words[4:8], words[8:10], words[10:]
    result = weat(table, x, y, a, b, permutations=20_000, seed=1)
    s = associations(table.vectors[:8], table.vectors[8:10], table.vectors[10:])
    observed = s[:4].sum() - s[4:].sum()
    exact = np.mean(
        [
            s[list(c)].sum() - np.delete(s, list(c)).sum() >= observed - 1e-12
            for c in combinations(range(8), 4)
        ]
    )
    assert result.p_value == pytest.approx(exact, abs=0.015)
    assert result.used == {"X": 4, "Y": 4, "A": 2, "B": 2} and result.missing == []


def test_missing_words_are_reported() -> None:
    table = WordVectors(
        ["a", "b", "c", "d", "e"], RNG.standard_normal((5, 3)).astype(np.float32)
    )
    result = weat(table, ["a", "zz"], ["b"], ["c", "d"], ["e"], permutations=100)
    assert result.missing == ["zz"] and result.used["X"] == 1


def test_gender_direction_is_signed_and_neutralize_removes_it() -> None:
    g = np.array([1.0, 0.0, 0.0])
    words = ["she", "he", "woman", "man", "nurse", "engineer"]
    vectors = np.array(
        [[1, 1, 0], [-1, 1, 0], [1, 0, 1], [-1, 0, 1], [0.5, 1, 1], [-0.5, 0, 1]],
        np.float32,
    )
    table = WordVectors(words, vectors)
    direction = gender_direction(table, [("she", "he"), ("woman", "man")])
    assert abs(direction @ g) == pytest.approx(1.0, abs=1e-6) and direction @ g > 0
    positions = project(vectors[4:], direction)
    assert positions[0] > 0 > positions[1]
    cleaned = neutralize(vectors, direction)
    np.testing.assert_allclose(cleaned @ direction, 0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(cleaned, axis=1), 1)


def test_labels_are_recoverable_from_neighbourhoods_after_neutralizing() -> None:
    # Groups that differ along the direction AND a second axis: projection removes one.
    labels = np.r_[np.zeros(60), np.ones(60)]
    rows = RNG.standard_normal((120, 6)) * 0.3
    rows[:, 0] += np.where(labels == 1, 2.0, -2.0)
    rows[:, 1] += np.where(labels == 1, 1.0, -1.0)
    direction = np.eye(6)[0]
    assert recoverable_labels(rows, labels)["classifier"] > 0.95
    after = recoverable_labels(neutralize(rows, direction), labels)
    assert after["classifier"] > 0.9
    pure = RNG.standard_normal((120, 6)) * 0.3
    pure[:, 0] += np.where(labels == 1, 2.0, -2.0)
    assert recoverable_labels(neutralize(pure, direction), labels)["classifier"] < 0.75
