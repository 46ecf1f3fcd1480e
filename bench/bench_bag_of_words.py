"""Benchmark: one training epoch of the Rotten Tomatoes bag-of-words classifier, naive padded mean vs EmbeddingBag.

The naive model is the lecture's `embedding(x).mean(dim=-2)` on padded batches (`NaivePaddedBagOfWords`); the
efficient one is `nn.EmbeddingBag` on flat ids plus offsets (`BagOfWords`), with dense gradients (Adam) or sparse
ones (SparseAdam, which updates only the rows a batch used). All see the same batches in the same order; an epoch
includes cutting the batches, forward, backward and the optimizer step. Run it from the repository root with
`make bench` or `python bench/bench_bag_of_words.py --help`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.data import load_rotten_tomatoes, split  # noqa: E402
from utils.models import BagOfWords, NaivePaddedBagOfWords  # noqa: E402
from utils.reproducibility import seed_everything  # noqa: E402
from utils.text import Vocab, tokenize  # noqa: E402
from utils.training import EncodedTexts, batches, encode_texts, make_optimizers, train_epoch, uses_padding  # noqa: E402

VARIANTS = {
    "naive: Embedding + padded mean": lambda v, d: NaivePaddedBagOfWords(v, d, 2),
    "EmbeddingBag + offsets, dense Adam": lambda v, d: BagOfWords(v, d, 2),
    "EmbeddingBag + offsets, sparse Adam": lambda v, d: BagOfWords(v, d, 2, sparse=True),
}


def epoch_seconds(model: nn.Module, texts: EncodedTexts, labels: list[int], batch_size: int, seed: int) -> float:
    """Wall-clock seconds of one training epoch (`utils.training.train_epoch`, the loop that `train` runs)."""
    optimizers = make_optimizers(model, lr=1e-2, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    train_epoch(model, texts, labels, optimizers, batch_size, generator)
    return time.perf_counter() - start


def ids_looked_up(model: nn.Module, texts: EncodedTexts, labels: list[int], batch_size: int) -> int:
    """How many ids the embedding layer reads in one epoch: a padded batch reads its padding too."""
    padded = uses_padding(model)
    return sum(batch.ids.numel() for batch in batches(texts, labels, batch_size, shuffle=True, generator=torch.Generator().manual_seed(0), padded=padded))


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Parse the options, time each variant (best of a few epochs) and print a plain-text table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[32, 128], help="embedding sizes")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per variant (the fastest counts)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (default: PyTorch's own choice)")
    args = parser.parse_args(argv)

    seed_everything(0, threads=args.threads)
    train = split(load_rotten_tomatoes(), "train")
    tokens = [tokenize(text) for text in train["text"]]
    vocab = Vocab.build(tokens, min_freq=2)
    texts, labels = EncodedTexts(encode_texts(train["text"], vocab)), train["label"].tolist()
    n_tokens = int(texts.lengths.sum())
    print(
        f"one epoch of the bag-of-words classifier: {len(texts):,} reviews, {n_tokens:,} tokens, vocabulary {len(vocab):,}, "
        f"batch {args.batch_size}, {torch.get_num_threads()} thread(s), torch {torch.__version__}, best of {args.repeats}"
    )
    rows = []
    for dim in args.dims:
        for name, make in VARIANTS.items():
            torch.manual_seed(0)
            model = make(len(vocab), dim)
            seconds = min(epoch_seconds(model, texts, labels, args.batch_size, seed) for seed in range(args.repeats))
            looked_up = ids_looked_up(model, texts, labels, args.batch_size)
            rows.append({"d": dim, "variant": name, "seconds / epoch": seconds, "tokens / s": n_tokens / seconds, "ids looked up": looked_up})
    table = pd.DataFrame(rows)
    naive = table.groupby("d")["seconds / epoch"].transform("first")
    table["speed-up vs naive"] = naive / table["seconds / epoch"]
    print(table.to_string(index=False, formatters={"seconds / epoch": "{:.3f}".format, "tokens / s": "{:,.0f}".format,
                                                   "ids looked up": "{:,}".format, "speed-up vs naive": "{:.1f}x".format}))
    return table


if __name__ == "__main__":
    main()
