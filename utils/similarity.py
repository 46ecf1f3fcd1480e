"""Comparing word vectors: cosine similarity, nearest neighbours, and how far two embedding spaces agree.

A "table" of word vectors is a `WordVectors` or a pair (words, matrix), where words may be a `Vocab` and the matrix
a NumPy array or a torch tensor (row i belongs to word i). Chapters 4 and 5 use these on trained, random and GloVe vectors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from utils.data import WordVectors, load_simlex999, load_wordsim353
from utils.text import Vocab

Table = WordVectors | tuple[Sequence[str] | Vocab, np.ndarray | torch.Tensor]


def as_word_vectors(table: Table) -> WordVectors:
    """The table as `WordVectors` (float32 NumPy rows), whatever form it came in."""
    if isinstance(table, WordVectors):
        return table
    words, matrix = table
    words = list(words.itos) if isinstance(words, Vocab) else list(words)
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    return WordVectors(words, np.asarray(matrix, dtype=np.float32))


def embedding_word_vectors(vocab: Vocab, weight: torch.Tensor, min_count: int = 1) -> WordVectors:
    """The rows of a trained embedding table for the words seen at least `min_count` times in training.

    `[PAD]` and `[UNK]` are left out; a word seen once or twice has barely moved from its random start,
    so a `min_count` of 10 or so keeps the neighbour lists about what training learned.
    """
    keep = [i for i, word in enumerate(vocab.itos) if i not in (vocab.pad_id, vocab.unk_id) and vocab.counts.get(word, 0) >= min_count]
    rows = weight.detach().cpu()[keep].numpy()
    return WordVectors([vocab.itos[i] for i in keep], rows.astype(np.float32, copy=False))


def cosine_similarity(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor | None = None, eps: float = 1e-12) -> torch.Tensor:
    """Cosine similarity of every row of `a` with every row of `b` (default: `a` itself), as an (n, m) tensor.

    A 1-D input counts as one row and its dimension is dropped from the result. A zero vector has no direction:
    its similarity with anything is 0, never NaN.
    """
    a_unit = _unit(a, eps)
    b_unit = a_unit if b is None else _unit(b, eps)
    return a_unit @ b_unit.transpose(-1, -2) if b_unit.dim() > 1 else a_unit @ b_unit


def _unit(x: np.ndarray | torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows scaled to length 1; zero rows stay zero."""
    x = torch.as_tensor(x, dtype=torch.float32)
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def nearest_neighbours(query: str | np.ndarray | torch.Tensor, table: Table, k: int = 10, exclude: Iterable[str] = ()) -> pd.DataFrame:
    """The `k` words of `table` most cosine-similar to a word (itself left out) or to a vector, best first.

    Returns a DataFrame with columns word and cosine, indexed by rank 1..k.
    """
    vectors = as_word_vectors(table)
    skip = set(exclude)
    if isinstance(query, str):
        if query not in vectors:
            raise KeyError(f"{query!r} is not in the table of {len(vectors):,} words")
        skip.add(query)
        query = vectors[query]
    scores = cosine_similarity(vectors.vectors, torch.as_tensor(query, dtype=torch.float32).reshape(-1))
    for word in skip:
        if word in vectors:
            scores[vectors.index[word]] = -float("inf")
    top = torch.topk(scores, min(k, len(vectors) - sum(word in vectors for word in skip)))
    frame = pd.DataFrame({"word": [vectors.words[i] for i in top.indices.tolist()], "cosine": top.values.numpy()})
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="rank")
    return frame


def neighbours_side_by_side(word: str, spaces: Mapping[str, Table], k: int = 10) -> pd.DataFrame:
    """The `k` nearest neighbours of `word` in each space, one (word, cosine) column pair per space."""
    parts = {}
    for name, table in spaces.items():
        vectors = as_word_vectors(table)
        if word in vectors:
            parts[name] = nearest_neighbours(word, vectors, k)
        else:
            parts[name] = pd.DataFrame({"word": ["(not in this space)"], "cosine": [np.nan]}, index=pd.RangeIndex(1, 2, name="rank"))
    return pd.concat(parts, axis=1)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of the values of `x`; tied values share their average rank."""
    order = np.argsort(x)
    ordered = x[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    ranks[order] = ((starts + ends + 1) / 2)[np.cumsum(first) - 1]
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation: the Pearson correlation of the ranks (ties share their average rank).

    Written with NumPy rather than scipy.stats, whose import alone costs about a second.
    """
    return float(np.corrcoef(_ranks(np.asarray(x)), _ranks(np.asarray(y)))[0, 1])


def _upper_triangle(matrix: torch.Tensor) -> np.ndarray:
    rows, cols = torch.triu_indices(len(matrix), len(matrix), offset=1)
    return matrix[rows, cols].numpy()


