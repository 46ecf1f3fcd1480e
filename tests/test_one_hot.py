"""Embedding lookups as one-hot products: equal values and gradients, count vectors, and the timing table."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from utils import one_hot
from utils.one_hot import best_time_ms, count_vectors, one_hot_lookup, time_lookup_vs_one_hot


def test_one_hot_lookup_equals_lookup_values_and_gradients() -> None:
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(20, 4, generator=generator)
    ids = torch.tensor([[3, 7, 3, 0], [19, 3, 0, 0]])
    upstream = torch.randn(2, 4, 4, generator=generator)
    a, b = table.clone().requires_grad_(), table.clone().requires_grad_()
    out_a, out_b = F.embedding(ids, a), one_hot_lookup(ids, b)
    assert out_b.shape == (2, 4, 4)
    torch.testing.assert_close(out_b, out_a, rtol=0, atol=0)
    (out_a * upstream).sum().backward()
    (out_b * upstream).sum().backward()
    torch.testing.assert_close(b.grad, a.grad)
    # Row 3 occurs three times: its gradient is the sum of the three upstream rows.
    torch.testing.assert_close(a.grad[3], upstream[0, 0] + upstream[0, 2] + upstream[1, 1])
    assert (a.grad[[1, 2, 4]] == 0).all()


def test_count_vectors() -> None:
    ids = torch.tensor([2, 2, 5, 1, 4, 4, 4])
    offsets = torch.tensor([0, 3, 3])  # documents [2, 2, 5], [], [1, 4, 4, 4]
    counts = count_vectors(ids, offsets, vocab_size=6)
    expected = torch.tensor([[0, 0, 2, 0, 0, 1], [0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 3, 0]], dtype=torch.float32)
    torch.testing.assert_close(counts, expected)
    table = torch.randn(6, 3)
    bag = torch.nn.EmbeddingBag.from_pretrained(table, mode="sum")
    torch.testing.assert_close(counts @ table, bag(ids, offsets))


def test_best_time_ms_takes_the_fastest_call(monkeypatch) -> None:
    # A fake clock that each call of `step` moves forward by the next duration: the timing becomes exact.
    clock = [0.0]
    durations = iter([5.0, 0.03, 0.01, 0.02, 0.04])  # warm-up, then the timed calls
    monkeypatch.setattr(one_hot.time, "perf_counter", lambda: clock[0])

    def step() -> None:
        clock[0] += next(durations)

    assert best_time_ms(step, repeats=3, min_seconds=0) == pytest.approx(10.0)
    clock[0], durations = 0.0, iter([5.0, 0.03, 0.01, 0.02, 0.04])
    assert best_time_ms(step, repeats=2, min_seconds=0.05) == pytest.approx(10.0)  # 0.04 s after two calls: a third
    assert next(durations) == 0.04  # ... and no more than needed


def test_time_lookup_vs_one_hot_table() -> None:
    threads = torch.get_num_threads()
    table = time_lookup_vs_one_hot([100, 2_000], num_ids=32, dim=8, repeats=1)
    assert torch.get_num_threads() == threads
    assert list(table["vocab_size"]) == [100, 2_000]
    assert list(table.columns) == ["vocab_size", "lookup (ms)", "sparse lookup (ms)", "one-hot matmul (ms)", "one-hot matrix (MB)", "slowdown"]
    assert (table.drop(columns="vocab_size") > 0).all().all()
    torch.testing.assert_close(table["one-hot matrix (MB)"].tolist(), [32 * 100 * 4 / 2**20, 32 * 2_000 * 4 / 2**20])
    torch.testing.assert_close(table["slowdown"].tolist(), (table["one-hot matmul (ms)"] / table["lookup (ms)"]).tolist())
