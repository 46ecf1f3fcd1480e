"""Benchmark: our PyTorch skip-gram (utils.pretraining) against gensim's C implementation, same text, same settings.

Two parts, each printed as a table (and the second plotted into bench/out/word2vec_cost.png):

1. Speed and quality, side by side. gensim 4.4 (from Python lists, as chapter 5 runs it) and ours train skip-gram
   with negative sampling on the news text at the same settings (dimension, window, negatives, min count,
   subsampling, epochs, learning rate), at 2 threads and at 1 thread. Runs are interleaved (gensim, ours, gensim,
   ours, ...) so that a busy spell of the shared machine hits both alike; words/s is corpus words x epochs /
   training seconds (building the vocabulary is not timed, as in gensim's `train`). The table gives the median of
   the repeats and the ratio of the medians (ours / gensim), with both benchmarks' Spearman rho (mean of the runs).
2. Cost as the work grows: our training time (median of interleaved rounds) and the peak memory it adds (each run a
   fresh process), at 0.5M, 1M and 2M words of text (the first documents of the corpus) and at vocabularies of
   about 10k, 20k and 50k words (`min_count` chosen to give the size; the news text has 53.8k distinct words, so
   50k means min_count 1, all of them).

The machine is shared: numbers move from run to run; read the medians and the ratios, not single runs.
`python bench/bench_word2vec.py --help`; the full run takes tens of minutes on 2 idle cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.pretraining import (
    Word2VecConfig,
    news_corpus,
    train_gensim_word2vec,
    train_word2vec,
)
from utils.reproducibility import seed_everything
from utils.similarity import Table, word_similarity_benchmarks

OUT = Path(__file__).resolve().parent / "out"


def _gensim(documents: list[list[str]], config: Word2VecConfig) -> tuple[Table, float]:
    """gensim's vectors and training seconds."""
    return train_gensim_word2vec(documents, config)


def _ours(documents: list[list[str]], config: Word2VecConfig) -> tuple[Table, float]:
    """Our vectors and training seconds."""
    embeddings, stats = train_word2vec(documents, config, progress=False)
    return embeddings, stats.seconds


def speed_and_quality(documents: list[list[str]], config: Word2VecConfig, threads: list[int], repeats: int) -> pd.DataFrame:
    """Interleaved runs of gensim and ours at each thread count: median words/s, their ratio, mean benchmark rho."""
    words = config.epochs * sum(map(len, documents))
    rows = []
    for n in threads:
        runs: dict[str, list[dict]] = {"gensim 4.4": [], "ours": []}
        for repeat in range(repeats):
            for name, train in (("gensim 4.4", _gensim), ("ours", _ours)):
                run_config = Word2VecConfig(**{**config.__dict__, "threads": n, "seed": config.seed + repeat})
                table, seconds = train(documents, run_config)
                result = {"words/s": words / seconds} | word_similarity_benchmarks(table)
                runs[name].append(result)
                print(f"  {n} thread(s), run {repeat + 1}, {name}: {result['words/s']:,.0f} words/s, "
                      f"WordSim {result['WordSim-353 rho']:.3f}, SimLex {result['SimLex-999 rho']:.3f}", flush=True)
        medians = {name: statistics.median(r["words/s"] for r in results) for name, results in runs.items()}
        for name, results in runs.items():
            rows.append({
                "threads": n, "model": name, "median words/s": medians[name],
                "speed vs gensim": medians[name] / medians["gensim 4.4"],
                "WordSim-353 rho": statistics.mean(r["WordSim-353 rho"] for r in results),
                "SimLex-999 rho": statistics.mean(r["SimLex-999 rho"] for r in results),
                "runs": len(results),
            })
    return pd.DataFrame(rows)


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1]) / 1024


def _train_and_measure(words: int, min_count: int, config: Word2VecConfig) -> dict:
    """In a fresh process: train on the first `words` words of the news; the time and the peak memory training added."""
    docs = prefix(news_corpus(), words)
    run_config = Word2VecConfig(**{**config.__dict__, "min_count": min_count})
    before = _status_mb("VmRSS:")
    embeddings, stats = train_word2vec(docs, run_config, progress=False)
    return {
        "corpus words": sum(map(len, docs)), "min_count": min_count, "vocabulary": len(embeddings.vocab),
        "pairs (M)": stats.pairs / 1e6, "train s": stats.seconds, "words/s": stats.words_per_second,
        "peak MB added": _status_mb("VmHWM:") - before,
    }


def min_count_for(documents: list[list[str]], size: int) -> int:
    """The min_count whose vocabulary is closest to `size` words."""
    counts = sorted(Counter(w for doc in documents for w in doc).values(), reverse=True)
    return min(range(1, 100), key=lambda m: abs(sum(1 for c in counts if c >= m) - size))


def prefix(documents: list[list[str]], words: int) -> list[list[str]]:
    """The first documents of the corpus, up to about `words` words."""
    taken, total = [], 0
    for doc in documents:
        if total >= words:
            break
        taken.append(doc)
        total += len(doc)
    return taken


