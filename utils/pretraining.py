"""Pre-training word vectors on raw text: word2vec's skip-gram with negative sampling (SGNS), vectorised in PyTorch.

The objective is a language-modelling one: from a word, tell its true neighbours in running text apart from words
drawn at random (Mikolov et al., 2013). The recipe follows the reference C code and gensim: frequent words are
subsampled, each centre word gets a random window of 1..`window` words on each side, negatives are drawn from the
unigram distribution raised to 0.75, and the learning rate falls linearly to `min_lr`.

Speed comes from three choices. (1) Text is processed in chunks whose (centre, context) pairs are built with NumPy
array operations, never a Python loop over words. (2) As in pWord2Vec (Ji et al., 2016), the `negatives` noise words
drawn for a centre are shared by all the context words of its window, so one window is a tiny matrix product
(contexts x dim) @ (dim x (1 + negatives)) instead of many dot products; windows of equal size are batched with `bmm`.
(3) Gradients are written by hand and added into the two tables with `index_add_`: no autograd graph, no optimiser.
With `threads=2`, two workers update the shared tables without locks (Hogwild!), as gensim's workers do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from utils.data import load_news_articles
from utils.text import Vocab, tokenize_words


class Embeddings(NamedTuple):
    """Word vectors with their vocabulary: row i of `vectors` belongs to `vocab.itos[i]` (`[PAD]`, `[UNK]` rows are 0).

    Being a (words, matrix) pair, it can be passed to every function of `utils.similarity`.
    """

    vocab: Vocab
    vectors: torch.Tensor


@dataclass(frozen=True)
class Word2VecConfig:
    """The settings of a skip-gram run, named as in gensim (`dim` is gensim's `vector_size`)."""

    dim: int = 100
    window: int = 5
    negatives: int = 5
    min_count: int = 5
    sample: float = 1e-3
    epochs: int = 5
    lr: float = 0.025
    min_lr: float = 1e-4
    chunk_words: int = 4_000
    threads: int = 1
    seed: int = 0


@dataclass(frozen=True)
class TrainingStats:
    """What a run did: words read (all epochs, before subsampling), (centre, context) pairs trained, wall time."""

    words: int
    pairs: int
    seconds: float

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds


def news_corpus() -> list[list[str]]:
    """The raw pre-training text: each news article (title, then body) as a list of word tokens, no punctuation."""
    news = load_news_articles()
    return [tokenize_words(f"{title}. {text}") for title, text in zip(news["title"], news["text"])]


# --- The pieces of the recipe, each testable on its own ------------------------------------------------------


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """Probability of keeping each occurrence of a word seen `counts` times (word2vec's subsampling formula).

    A word with frequency f (share of all tokens) is kept with probability (sqrt(f / sample) + 1) * sample / f,
    capped at 1: rare words are always kept, 'the' loses most of its occurrences. `sample=0` keeps everything.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    with np.errstate(divide="ignore"):
        keep = (np.sqrt(counts / threshold) + 1) * threshold / counts
    return np.minimum(keep, 1.0)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """The negative-sampling distribution: counts raised to `power` and normalised (zero counts never drawn)."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    return weights / weights.sum()


def encode_corpus(documents: Iterable[Sequence[str]], vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """All in-vocabulary tokens as one id array, plus the document number of each (out-of-vocabulary words dropped)."""
    ids, docs = [], []
    for number, doc in enumerate(documents):
        encoded = [vocab.stoi[t] for t in doc if t in vocab.stoi and vocab.stoi[t] > vocab.unk_id]
        ids.append(np.asarray(encoded, dtype=np.int64))
        docs.append(np.full(len(encoded), number, dtype=np.int64))
    return np.concatenate(ids or [np.empty(0, np.int64)]), np.concatenate(docs or [np.empty(0, np.int64)])


class Windows(NamedTuple):
    """Centres that share one window size w: their ids, their 2w context ids, and which context slots are real."""

    centers: np.ndarray  # (n,)
    contexts: np.ndarray  # (n, 2w); slots past a document edge hold 0 and are masked out
    mask: np.ndarray  # (n, 2w) bool


def skipgram_windows(ids: np.ndarray, docs: np.ndarray, window: int, rng: np.random.Generator) -> list[Windows]:
    """The (centre, context) pairs of a stretch of text, grouped by each centre's random window size 1..`window`.

    Like word2vec, each centre draws its own window size, so near neighbours are used more often than far ones.
    Windows never cross a document boundary. Grouping by size lets each group be a dense (n, 2w) array.
    """
    sizes = rng.integers(1, window + 1, len(ids))
    groups = []
    for w in range(1, window + 1):
        where = np.flatnonzero(sizes == w)
        if len(where) == 0:
            continue
        offsets = np.concatenate([np.arange(-w, 0), np.arange(1, w + 1)])
        positions = where[:, None] + offsets
        inside = (positions >= 0) & (positions < len(ids))
        positions = np.clip(positions, 0, len(ids) - 1)
        mask = inside & (docs[positions] == docs[where, None])
        groups.append(Windows(ids[where], np.where(mask, ids[positions], 0), mask))
    return groups


# --- The model and its hand-written update -------------------------------------------------------------------


import os
CAP = float(os.environ.get('CAP', 0))


class SkipGram:
    """The two tables of word2vec: input vectors (the embeddings we keep) and output vectors (used by the loss)."""

    def __init__(self, vocab_size: int, dim: int, generator: torch.Generator) -> None:
        # word2vec's initialisation: inputs uniform in [-0.5, 0.5) / dim, outputs zero.
        self.input = (torch.rand(vocab_size, dim, generator=generator) - 0.5) / dim
        self.output = torch.zeros(vocab_size, dim)

    def step(self, group: Windows, negatives: np.ndarray, lr: float) -> None:
        """One SGD step of the SGNS loss on a group of windows, with gradients computed by hand.

        For context vector x and output vectors y_0 (the centre) and y_1..y_k (noise words), the loss is
        -log s(x.y_0) - sum_j log s(-x.y_j); its gradient wrt the score x.y_j is s(x.y_j) - label_j.
        """
        n, slots = group.contexts.shape
        contexts = torch.from_numpy(group.contexts).view(-1)
        outputs = torch.from_numpy(np.concatenate([group.centers[:, None], negatives], axis=1))
        x = self.input.index_select(0, contexts).view(n, slots, -1)
        y = self.output.index_select(0, outputs.view(-1)).view(n, outputs.shape[1], -1)
        scores = torch.bmm(x, y.transpose(1, 2))  # (n, 2w, 1 + k)
        labels = torch.zeros(outputs.shape[1])
        labels[0] = 1.0
        # A noise word that happens to be the centre itself is skipped (as in word2vec); padded slots count for nothing.
        real = outputs != outputs[:, :1]
        real[:, 0] = True
        weight = torch.from_numpy(group.mask).unsqueeze(2) & real.unsqueeze(1)
        g = (labels - torch.sigmoid(scores)).mul_(weight).mul_(lr)  # minus the gradient, times the learning rate
        g_in, g_out = g, g
        if CAP:
            vocab_size = len(self.input)
            in_scale = (CAP / torch.bincount(contexts, minlength=vocab_size).clamp(min=CAP))[contexts].view(n, slots, 1)
            out_scale = (CAP / torch.bincount(outputs.view(-1), minlength=vocab_size).clamp(min=CAP))[outputs].view(n, 1, -1)
            g_in, g_out = g * in_scale, g * out_scale
        self.input.index_add_(0, contexts, torch.bmm(g_in, y).view(n * slots, -1))
        self.output.index_add_(0, outputs.view(-1), torch.bmm(g_out.transpose(1, 2), x).view(outputs.numel(), -1))


def _chunks(n_tokens: int, chunk_words: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk_words, n_tokens)) for start in range(0, n_tokens, chunk_words)]


