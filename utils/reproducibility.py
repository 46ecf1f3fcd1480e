"""One call that makes a notebook's numbers the same on every run."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int = 0, threads: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and PyTorch, force deterministic kernels, and return a seeded torch Generator.

    `threads` caps PyTorch's CPU threads (fewer threads can also mean fewer run-to-run float differences).
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.Generator().manual_seed(seed)
