"""Transfer: start a task model's embedding table from pre-trained vectors, and say how much of the task they cover.

A pre-trained table and a task vocabulary never list the same words: the task has words the pre-training text
never saw, and the table has many the task never uses. `align_embeddings` builds one row per task id under a
stated rule (below), and `Coverage` reports how many task word types, and how many running tokens, were found.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from utils.models import BagOfWords
from utils.similarity import Table, as_word_vectors
from utils.text import Vocab
from utils.training import EncodedTexts, predict, train


@dataclass(frozen=True)
class Coverage:
    """How much of a task vocabulary a pre-trained table knows: by word type and by running token."""

    types: int
    types_found: int
    tokens: int
    tokens_found: int

    @property
    def type_rate(self) -> float:
        return self.types_found / max(self.types, 1)

    @property
    def token_rate(self) -> float:
        return self.tokens_found / max(self.tokens, 1)

    def as_dict(self) -> dict[str, float]:
        """The four counts and two rates, labelled: one row of a table comparing several pre-trained tables."""
        return {
            "word types": self.types,
            "types found": self.types_found,
            "type coverage": self.type_rate,
            "tokens": self.tokens,
            "tokens found": self.tokens_found,
            "token coverage": self.token_rate,
        }


def coverage(task_vocab: Vocab, pretrained: Table, token_counts: Mapping[str, int] | None = None) -> Coverage:
    """How much of a text reaches the model with a pre-trained vector: a word must be in `task_vocab` (else it is
    `[UNK]`) and in `pretrained`.

    With `token_counts` (e.g. a `collections.Counter` of a test split's tokens) the denominators are *every* word
    type and running token of that text, those outside the task vocabulary included. Without it, the text is the
    one the vocabulary was built from (`task_vocab.counts`) and the denominators are the vocabulary's word types.
    """
    known = as_word_vectors(pretrained).index
    words = _task_words(task_vocab)
    if token_counts is None:
        counts: Mapping[str, int] = task_vocab.counts
        text_words = words
    else:
        counts, text_words = token_counts, [w for w in token_counts if w not in (Vocab.PAD, Vocab.UNK)]
    found = [w for w in text_words if w in known and w in task_vocab.stoi]
    return Coverage(
        types=len(text_words),
        types_found=len(found),
        tokens=int(sum(counts.get(w, 0) for w in text_words)),
        tokens_found=int(sum(counts.get(w, 0) for w in found)),
    )


def align_embeddings(
    task_vocab: Vocab,
    pretrained: Table,
    std: float | None = 1.0,
    seed: int | None = None,
) -> tuple[torch.Tensor, Coverage]:
    """An embedding table for `task_vocab` (one row per id) started from `pretrained`, and its coverage.

    The rule (the same as lab 5's): a task word the pre-trained table has gets its vector; every other word,
    `[UNK]` included, gets the mean of the pre-trained vectors, a neutral "some word"; `[PAD]` gets zeros.
    With `std` given, the table is then scaled so the pre-trained entries have that standard deviation (1.0
    matches PyTorch's N(0, 1) start), which puts tables from different sources on one scale for one learning rate.
    `seed` is ignored (the rule draws nothing at random); it is accepted so that older callers keep working.
    """
    vectors = as_word_vectors(pretrained)
    real = [i for i, w in enumerate(vectors.words) if w not in (Vocab.PAD, Vocab.UNK)]
    source = torch.from_numpy(np.ascontiguousarray(vectors.vectors[real], dtype=np.float32))
    table = source.mean(dim=0).repeat(len(task_vocab), 1)
    rows = [
        (i, vectors.index[w]) for i, w in enumerate(task_vocab.itos) if i > task_vocab.unk_id and w in vectors.index
    ]
    if rows:
        task_ids, source_ids = map(list, zip(*rows))
        table[task_ids] = torch.from_numpy(np.ascontiguousarray(vectors.vectors[source_ids], dtype=np.float32))
    table[task_vocab.pad_id] = 0.0
    if std is not None:
        table *= std / float(vectors.vectors[real].std())
    return table, coverage(task_vocab, vectors)


@dataclass(frozen=True)
class Start:
    """How a classifier's embedding table starts: random (`vectors=None`) or from `vectors`, frozen or fine-tuned.

    `lr`, if given, replaces the learning rate of `training_settings` for this start.
    """

    vectors: torch.Tensor | None = None
    freeze: bool = False
    lr: float | None = None

    def classifier(self, vocab_size: int, dim: int, num_classes: int) -> BagOfWords:
        """A fresh bag-of-words classifier with this start (a random one draws from the current torch seed)."""
        if self.vectors is None:
            return BagOfWords(vocab_size, dim, num_classes)
        return BagOfWords.from_pretrained(self.vectors, num_classes, freeze=self.freeze)


def training_settings(size: int, freeze: bool) -> dict[str, float]:
    """Learning rate, epochs, patience and batch size for one run of the learning-curve grid.

    A frozen table leaves only the linear layer to train, which takes a larger learning rate. A small training set
    makes only a few updates per epoch, so it gets more (cheap) epochs and more patience; large ones get bigger
    batches. Early stopping on the dev set picks the epoch in any case.
    """
    small = size <= 1_000
    return {
        "lr": 0.05 if freeze else 0.01,
        "epochs": 30 if small else 10,
        "patience": 5 if small else 3,
        "batch_size": 64 if size <= 3_000 else 128,
    }


def learning_curves(
    starts: Mapping[str, Start],
    vocab_size: int,
    train_set: tuple[Sequence[Sequence[int]], Sequence[int]],
    dev_set: tuple[Sequence[Sequence[int]], Sequence[int]],
    test_set: tuple[Sequence[Sequence[int]], Sequence[int]],
    sizes: Sequence[int],
    seeds: Sequence[int],
    num_classes: int = 2,
    dim: int = 50,
    progress: bool = True,
) -> pd.DataFrame:
    """Train a classifier for every start, training-set size and seed; return one row per run.

    `*_set` are (encoded texts, labels) pairs; `vocab_size` and `dim` size the randomly started tables.

    For a given seed the training subsets are nested (the first `size` texts of one shuffle), so a larger size
    only adds texts. Each run keeps its best dev epoch and reports test accuracy, which test texts it got right
    (for paired comparisons), and the dev accuracy and measured wall-clock seconds at the end of every epoch.
    """
    train_ids, train_labels = train_set[0], np.asarray(train_set[1])
    dev = (EncodedTexts(dev_set[0]), list(dev_set[1]))
    test = (EncodedTexts(test_set[0]), list(test_set[1]))
    rows = []
    runs = [(size, seed, name) for size in sizes for seed in seeds for name in starts]
    for size, seed, name in tqdm(runs, desc="runs", disable=not progress):
        order = np.random.default_rng(seed).permutation(len(train_ids))[:size]
        subset = (
            EncodedTexts([train_ids[i] for i in order]),
            train_labels[order].tolist(),
        )
        start = starts[name]
        torch.manual_seed(seed)
        model = start.classifier(vocab_size, dim, num_classes)
        began = time.perf_counter()
        settings = training_settings(size, start.freeze)
        if start.lr is not None:
            settings["lr"] = start.lr
        history = train(model, subset, dev, seed=seed, progress=False, **settings)
        seconds = time.perf_counter() - began
        correct = (predict(model, test[0]).numpy() == np.asarray(test[1])).tolist()
        rows.append(
            {
                "start": name,
                "size": size,
                "seed": seed,
                "test accuracy": float(np.mean(correct)),
                "dev accuracy": history["dev_acc"].max(),
                "epochs": len(history),
                "seconds": seconds,
                "dev accuracy by epoch": tuple(history["dev_acc"]),
                "seconds by epoch": tuple(history["seconds"]),
                "test correct": tuple(correct),
            }
        )
    return pd.DataFrame(rows)


def tune_learning_rates(
    starts: Mapping[str, Start],
    vocab_size: int,
    train_set: tuple[Sequence[Sequence[int]], Sequence[int]],
    dev_set: tuple[Sequence[Sequence[int]], Sequence[int]],
    size: int,
    grid: Sequence[float],
    seeds: Sequence[int] = (0,),
    dim: int = 50,
    extend: int = 2,
) -> pd.DataFrame:
    """Mean best dev accuracy over `seeds` of every start (rows) at every learning rate (columns), on `size` texts.

    Giving each start the learning rate its own dev accuracy prefers (`table.idxmax(axis=1)`) compares the starts
    fairly; the test set is never looked at. A choice on an edge of the grid says the best rate may lie beyond it,
    so the grid grows by the factor between its last two rates, up to `extend` times on each side, for the starts
    whose choice sits on that edge (their other cells stay NaN).
    """
    grid = sorted(grid)
    scored = {
        (name, lr): _dev_accuracy(start, lr, vocab_size, train_set, dev_set, size, seeds, dim)
        for name, start in starts.items()
        for lr in grid
    }
    for name, start in starts.items():
        for _ in range(extend):
            rates = sorted(lr for (n, lr) in scored if n == name)
            best = max(rates, key=lambda lr: scored[name, lr])
            if len(rates) < 2 or best not in (rates[0], rates[-1]):
                break
            step = rates[1] / rates[0] if best == rates[0] else rates[-1] / rates[-2]
            new = float(f"{best / step if best == rates[0] else best * step:.2g}")
            scored[name, new] = _dev_accuracy(start, new, vocab_size, train_set, dev_set, size, seeds, dim)
    table = pd.Series(scored).unstack()
    table = table.reindex(columns=sorted(table.columns))
    table.columns.name, table.index.name = "lr", "start"
    return table.loc[list(starts)]


def _dev_accuracy(
    start: Start,
    lr: float,
    vocab_size: int,
    train_set: tuple,
    dev_set: tuple,
    size: int,
    seeds: Sequence[int],
    dim: int,
) -> float:
    runs = learning_curves(
        {"run": replace(start, lr=lr)}, vocab_size, train_set, dev_set, dev_set, [size], seeds, dim=dim, progress=False
    )
    return float(runs["dev accuracy"].mean())


def time_to_reach(results: pd.DataFrame, targets: Mapping[int, float]) -> pd.DataFrame:
    """For every run of `learning_curves`: the first epoch whose dev accuracy reaches its size's target, and the
    wall-clock seconds measured from the run's start to the end of that epoch; NaN for a run that never gets there
    (`reached` False), so that such runs can be reported rather than averaged away."""
    rows = []
    for run in results.to_dict("records"):
        curve = np.asarray(run["dev accuracy by epoch"])
        clock = np.asarray(run["seconds by epoch"])
        reached = np.flatnonzero(curve >= targets[run["size"]])
        rows.append(
            {
                "start": run["start"],
                "size": run["size"],
                "seed": run["seed"],
                "target": targets[run["size"]],
                "reached": bool(len(reached)),
                "epochs to target": int(reached[0] + 1) if len(reached) else np.nan,
                "seconds to target": float(clock[reached[0]]) if len(reached) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _task_words(task_vocab: Vocab) -> list[str]:
    return [w for i, w in enumerate(task_vocab.itos) if i > task_vocab.unk_id]