def cost_as_work_grows(
    documents: list[list[str]], config: Word2VecConfig, sizes: list[int], vocabularies: list[int], repeats: int
) -> pd.DataFrame:
    """Our training time and added peak memory, growing the text (at `config.min_count`), then the vocabulary.

    Each run is a fresh process, so that its peak memory is its own and not what earlier runs left behind; the
    cases take turns, `repeats` rounds, and the table keeps each case's median time and largest memory.
    """
    total = sum(map(len, documents))
    cases = [("words", n, config.min_count) for n in sizes] + [("vocabulary", total, min_count_for(documents, v)) for v in vocabularies]
    runs: dict[int, list[dict]] = {i: [] for i in range(len(cases))}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
        for repeat in range(repeats):
            for i, (varied, words, min_count) in enumerate(cases):
                runs[i].append(pool.submit(_train_and_measure, words, min_count, config).result())
                print(f"  round {repeat + 1}, {varied}: {runs[i][-1]}", flush=True)
    rows = []
    for i, (varied, _, _) in enumerate(cases):
        row = {"varied": varied} | runs[i][0]
        row["train s"] = statistics.median(r["train s"] for r in runs[i])
        row["words/s"] = config.epochs * row["corpus words"] / row["train s"]
        row["peak MB added"] = max(r["peak MB added"] for r in runs[i])
        row["s per M words"] = row["train s"] / (config.epochs * row["corpus words"] / 1e6)
        rows.append(row)
    return pd.DataFrame(rows)


def plot_cost(table: pd.DataFrame, path: Path) -> None:
    """Time and memory against corpus words and against vocabulary size, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    panels = (("words", "corpus words", "corpus words (millions)", "text"), ("vocabulary", "vocabulary", "vocabulary (thousands of words)", "vocabulary"))
    for ax, (varied, x, label, what) in zip(axes, panels):
        part = table[table["varied"] == varied].sort_values(x)
        scale = 1e6 if varied == "words" else 1e3
        ax.plot(part[x] / scale, part["train s"], "o-", label="training seconds")
        ax.set_xlabel(label)
        ax.set_ylabel("training seconds")
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        twin = ax.twinx()
        twin.plot(part[x] / scale, part["peak MB added"], "s--", color="tab:orange", label="peak MB added")
        twin.set_ylabel("peak memory added (MB)")
        twin.set_ylim(bottom=0)
        ax.set_title(f"our word2vec as the {what} grows")
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(handles, ["training seconds", "peak MB added"], loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run both parts, print the tables and save the plot."""
    defaults = Word2VecConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=defaults.dim)
    parser.add_argument("--window", type=int, default=defaults.window)
    parser.add_argument("--negatives", type=int, default=defaults.negatives)
    parser.add_argument("--min-count", type=int, default=defaults.min_count)
    parser.add_argument("--sample", type=float, default=defaults.sample)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--seed", type=int, default=0, help="the first run's seed; repeat r uses seed + r")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1], help="thread counts to compare at")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per implementation and thread count")
    parser.add_argument("--fraction", type=float, default=1.0, help="train on this share of the corpus (speed part)")
    parser.add_argument("--cost-epochs", type=int, default=1, help="epochs for the cost part")
    parser.add_argument("--cost-repeats", type=int, default=3, help="interleaved rounds of the cost part (median time)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[500_000, 1_000_000, 2_000_000], help="corpus words")
    parser.add_argument("--vocabularies", type=int, nargs="*", default=[10_000, 20_000, 50_000], help="vocabulary sizes")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    args = parser.parse_args(argv)

    seed_everything(args.seed)
    config = Word2VecConfig(
        dim=args.dim, window=args.window, negatives=args.negatives, min_count=args.min_count,
        sample=args.sample, epochs=args.epochs, seed=args.seed,
    )
    documents = news_corpus()
    speed_docs = documents[: round(len(documents) * args.fraction)]
    fmt = lambda x: f"{x:,.3f}" if abs(x) < 10 else f"{x:,.0f}"
    if not args.skip_speed:
        print(f"speed and quality: {len(speed_docs):,} news articles, {sum(map(len, speed_docs)):,} words; {config} "
              "(threads as in the rows); "
              f"{args.repeats} interleaved runs each (seeds {args.seed}..{args.seed + args.repeats - 1})", flush=True)
        table = speed_and_quality(speed_docs, config, args.threads, args.repeats)
        print(table.to_string(index=False, float_format=fmt))
        for n in args.threads:
            ratio = table[(table["threads"] == n) & (table["model"] == "ours")]["speed vs gensim"].item()
            print(f"ours / gensim, median words/s at {n} thread(s): {ratio:.2f}x")
    if not args.skip_cost:
        cost_config = Word2VecConfig(**{**config.__dict__, "epochs": args.cost_epochs, "threads": args.threads[0]})
        print(f"\ncost as the work grows (ours, {cost_config.threads} thread(s), {cost_config.epochs} epoch(s), "
              f"median of {args.cost_repeats} interleaved rounds):", flush=True)
        cost = cost_as_work_grows(documents, cost_config, args.sizes, args.vocabularies, args.cost_repeats)
        print(cost.to_string(index=False, float_format=fmt))
        plot_cost(cost, OUT / "word2vec_cost.png")
        print(f"plot: {OUT / 'word2vec_cost.png'}")


if __name__ == "__main__":
    main()
