"""Benchmark: our PyTorch skip-gram (utils.pretraining) against gensim's C implementation, same corpus, same settings.

Both train skip-gram with negative sampling on the 2.1M-word news corpus of chapter 5, with the same dimension,
window, negatives, min count, subsampling, epochs, learning rate and threads. Printed side by side: training
time and words per second (corpus words x epochs / training seconds; building the vocabulary is timed apart;
with --repeats, the fastest of interleaved runs, as timeit does, since other load on the machine only slows runs down),
and the Spearman correlation with human judgements on WordSim-353 and SimLex-999, with GloVe 6B 50-d (trained
on 6 billion tokens) as the reference. gensim runs twice: from Python lists and from a text file (`corpus_file`,
its fastest mode). Takes a few minutes on 2 cores: `python bench/bench_word2vec.py --help`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.data import load_glove  # noqa: E402
from utils.pretraining import Word2VecConfig, gensim_word2vec, news_corpus, train_gensim_word2vec, train_word2vec  # noqa: E402
from utils.reproducibility import seed_everything  # noqa: E402
from utils.similarity import Table, word_similarity_benchmarks  # noqa: E402


def _scores(name: str, table: Table, threads: int | str, vocab_s: float, train_s: float, words: int) -> dict:
    """One row of the results table: timings and both benchmark correlations with their pair counts."""
    row = {"model": name, "threads": threads, "vocab s": vocab_s, "train s": train_s, "words/s": words / train_s if train_s else float("nan")}
    return row | word_similarity_benchmarks(table)


def _gensim(documents: list[list[str]], config: Word2VecConfig, corpus_file: str | None) -> tuple[Table, float, float]:
    """Train gensim's Word2Vec with our settings, from Python lists or from a text file; return vectors and timings."""
    if corpus_file is None:
        started = time.perf_counter()
        table, train_s = train_gensim_word2vec(documents, config)
        return table, time.perf_counter() - started - train_s, train_s
    model = gensim_word2vec(config)
    started = time.perf_counter()
    model.build_vocab(corpus_file=corpus_file)
    built = time.perf_counter()
    model.train(corpus_file=corpus_file, total_words=model.corpus_total_words, epochs=config.epochs)
    return (model.wv.index_to_key, model.wv.vectors), built - started, time.perf_counter() - built


def _ours(documents: list[list[str]], config: Word2VecConfig) -> tuple[Table, float, float]:
    """Train our implementation; return vectors, time to build the vocabulary and encode, and training time."""
    started = time.perf_counter()
    embeddings, stats = train_word2vec(documents, config, progress=False)
    return embeddings, time.perf_counter() - started - stats.seconds, stats.seconds


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Parse the options, train both implementations, print and return the table."""
    defaults = Word2VecConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=defaults.dim)
    parser.add_argument("--window", type=int, default=defaults.window)
    parser.add_argument("--negatives", type=int, default=defaults.negatives)
    parser.add_argument("--min-count", type=int, default=defaults.min_count)
    parser.add_argument("--sample", type=float, default=defaults.sample)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="runs per implementation; the fastest counts")
    parser.add_argument("--skip-gensim", action="store_true", help="time only our implementation")
    args = parser.parse_args(argv)

    seed_everything(args.seed)
    config = Word2VecConfig(
        dim=args.dim, window=args.window, negatives=args.negatives, min_count=args.min_count,
        sample=args.sample, epochs=args.epochs, threads=args.threads, seed=args.seed,
    )
    documents = news_corpus()
    n_words = sum(map(len, documents))
    print(f"corpus: {len(documents):,} news articles, {n_words:,} words; {config}; best of {args.repeats}")
    runners = {"ours (utils.pretraining)": lambda: _ours(documents, config)}
    if not args.skip_gensim:
        runners = {
            "gensim 4.4 (Python lists)": lambda: _gensim(documents, config, corpus_file=None),
            "gensim 4.4 (corpus_file)": lambda: _gensim(documents, config, corpus_file=str(path)),
            **runners,
        }
    best: dict[str, tuple[Table, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.txt"
        path.write_text("\n".join(" ".join(doc) for doc in documents) + "\n", encoding="utf-8")
        for _ in range(args.repeats):  # interleaved, so a busy spell on the machine hits every implementation alike
            for name, run in runners.items():
                table, vocab_s, train_s = run()
                if name not in best or train_s < best[name][2]:
                    best[name] = (table, vocab_s, train_s)
    rows = [_scores(name, table, config.threads, vocab_s, train_s, config.epochs * n_words) for name, (table, vocab_s, train_s) in best.items()]
    rows.append(_scores("GloVe 6B 50-d (reference)", load_glove(), "-", float("nan"), float("nan"), 0))
    results = pd.DataFrame(rows)
    print(results.to_string(index=False, float_format=lambda x: f"{x:,.3f}" if abs(x) < 10 else f"{x:,.0f}"))
    return results


if __name__ == "__main__":
    main()
