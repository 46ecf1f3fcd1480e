"""Cosine similarity, neighbours and space comparisons agree with reference computations (NumPy, scikit-learn, SciPy)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import rankdata, spearmanr
from sklearn.decomposition import PCA
from sklearn.metrics.pairwise import cosine_similarity as sklearn_cosine

from utils.data import WordVectors
from utils.similarity import (
    as_word_vectors,
    compare_spaces,
    cosine_similarity,
    embedding_word_vectors,
    nearest_neighbours,
    neighbour_agreement,
    neighbours_side_by_side,
    principal_components,
    spearman,
    typical_class,
    word_similarity_correlation,
)
from utils.text import Vocab

RNG = np.random.default_rng(0)
WORDS = [f"w{i}" for i in range(40)]
MATRIX = RNG.standard_normal((40, 6)).astype(np.float32)
TABLE = WordVectors(WORDS, MATRIX)


def test_cosine_matches_sklearn_and_zero_vectors_give_zero() -> None:
    a, b = MATRIX[:7].copy(), MATRIX[7:12].copy()
    a[3] = 0.0
    result = cosine_similarity(a, b)
    assert result.shape == (7, 5)
    np.testing.assert_allclose(result.numpy(), sklearn_cosine(a, b), atol=1e-6)
    assert torch.all(result[3] == 0) and not torch.isnan(result).any()
    np.testing.assert_allclose(cosine_similarity(a).numpy(), sklearn_cosine(a), atol=1e-6)


def test_cosine_of_single_vectors() -> None:
    u, v = MATRIX[0], MATRIX[1]
    expected = float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))
    assert cosine_similarity(u, v).shape == () and cosine_similarity(u, v).item() == pytest.approx(expected, abs=1e-6)
    assert cosine_similarity(MATRIX, v).shape == (40,) and cosine_similarity(u, MATRIX).shape == (40,)
    assert cosine_similarity(torch.tensor(u), torch.tensor(3 * u)).item() == pytest.approx(1.0, abs=1e-6)
    assert cosine_similarity(u, -u).item() == pytest.approx(-1.0, abs=1e-6)


def brute_force_neighbours(vector: np.ndarray, k: int, skip: set[int]) -> list[str]:
    unit = MATRIX / np.linalg.norm(MATRIX, axis=1, keepdims=True)
    scores = unit @ (vector / np.linalg.norm(vector))
    order = [i for i in np.argsort(-scores) if i not in skip]
    return [WORDS[i] for i in order[:k]]


def test_nearest_neighbours_of_a_word_exclude_the_word() -> None:
    frame = nearest_neighbours("w3", TABLE, k=5)
    assert frame["word"].tolist() == brute_force_neighbours(MATRIX[3], 5, {3})
    assert list(frame.index) == [1, 2, 3, 4, 5] and frame["cosine"].is_monotonic_decreasing
    expected = sklearn_cosine(MATRIX[[3]], MATRIX[[WORDS.index(w) for w in frame["word"]]])[0]
    np.testing.assert_allclose(frame["cosine"].to_numpy(), expected, atol=1e-6)


def test_nearest_neighbours_of_a_vector_and_other_table_forms() -> None:
    vector = MATRIX[3] + 0.01
    assert nearest_neighbours(vector, TABLE, k=4)["word"].tolist() == brute_force_neighbours(vector, 4, set())
    as_pair = nearest_neighbours("w3", (WORDS, torch.tensor(MATRIX)), k=5, exclude=["w10"])
    assert as_pair["word"].tolist() == brute_force_neighbours(MATRIX[3], 5, {3, 10})
    assert len(nearest_neighbours("w0", TABLE, k=100)) == 39
    with pytest.raises(KeyError):
        nearest_neighbours("unknown", TABLE)


def test_tables_from_a_vocabulary_and_an_embedding_weight() -> None:
    vocab = Vocab.build([["a", "a", "a", "b", "b", "c"]])  # [PAD], [UNK], a (3), b (2), c (1)
    weight = torch.arange(len(vocab) * 2, dtype=torch.float32).reshape(-1, 2)
    full = as_word_vectors((vocab, weight))
    assert full.words == vocab.itos and np.array_equal(full["b"], weight[vocab["b"]].numpy())
    frequent = embedding_word_vectors(vocab, weight, min_count=2)
    assert frequent.words == ["a", "b"] and np.array_equal(frequent.vectors, weight[[2, 3]].numpy())
    assert embedding_word_vectors(vocab, weight).words == ["a", "b", "c"]


def reference_space_correlation(a: np.ndarray, b: np.ndarray) -> float:
    rows, cols = np.triu_indices(len(a), k=1)
    return spearmanr(sklearn_cosine(a)[rows, cols], sklearn_cosine(b)[rows, cols]).statistic


def test_compare_spaces_matches_a_reference_and_ignores_rotation_and_scale() -> None:
    other = WordVectors(WORDS[::-1], RNG.standard_normal((40, 3)).astype(np.float32))  # another order and dimension
    rho, n = compare_spaces(TABLE, other)
    aligned = other.vectors[[other.index[w] for w in WORDS]]
    assert n == 40 and rho == pytest.approx(reference_space_correlation(MATRIX, aligned), abs=1e-6)
    rotation = np.linalg.qr(RNG.standard_normal((6, 6)))[0]
    rotated = WordVectors(WORDS, (5.0 * MATRIX @ rotation).astype(np.float32))
    assert compare_spaces(TABLE, rotated)[0] == pytest.approx(1.0, abs=1e-6)


def test_compare_spaces_uses_only_shared_requested_words() -> None:
    half = WordVectors(WORDS[:20] + ["extra"], np.vstack([MATRIX[:20], RNG.standard_normal((1, 6))]).astype(np.float32))
    rho, n = compare_spaces(TABLE, half, words=["w1", "w2", "w3", "w4", "w30", "extra", "w1"])
    assert n == 4 and rho == pytest.approx(1.0)
    assert np.isnan(compare_spaces(TABLE, half, words=["w1", "w2"])[0])


def test_word_similarity_correlation_matches_a_reference_and_counts_coverage() -> None:
    pairs = pd.DataFrame({"word1": ["w0", "w1", "w2", "w3", "w4", "nope"], "word2": ["w5", "w6", "w7", "w8", "w9", "w1"]})
    pairs["score"] = [3.0, 1.0, 4.0, 1.5, 9.0, 2.0]
    rho, covered = word_similarity_correlation(TABLE, pairs)
    cosines = [sklearn_cosine(MATRIX[[i]], MATRIX[[i + 5]])[0, 0] for i in range(5)]
    expected = np.corrcoef(rankdata(cosines), rankdata(pairs["score"][:5]))[0, 1]  # Spearman = Pearson of ranks
    assert covered == 5 and rho == pytest.approx(expected, abs=1e-6)
    assert word_similarity_correlation((WORDS, MATRIX), pairs.iloc[[0, 5]]) == (pytest.approx(np.nan, nan_ok=True), 1)


def test_spearman_matches_scipy_with_ties() -> None:
    x = np.array([1.0, 2.0, 2.0, 3.0, 5.0, 4.0, 4.0, 0.5])
    y = np.array([0.3, 0.1, 0.4, 0.4, 0.9, 0.2, 0.8, 0.0])
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert spearman(x, 2 * x + 1) == pytest.approx(1.0) and spearman(x, -x) == pytest.approx(-1.0)


def test_neighbours_side_by_side_has_one_column_pair_per_space() -> None:
    frame = neighbours_side_by_side("w3", {"first": TABLE, "second": (WORDS[:10], MATRIX[:10] * -1)}, k=3)
    assert list(frame.columns) == [("first", "word"), ("first", "cosine"), ("second", "word"), ("second", "cosine")]
    assert frame[("first", "word")].tolist() == nearest_neighbours("w3", TABLE, 3)["word"].tolist()
    missing = neighbours_side_by_side("w30", {"first": TABLE, "second": (WORDS[:10], MATRIX[:10])}, k=3)
    assert missing[("second", "word")].iloc[0] == "(not in this space)" and missing[("second", "word")].isna().sum() == 2


def test_principal_components_match_sklearn_up_to_sign() -> None:
    data = RNG.standard_normal((50, 6)) * [5.0, 3.0, 2.0, 1.0, 1.0, 0.5]
    coords, share = principal_components(data, k=3)
    reference = PCA(3).fit(data)
    np.testing.assert_allclose(np.abs(coords), np.abs(reference.transform(data)), atol=1e-8)
    np.testing.assert_allclose(share, reference.explained_variance_ratio_, atol=1e-10)
    # The sign convention makes the result a function of the data: negating the data negates the coordinates.
    np.testing.assert_allclose(principal_components(-data, k=3)[0], -coords, atol=1e-8)


def test_neighbour_agreement_matches_a_brute_force_count() -> None:
    labels = {word: ("odd" if i % 2 else "even") if i < 30 else "third" for i, word in enumerate(WORDS)}
    del labels["w39"]  # unlabelled words take no part
    agreement, chance = neighbour_agreement(TABLE, labels, k=3)
    words = [w for w in WORDS if w in labels]
    unit = MATRIX[:39] / np.linalg.norm(MATRIX[:39], axis=1, keepdims=True)
    cos = unit @ unit.T
    np.fill_diagonal(cos, -np.inf)
    same = [np.mean([labels[words[j]] == labels[w] for j in np.argsort(-cos[i])[:3]]) for i, w in enumerate(words)]
    assert agreement == pytest.approx(np.mean(same))
    sizes = np.array([15, 15, 9])  # a random other word shares the label with this probability
    assert chance == pytest.approx((sizes * (sizes - 1)).sum() / (39 * 38))
    clustered = WordVectors(["a", "b", "c", "d"], np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], dtype=np.float32))
    assert neighbour_agreement(clustered, {"a": 1, "b": 1, "c": 2, "d": 2}, k=1) == (1.0, pytest.approx(1 / 3))


def test_typical_class_uses_rates_relative_to_class_size() -> None:
    documents = [["good", "film", "the"], ["good", "the", "the", "the"], ["bad", "film", "the", "the", "the"], ["good"]]
    labels = [1, 1, 0, 0]  # positive documents hold 7 tokens, negative ones 6
    typical = typical_class(documents, labels, ["negative", "positive"])
    assert typical["good"] == "positive"  # 2/7 > 1/6
    assert typical["bad"] == "negative" and typical["the"] == "positive"  # the: 4/7 > 3/6
    assert typical["film"] == "negative"  # 1/6 > 1/7
    assert set(typical_class(documents, labels, ["negative", "positive"], min_count=3)) == {"good", "the"}


def test_word_similarity_benchmarks_scores_both_sets() -> None:
    """One row with both benchmarks; a table that knows no benchmark word covers no pair."""
    from utils.data import load_glove
    from utils.similarity import word_similarity_benchmarks

    row = word_similarity_benchmarks((["zzzz", "qqqq"], np.eye(2)))
    assert set(row) == {"WordSim-353 rho", "WordSim-353 pairs", "SimLex-999 rho", "SimLex-999 pairs"}
    assert row["WordSim-353 pairs"] == 0 and row["SimLex-999 pairs"] == 0
    glove = load_glove(max_words=20_000)
    scored = word_similarity_benchmarks(glove)
    assert scored["WordSim-353 pairs"] > 300 and 0.3 < scored["WordSim-353 rho"] < 0.7