def train_word2vec(
    documents: Sequence[Sequence[str]],
    config: Word2VecConfig = Word2VecConfig(),
    progress: bool = True,
) -> tuple[Embeddings, TrainingStats]:
    """Train skip-gram with negative sampling on tokenised documents; return the input vectors and run statistics.

    Deterministic for a given seed with `threads=1`; with more threads the lock-free updates interleave differently
    from run to run (as in gensim with several workers).
    """
    vocab = Vocab.build(documents, min_freq=config.min_count)
    ids, docs = encode_corpus(documents, vocab)
    counts = np.array([vocab.counts.get(t, 0) for t in vocab.itos], dtype=np.float64)
    keep = keep_probabilities(counts, config.sample)
    cumulative = torch.from_numpy(np.cumsum(noise_distribution(counts)))
    cumulative[-1] = 1.0
    model = SkipGram(len(vocab), config.dim, torch.Generator().manual_seed(config.seed))
    raw_words = sum(len(doc) for doc in documents)
    chunks = _chunks(len(ids), config.chunk_words)
    total = config.epochs * len(chunks)

    def work(job: int) -> tuple[int, int]:
        epoch, index = divmod(job, len(chunks))
        start, end = chunks[index]
        rng = np.random.default_rng([config.seed, epoch, index])
        lr = config.lr - (config.lr - config.min_lr) * job / total
        chunk_ids, chunk_docs = ids[start:end], docs[start:end]
        kept = rng.random(len(chunk_ids)) < keep[chunk_ids]
        pairs = 0
        for group in skipgram_windows(chunk_ids[kept], chunk_docs[kept], config.window, rng):
            uniform = torch.from_numpy(rng.random((len(group.centers), config.negatives)))
            negatives = torch.searchsorted(cumulative, uniform).numpy()
            model.step(group, negatives, lr)
            pairs += int(group.mask.sum())
        return end - start, pairs

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    pairs = 0
    try:
        with ThreadPoolExecutor(config.threads) as pool, tqdm(total=config.epochs * raw_words, desc="word2vec", unit="word", unit_scale=True, disable=not progress) as bar:
            scale = raw_words / max(len(ids), 1)
            for words, n_pairs in pool.map(work, range(total)):
                pairs += n_pairs
                bar.update(round(words * scale))
    finally:
        torch.set_num_threads(previous_threads)
    seconds = time.perf_counter() - started
    vectors = model.input
    vectors[[vocab.pad_id, vocab.unk_id]] = 0.0
    return Embeddings(vocab, vectors), TrainingStats(config.epochs * raw_words, pairs, seconds)
