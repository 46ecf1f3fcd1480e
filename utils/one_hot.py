"""Embedding lookups seen as one-hot matrix products: the same numbers, computed the expensive way, and the cost.

Chapter 2 uses these to show that a lookup is a linear layer applied to one-hot vectors, and
`bench/bench_lookup_vs_onehot.py` uses `time_lookup_vs_one_hot` to measure what that view would cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


def one_hot_lookup(ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Rows of `weight` selected by multiplying one-hot vectors (one per id) with the whole matrix."""
    return F.one_hot(ids, num_classes=weight.shape[0]).to(weight.dtype) @ weight


def count_vectors(ids: torch.Tensor, offsets: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The (documents, vocab_size) matrix of token counts for flat ids plus offsets (the `nn.EmbeddingBag` input)."""
    lengths = torch.diff(offsets, append=torch.tensor([len(ids)]))
    documents = torch.repeat_interleave(torch.arange(len(offsets)), lengths)
    counts = torch.zeros(len(offsets), vocab_size)
    return counts.index_put_((documents, ids), torch.ones(len(ids)), accumulate=True)


def best_time_ms(step: Callable[[], object], repeats: int = 5, min_seconds: float = 0.05) -> float:
    """Fastest wall-clock time of `step()` in milliseconds, over at least `repeats` calls and `min_seconds` seconds.

    One untimed warm-up call comes first. The minimum, as `timeit` recommends: other processes can only add time,
    and cheap steps get many tries.
    """
    step()
    times: list[float] = []
    while len(times) < repeats or sum(times) < min_seconds:
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def _forward_backward(forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], ids: torch.Tensor, weight: torch.Tensor) -> Callable[[], None]:
    """A step that computes `forward(ids, weight)`, sums it and backpropagates into a fresh `weight.grad`."""

    def step() -> None:
        weight.grad = None
        forward(ids, weight).sum().backward()

    return step


#: The three ways of getting embedding vectors (and the gradient of the table) that `time_lookup_vs_one_hot` times.
METHODS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "lookup": F.embedding,
    "sparse lookup": lambda ids, weight: F.embedding(ids, weight, sparse=True),
    "one-hot matmul": one_hot_lookup,
}


def time_lookup_vs_one_hot(
    vocab_sizes: Iterable[int],
    num_ids: int = 256,
    dim: int = 50,
    repeats: int = 5,
    seed: int = 0,
    threads: int | None = 1,
    progress: bool = False,
) -> pd.DataFrame:
    """Forward+backward time (ms) of a lookup vs a one-hot product for `num_ids` random ids, per vocabulary size.

    Also reports the size of the one-hot matrix the product needs and how many times slower it is than the lookup.
    Runs on `threads` CPU threads (one by default: it compares the work done, and thread pools make timings on a
    busy machine erratic); None keeps PyTorch's setting.
    """
    generator = torch.Generator().manual_seed(seed)
    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    rows = []
    try:
        for vocab_size in tqdm(list(vocab_sizes), desc="vocabulary sizes", disable=not progress):
            weight = torch.randn(vocab_size, dim, generator=generator).requires_grad_()
            ids = torch.randint(vocab_size, (num_ids,), generator=generator)
            row: dict[str, float] = {"vocab_size": vocab_size}
            for name, forward in METHODS.items():
                row[f"{name} (ms)"] = best_time_ms(_forward_backward(forward, ids, weight), repeats)
            row["one-hot matrix (MB)"] = num_ids * vocab_size * 4 / 2**20
            row["slowdown"] = row["one-hot matmul (ms)"] / row["lookup (ms)"]
            rows.append(row)
    finally:
        torch.set_num_threads(saved_threads)
    return pd.DataFrame(rows)
