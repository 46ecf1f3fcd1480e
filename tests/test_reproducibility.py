"""seed_everything: the same seed gives the same random numbers everywhere, and its options take effect."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from utils.reproducibility import seed_everything


@pytest.fixture(autouse=True)
def _restore_torch_settings():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def _draws(generator: torch.Generator) -> tuple:
    return (
        random.random(),
        np.random.rand(3).tolist(),
        torch.randn(3).tolist(),
        torch.randn(3, generator=generator).tolist(),
        torch.nn.Embedding(4, 2).weight.tolist(),
    )


def test_same_seed_same_numbers() -> None:
    first = _draws(seed_everything(7))
    second = _draws(seed_everything(7))
    assert first == second


def test_different_seed_different_numbers() -> None:
    first = _draws(seed_everything(7))
    other = _draws(seed_everything(8))
    assert all(a != b for a, b in zip(first, other))


def test_generator_is_independent_of_global_state() -> None:
    generator = seed_everything(3)
    torch.randn(100)  # consuming the global stream must not move the returned generator
    expected = torch.randn(3, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.randn(3, generator=generator), expected)


def test_deterministic_algorithms_and_hash_seed() -> None:
    torch.use_deterministic_algorithms(False)
    seed_everything(5)
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ["PYTHONHASHSEED"] == "5"


def test_threads_option() -> None:
    before = torch.get_num_threads()
    seed_everything(0)
    assert torch.get_num_threads() == before
    seed_everything(0, threads=1)
    assert torch.get_num_threads() == 1
