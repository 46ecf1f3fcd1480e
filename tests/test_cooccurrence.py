"""Counting: co-occurrence windows, PPMI against a dense reference, SVD against NumPy's.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from utils.cooccurrence import (
    cooccurrence_matrix,
    ppmi,
    ppmi_svd,
    sparse_bytes,
    svd_vectors,
)
from utils.text import Vocab


def _dense_ppmi(counts: np.ndarray, alpha: float, shift: float) -> np.ndarray:
    total = counts.sum()
    p_w = counts.sum(1) / total
    p_c = counts.sum(0) ** alpha
    p_c = p_c / p_c.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(counts / total / np.outer(p_w, p_c)) - np.log(shift)
    return np.where(counts > 0, np.maximum(pmi, 0), 0)


def test_windows_count_both_directions_weight_by_distance_and_stop_at_documents() -> (
    None
):
    docs = [["a", "b", "c"], ["c", "a"]]
    vocab = Vocab(["a", "b", "c"])
    i = vocab.stoi
    plain = cooccurrence_matrix(docs, vocab, window=2, dynamic=False).toarray()
    assert plain[i["a"], i["b"]] == 1 and plain[i["b"], i["a"]] == 1
    assert (
        plain[i["a"], i["c"]] == 2
    )  # once at distance 2 in doc 1, once at distance 1 in doc 2
    assert np.array_equal(plain, plain.T)
    weighted = cooccurrence_matrix(docs, vocab, window=2, dynamic=True).toarray()
    assert weighted[i["a"], i["c"]] == pytest.approx(0.5 + 1.0)
    assert (
        cooccurrence_matrix([["a"], ["b"]], vocab, window=3).nnz == 0
    )  # never across documents


def test_oov_words_are_dropped_before_windowing() -> None:
    vocab = Vocab(["a", "b"])
    counts = cooccurrence_matrix(
        [["a", "zzz", "b"]], vocab, window=1, dynamic=False
    ).toarray()
    assert counts[vocab.stoi["a"], vocab.stoi["b"]] == 1


@pytest.mark.parametrize(("alpha", "shift"), [(1.0, 1.0), (0.75, 1.0), (0.75, 5.0)])
def test_ppmi_matches_a_dense_reference_and_stays_sparse(
    alpha: float, shift: float
) -> None:
    rng = np.random.default_rng(1)
    counts = rng.poisson(0.7, (12, 12)).astype(float) * rng.integers(1, 30, (1, 12))
    counts[3] = 0
    result = ppmi(sp.csr_matrix(counts), alpha, shift)
    assert sp.issparse(result)
    np.testing.assert_allclose(
        result.toarray(), _dense_ppmi(counts, alpha, shift), atol=1e-12
    )
    assert (result.data > 0).all()


def test_svd_vectors_match_numpy_up_to_sign() -> None:
    rng = np.random.default_rng(2)
    matrix = rng.random((30, 30)) * (rng.random((30, 30)) < 0.3)
    vectors = svd_vectors(sp.csr_matrix(matrix), dim=4, power=0.5)
    u, s, _ = np.linalg.svd(matrix)
    expected = u[:, :4] * np.sqrt(s[:4])
    np.testing.assert_allclose(np.abs(vectors), np.abs(expected), atol=1e-4)
    np.testing.assert_array_equal(
        vectors, svd_vectors(sp.csr_matrix(matrix), dim=4, power=0.5)
    )


def test_pipeline_reports_costs_and_zero_special_rows() -> None:
    docs = [
        ["the", "cat", "sat", "on", "the", "mat"],
        ["the", "dog", "sat", "on", "the", "log"],
    ] * 5
    vocab = Vocab.build(docs)
    embeddings, stats = ppmi_svd(docs, vocab, dim=3, window=2)
    assert embeddings.vectors.shape == (len(vocab), 3)
    assert embeddings.vectors[:2].abs().sum() == 0
    assert set(stats.seconds) == {"count", "PPMI", "SVD"} and stats.peak_bytes > 0
    assert stats.dense_bytes == len(vocab) ** 2 * 4 and stats.sparse_bytes > 0
    assert sparse_bytes(sp.csr_matrix(np.eye(3))) == 3 * 8 + 3 * 4 + 4 * 4