def compare_spaces(a: Table, b: Table, words: Iterable[str] | None = None) -> tuple[float, int]:
    """How alike two embedding spaces are: the Spearman correlation of the cosine similarities of all word pairs.

    Uses the given words (default: all words both tables hold) that are in both tables; returns (rho, words used).
    1 means the same neighbourhoods, 0 unrelated ones. It compares geometry only, so the spaces may differ in
    dimension, scale or rotation.
    """
    a, b = as_word_vectors(a), as_word_vectors(b)
    candidates = a.words if words is None else words
    shared = [w for w in dict.fromkeys(candidates) if w in a and w in b]
    if len(shared) < 3:
        return float("nan"), len(shared)
    rows_a = a.vectors[[a.index[w] for w in shared]]
    rows_b = b.vectors[[b.index[w] for w in shared]]
    return spearman(_upper_triangle(cosine_similarity(rows_a)), _upper_triangle(cosine_similarity(rows_b))), len(shared)


def word_similarity_correlation(vectors: Table, pairs: pd.DataFrame) -> tuple[float, int]:
    """Spearman correlation between cosine similarity and human scores on a benchmark such as WordSim-353.

    `pairs` has columns word1, word2, score; only the pairs whose two words the table holds are used.
    Returns (rho, pairs covered): always read the two together, a high rho on few pairs means little.
    """
    table = as_word_vectors(vectors)
    known = [w1 in table and w2 in table for w1, w2 in zip(pairs["word1"], pairs["word2"])]
    covered = pairs[known]
    if len(covered) < 2:
        return float("nan"), len(covered)
    left = table.vectors[[table.index[w] for w in covered["word1"]]]
    right = table.vectors[[table.index[w] for w in covered["word2"]]]
    cosines = (_unit(left) * _unit(right)).sum(dim=-1).numpy()
    return spearman(cosines, covered["score"].to_numpy()), len(covered)


def word_similarity_benchmarks(vectors: Table) -> dict[str, float | int]:
    """Spearman rho and pairs covered on WordSim-353 and SimLex-999, as one table row: the usual intrinsic check."""
    row: dict[str, float | int] = {}
    for name, pairs in (("WordSim-353", load_wordsim353()), ("SimLex-999", load_simlex999())):
        row[f"{name} rho"], row[f"{name} pairs"] = word_similarity_correlation(vectors, pairs)
    return row


def principal_components(vectors: np.ndarray | torch.Tensor, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """PCA by SVD: the (n, k) coordinates of the centred rows on the top `k` directions, and each direction's share
    of the total variance. Each direction's sign is fixed (largest loading positive) so plots do not flip between runs.
    """
    x = torch.as_tensor(vectors, dtype=torch.float64)
    x = x - x.mean(dim=0)
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    signs = torch.sign(vh[torch.arange(len(vh)), vh.abs().argmax(dim=1)])
    coords = (u * s * signs)[:, :k]
    share = s**2 / (s**2).sum().clamp_min(1e-300)
    return coords.numpy(), share[:k].numpy()


def neighbour_agreement(table: Table, labels: Mapping[str, object], k: int = 10) -> tuple[float, float]:
    """How well a space's neighbourhoods respect a labelling of its words (e.g. the sign of a sentiment score).

    For every labelled word, the share of its `k` nearest neighbours (by cosine, among the labelled words) with the
    same label, averaged over words; returned with the share that random neighbours would reach (the chance level).
    """
    vectors = as_word_vectors(table)
    words = [w for w in vectors.words if w in labels]
    codes = pd.factorize(pd.Series([labels[w] for w in words]))[0]
    scores = cosine_similarity(vectors.vectors[[vectors.index[w] for w in words]])
    scores.fill_diagonal_(-float("inf"))
    neighbours = torch.topk(scores, k, dim=1).indices.numpy()
    agreement = float((codes[neighbours] == codes[:, None]).mean())
    counts = np.bincount(codes)
    chance = float(((counts * (counts - 1)).sum()) / (len(codes) * (len(codes) - 1)))
    return agreement, chance


def typical_class(documents: Iterable[Sequence[str]], labels: Sequence[int], classes: Sequence[str], min_count: int = 1) -> dict[str, str]:
    """For every token seen at least `min_count` times, the class whose documents use it most, relative to their size
    (its count there divided by the class's number of tokens): a labelling of words by the data, not by any model."""
    counts = {label: Counter() for label in range(len(classes))}
    for doc, label in zip(documents, labels):
        counts[int(label)].update(doc)
    totals = np.array([max(sum(counts[label].values()), 1) for label in range(len(classes))])
    vocabulary = sum(counts.values(), Counter())
    typical = {}
    for token, count in vocabulary.items():
        if count >= min_count:
            rates = np.array([counts[label][token] for label in range(len(classes))]) / totals
            typical[token] = classes[int(rates.argmax())]
    return typical
