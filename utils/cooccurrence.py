"""Counting instead of predicting: word vectors from a co-occurrence matrix, PPMI and
truncated SVD.

The recipe of Levy, Goldberg & Dagan (2015): count (word, context) pairs within a
window, weight the counts by positive pointwise mutual information with the context
distribution smoothed (counts raised to 0.75, as word2vec's noise words are), and keep
the top singular vectors. Skip-gram with negative sampling implicitly factorises the PMI
matrix shifted by log k (Levy & Goldberg, 2014); here the factorisation is explicit.
Every matrix stays sparse: a dense V x V table would not fit in memory.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from utils.pretraining import Embeddings, encode_corpus
from utils.text import Vocab


def cooccurrence_matrix(
    documents: Sequence[Sequence[str]],
    vocab: Vocab,
    window: int = 5,
    dynamic: bool = True,
) -> sp.csr_matrix:
    """Symmetric (V, V) counts of word j within `window` words of word i, never across
    documents.

    Out-of-vocabulary tokens are dropped first, as word2vec does. With `dynamic`, a
    context d words away counts (window - d + 1) / window: what word2vec's random window
    sizes give on average.
    """
    ids, docs = encode_corpus(documents, vocab)
    size = len(vocab)
    counts = sp.csr_matrix((size, size), dtype=np.float64)
    for distance in range(1, window + 1):
        same = docs[distance:] == docs[:-distance]
        left, right = ids[:-distance][same], ids[distance:][same]
        weight = (window - distance + 1) / window if dynamic else 1.0
        rows, cols = np.concatenate([left, right]), np.concatenate([right, left])
        data = np.full(len(rows), weight)
        counts = counts + sp.csr_matrix((data, (rows, cols)), shape=(size, size))
    counts.sum_duplicates()
    return counts


def ppmi(counts: sp.spmatrix, alpha: float = 0.75, shift: float = 1.0) -> sp.csr_matrix:
    """Positive PMI of a (word, context) count matrix, with context counts raised to
    `alpha`.

    PMI(w, c) = log P(w, c) / (P(w) P_alpha(c)), where P_alpha(c) is proportional to
    count(c)^alpha. `shift` = k subtracts log k (SGNS with k negatives factorises PMI -
    log k). Only stored entries are touched: a pair never seen has PMI -inf, so its PPMI
    is 0 and stays unstored.
    """
    counts = sp.csr_matrix(counts, dtype=np.float64)
    total = counts.sum()
    word_p = np.asarray(counts.sum(axis=1)).ravel() / total
    smoothed = np.asarray(counts.sum(axis=0)).ravel() ** alpha
    context_p = smoothed / smoothed.sum()
    coo = counts.tocoo()
    pmi = (
        np.log(coo.data / total) - np.log(word_p[coo.row]) - np.log(context_p[coo.col])
    )
    pmi -= np.log(shift)
    keep = pmi > 0
    matrix = sp.csr_matrix(
        (pmi[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape
    )
    return matrix


def svd_vectors(
    matrix: sp.spmatrix, dim: int, power: float = 0.5, seed: int = 0
) -> np.ndarray:
    """Rows U S^power of the rank-`dim` truncated SVD of a sparse matrix, largest
    singular value first.

    power 1 gives the best rank-`dim` approximation's row space; Levy et al. (2015)
    found 0.5 better for similarity. The SVD is randomised (Halko et al., 2011, as in
    scikit-learn's TruncatedSVD): a seeded random projection refined by 8 power
    iterations, about twice as fast as ARPACK on the news PPMI matrix and as good for
    word similarity; the seed makes it deterministic.
    """
    u, s, _ = randomized_svd(
        sp.csr_matrix(matrix, dtype=np.float64), dim, n_oversamples=20, n_iter=8,
        random_state=seed,
    )  # fmt: skip
    return (u * s**power).astype(np.float32)


@dataclass(frozen=True)
class CountStats:
    """What a count-based run cost: seconds per stage, stored entries, bytes, peak
    traced memory."""

    seconds: dict[str, float]
    nonzeros: int
    sparse_bytes: int
    dense_bytes: int
    peak_bytes: int


def sparse_bytes(matrix: sp.spmatrix) -> int:
    """Bytes a CSR matrix holds: its values, column indices and row pointers."""
    matrix = sp.csr_matrix(matrix)
    return matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes


def ppmi_svd(
    documents: Sequence[Sequence[str]],
    vocab: Vocab,
    dim: int = 50,
    window: int = 5,
    alpha: float = 0.75,
    shift: float = 1.0,
    power: float = 0.5,
    seed: int = 0,
) -> tuple[Embeddings, CountStats]:
    """Count, weight by PPMI, factorise: word vectors for `vocab` and what each stage
    cost.

    The rows of `[PAD]` and `[UNK]` are zero, as in `utils.pretraining.train_word2vec`.
    """
    import torch

    tracemalloc.start()
    seconds, started = {}, time.perf_counter()
    try:
        counts = cooccurrence_matrix(documents, vocab, window)
        seconds["count"] = time.perf_counter() - started
        weighted = ppmi(counts, alpha, shift)
        seconds["PPMI"] = time.perf_counter() - started - seconds["count"]
        vectors = svd_vectors(weighted, dim, power, seed)
        seconds["SVD"] = (
            time.perf_counter() - started - seconds["count"] - seconds["PPMI"]
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    vectors[[vocab.pad_id, vocab.unk_id]] = 0.0
    stats = CountStats(
        seconds=seconds,
        nonzeros=int(weighted.nnz),
        sparse_bytes=sparse_bytes(weighted),
        dense_bytes=len(vocab) ** 2 * 4,
        peak_bytes=peak,
    )
    return Embeddings(vocab, torch.from_numpy(vectors)), stats
