"""One vector per word form: telling the uses of an ambiguous word apart by their
contexts.

A word vector mixes all the senses of a word form. Representing each *occurrence* by the
mean of the (unit) vectors of the words around it, and clustering those occurrences, is
a training-free miniature of what contextual embeddings do with a deep network.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd

from utils.similarity import Table, as_word_vectors


def occurrence_contexts(
    documents: Sequence[Sequence[str]],
    target: str,
    table: Table,
    window: int = 6,
    skip: Collection[str] = (),
) -> tuple[np.ndarray, list[list[str]]]:
    """One unit vector per occurrence of `target`: the mean of its neighbours' unit
    vectors.

    Neighbours are the words within `window` positions that the table knows, minus
    `skip` (e.g. the most frequent words, which say little about the sense). Returns the
    vectors and, per occurrence, the context words used; occurrences without any are
    left out.
    """
    vectors = as_word_vectors(table)
    unit = vectors.vectors / np.maximum(
        np.linalg.norm(vectors.vectors, axis=1, keepdims=True), 1e-12
    )
    rows, bags = [], []
    for doc in documents:
        for i, token in enumerate(doc):
            if token != target:
                continue
            around = list(doc[max(0, i - window) : i]) + list(
                doc[i + 1 : i + 1 + window]
            )
            bag = [w for w in around if w in vectors and w not in skip and w != target]
            if bag:
                mean = unit[[vectors.index[w] for w in bag]].mean(axis=0)
                rows.append(mean / max(np.linalg.norm(mean), 1e-12))
                bags.append(bag)
    return np.array(rows).reshape(len(rows), vectors.dim), bags


def typical_context_words(
    bags: Sequence[Sequence[str]], clusters: np.ndarray, k: int = 12, min_count: int = 3
) -> pd.DataFrame:
    """Per cluster, the `k` context words most concentrated in it (its share of a word's
    uses).

    Words seen fewer than `min_count` times in all contexts are left out; ties go to the
    more frequent word. One column per cluster, named with its number of occurrences.
    """
    overall = Counter(w for bag in bags for w in bag)
    columns = {}
    for cluster in np.unique(clusters):
        inside = Counter(
            w for bag, c in zip(bags, clusters) if c == cluster for w in bag
        )
        share = {
            w: n / overall[w] for w, n in inside.items() if overall[w] >= min_count
        }
        ranked = sorted(share, key=lambda w: (-share[w], -overall[w], w))[:k]
        name = f"group {cluster + 1} ({int((clusters == cluster).sum())} uses)"
        columns[name] = pd.Series(ranked, dtype=object)
    return pd.DataFrame(columns)
