"""Benchmark: forward+backward time of an embedding lookup vs the equivalent one-hot matrix product.

Chapter 2 runs a small version of this; here the vocabulary grows to GloVe's 400,000 words and the batch holds
512 ids (about a minute on one core). Run it from the repository root with `make bench` or
`python bench/bench_lookup_vs_onehot.py --help`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.one_hot import time_lookup_vs_one_hot  # noqa: E402
from utils.reproducibility import seed_everything  # noqa: E402


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Parse the options, run the timings and print them as a plain-text table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 400_000])
    parser.add_argument("--num-ids", type=int, default=512, help="ids per batch")
    parser.add_argument("--dim", type=int, default=50, help="embedding size")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per cell (the fastest counts)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for PyTorch")
    args = parser.parse_args(argv)

    seed_everything(0)
    print(
        f"lookup vs one-hot matmul, forward + backward: {args.num_ids:,} ids, d = {args.dim}, "
        f"{args.threads} thread(s), torch {torch.__version__}, best of {args.repeats}"
    )
    timings = time_lookup_vs_one_hot(args.vocab_sizes, args.num_ids, args.dim, args.repeats, threads=args.threads, progress=True)
    print(timings.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
    return timings


if __name__ == "__main__":
    main()
