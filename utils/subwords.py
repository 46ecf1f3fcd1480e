"""Words without vectors: character n-gram vectors in the manner of fastText (Bojanowski
et al., 2017).

A word is represented by its character n-grams, with '<' and '>' marking its start and
end, plus the word itself if it was seen often enough in training. A word never seen in
training still gets a vector, the mean of the vectors of its n-grams, as long as some of
them were seen. gensim's FastText is the reference implementation we train; n-grams are
hashed into a fixed number of buckets.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np

from utils.data import WordVectors
from utils.pretraining import Word2VecConfig


def char_ngrams(word: str, min_n: int = 3, max_n: int = 6) -> list[str]:
    """The character n-grams of '<word>', shortest first, each length left to right
    (gensim's order).

    '<where>' gives '<wh', 'whe', 'her', 'ere', 're>', '<whe', ... up to the 6-grams.
    """
    marked = f"<{word}>"
    return [
        marked[start : start + n]
        for n in range(min_n, min(len(marked), max_n) + 1)
        for start in range(len(marked) - n + 1)
    ]


def ngram_inventory(words: Iterable[str], min_n: int = 3, max_n: int = 6) -> set[str]:
    """Every character n-gram of the given words: the n-grams a model trained on them
    has seen."""
    return {gram for word in words for gram in char_ngrams(word, min_n, max_n)}


def train_fasttext(
    documents: Sequence[Sequence[str]],
    config: Word2VecConfig,
    min_n: int = 3,
    max_n: int = 6,
    bucket: int = 200_000,
):
    """gensim's FastText (skip-gram, negative sampling) under our word2vec `config`:
    (vectors, seconds).

    Returns gensim's `FastTextKeyedVectors`, which give a vector for any word
    (`wv["unseenword"]`), and the training time. `bucket` n-gram vectors are kept
    (gensim's default of 2 million would take 400 MB at 50 dimensions; our vocabulary
    has far fewer distinct n-grams than that).
    """
    from gensim.models import (
        FastText,
    )  # imported here: only this comparison needs gensim

    model = FastText(
        vector_size=config.dim, window=config.window, negative=config.negatives,
        min_count=config.min_count, sample=config.sample, alpha=config.lr,
        min_alpha=config.min_lr, workers=config.threads, sg=1, hs=0, seed=config.seed,
        min_n=min_n, max_n=max_n, bucket=bucket,
    )  # fmt: skip
    model.build_vocab(documents)
    started = time.perf_counter()
    model.train(documents, total_examples=len(documents), epochs=config.epochs)
    return model.wv, time.perf_counter() - started


def ngram_mean(word: str, wv) -> np.ndarray:
    """fastText's vector for a word it never saw: the mean of the vectors of its
    n-grams' buckets.

    Written out to show what `wv[word]` computes for an out-of-vocabulary word. gensim
    hashes the n-grams of the word's UTF-8 bytes; a word without n-grams gets the zero
    vector.
    """
    from gensim.models.fasttext import ft_ngram_hashes

    buckets = ft_ngram_hashes(word, wv.min_n, wv.max_n, wv.bucket)
    if not buckets:
        return np.zeros(wv.vector_size, dtype=np.float32)
    return wv.vectors_ngrams[buckets].mean(axis=0)


def subword_vectors(
    words: Iterable[str], wv, inventory: set[str] | None = None
) -> WordVectors:
    """Vectors for the words a fastText model can speak for: seen ones, and unseen ones
    with seen n-grams.

    `inventory` (default: the n-grams of the model's vocabulary) decides what counts as
    seen; an unseen word none of whose n-grams was seen is left out, since its vector
    would be noise.
    """
    if inventory is None:
        inventory = ngram_inventory(wv.index_to_key, wv.min_n, wv.max_n)
    kept = []
    for word in dict.fromkeys(words):
        grams = char_ngrams(word, wv.min_n, wv.max_n)
        if word in wv.key_to_index or any(gram in inventory for gram in grams):
            kept.append(word)
    vectors = (
        np.stack([wv[word] for word in kept]) if kept else np.zeros((0, wv.vector_size))
    )
    return WordVectors(kept, vectors.astype(np.float32))
