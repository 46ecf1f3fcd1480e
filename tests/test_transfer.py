"""Aligning a pre-trained table with a task vocabulary: which rows are copied, the rule for the rest, coverage."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch

from utils.data import WordVectors
from utils.transfer import (
    Coverage,
    Start,
    align_embeddings,
    coverage,
    learning_curves,
    time_to_reach,
    training_settings,
    tune_learning_rates,
)
from utils.text import Vocab

PRETRAINED = WordVectors(
    ["good", "bad", "movie", "plot", "the"],
    np.array(
        [[2, 0, 0], [-2, 0, 0], [0, 2, 0], [0, 0, 2], [1, 1, 1]], dtype=np.float32
    ),
)
TASK = Vocab(
    ["the", "movie", "good", "boring", "!"],
    counts={"the": 10, "movie": 5, "good": 3, "boring": 2, "!": 4},
)


def test_known_words_get_their_pretrained_vectors_unchanged_without_rescaling() -> None:
    table, _ = align_embeddings(TASK, PRETRAINED, std=None)
    assert table.shape == (len(TASK), 3)
    for word in ["the", "movie", "good"]:
        torch.testing.assert_close(
            table[TASK[word]], torch.from_numpy(PRETRAINED[word])
        )


def test_pad_is_zero_and_unknown_words_get_the_mean_pretrained_vector() -> None:
    """The rule of lab 5: [UNK] and every word the table lacks get the mean vector, [PAD] zeros."""
    table, _ = align_embeddings(TASK, PRETRAINED, std=None)
    assert torch.all(table[TASK.pad_id] == 0)
    mean = torch.from_numpy(PRETRAINED.vectors).mean(dim=0)
    for row in [TASK.unk_id, TASK["boring"], TASK["!"]]:
        torch.testing.assert_close(table[row], mean)


def test_the_mean_ignores_the_pad_and_unk_rows_of_a_vocab_table() -> None:
    source_vocab = Vocab(["movie", "good"])
    matrix = torch.tensor(
        [[0.0, 0.0], [0.0, 0.0], [1.0, 2.0], [3.0, 4.0]]
    )  # [PAD], [UNK] rows are 0
    table, _ = align_embeddings(TASK, (source_vocab, matrix), std=None)
    torch.testing.assert_close(table[TASK["boring"]], torch.tensor([2.0, 3.0]))


def test_rescaling_sets_the_std_of_the_pretrained_entries_and_keeps_directions() -> (
    None
):
    raw, _ = align_embeddings(TASK, PRETRAINED, std=None)
    scaled, _ = align_embeddings(TASK, PRETRAINED, std=1.0)
    factor = 1.0 / float(PRETRAINED.vectors.std())
    torch.testing.assert_close(scaled, raw * factor)


def test_the_table_is_deterministic() -> None:
    a, _ = align_embeddings(TASK, PRETRAINED, seed=0)
    b, _ = align_embeddings(
        TASK, PRETRAINED, seed=1
    )  # seed is accepted and ignored: nothing is random
    torch.testing.assert_close(a, b)


def test_coverage_counts_types_and_running_tokens() -> None:
    _, cov = align_embeddings(TASK, PRETRAINED)
    assert cov == Coverage(types=5, types_found=3, tokens=24, tokens_found=18)
    assert cov.type_rate == pytest.approx(0.6) and cov.token_rate == pytest.approx(0.75)
    row = cov.as_dict()
    assert row["types found"] == 3 and row["token coverage"] == pytest.approx(0.75)


def test_coverage_of_other_text_counts_every_token_of_that_text_in_the_denominator() -> None:
    # "plot" is pre-trained but not a task word: it reaches the model as [UNK], so it counts against coverage;
    # "boring" is a task word the table lacks; "movie" is both.
    test_tokens = Counter(["boring", "boring", "movie", "plot", "plot", "plot"])
    cov = coverage(TASK, PRETRAINED, token_counts=test_tokens)
    assert (cov.types, cov.types_found) == (3, 1)
    assert (cov.tokens, cov.tokens_found) == (6, 1)
    assert isinstance(cov.tokens, int) and cov.token_rate == pytest.approx(1 / 6)


def test_accepts_a_vocab_and_matrix_pair_as_the_pretrained_table() -> None:
    source_vocab = Vocab(["movie", "good"])
    matrix = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
    table, cov = align_embeddings(TASK, (source_vocab, matrix), std=None)
    torch.testing.assert_close(table[TASK["good"]], torch.tensor([3.0, 4.0]))
    assert cov.types_found == 2  # "[PAD]" and "[UNK]" of the source are not words


# --- Classifiers started from a table, and the learning-curve grid ---------------------------------------------


def test_start_builds_random_frozen_and_fine_tuned_classifiers() -> None:
    vectors = torch.randn(7, 4)
    random = Start().classifier(7, 4, num_classes=2)
    frozen = Start(vectors, freeze=True).classifier(7, 4, num_classes=2)
    tuned = Start(vectors, freeze=False).classifier(7, 4, num_classes=2)
    assert (
        random.embedding.weight.requires_grad and tuned.embedding.weight.requires_grad
    )
    assert not frozen.embedding.weight.requires_grad
    torch.testing.assert_close(frozen.embedding.weight[1:], vectors[1:])
    assert torch.all(frozen.embedding.weight[0] == 0)


def test_training_settings_give_frozen_tables_a_larger_learning_rate() -> None:
    assert (
        training_settings(100, freeze=True)["lr"]
        > training_settings(100, freeze=False)["lr"]
    )
    assert (
        training_settings(100, freeze=False)["epochs"]
        >= training_settings(10_000, freeze=False)["epochs"]
    )


def _toy_sentiment(n: int, seed: int) -> tuple[list[list[int]], list[int]]:
    """Texts of 3 ids: two filler words from 4..19 plus one cue, id 2 (positive) or id 3 (negative)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).tolist()
    return [list(rng.integers(4, 20, 2)) + [2 if y else 3] for y in labels], labels


def test_learning_curves_runs_every_start_size_and_seed() -> None:
    oracle = torch.zeros(20, 2)
    oracle[2], oracle[3] = (
        torch.tensor([9.0, 0.0]),
        torch.tensor([-9.0, 0.0]),
    )  # the cue words, told apart in advance
    starts = {
        "random": Start(),
        "oracle, frozen": Start(oracle, freeze=True),
        "oracle, tiny steps": Start(oracle, freeze=True, lr=1e-6),
    }
    results = learning_curves(
        starts,
        20,
        _toy_sentiment(200, 0),
        _toy_sentiment(100, 1),
        _toy_sentiment(100, 2),
        sizes=[20, 100],
        seeds=[0, 1],
        dim=2,
        progress=False,
    )
    assert len(results) == 3 * 2 * 2
    assert set(results.columns) >= {
        "start",
        "size",
        "seed",
        "test accuracy",
        "dev accuracy",
        "epochs",
        "seconds",
    }
    oracle_runs = results[results.start == "oracle, frozen"]
    assert (
        oracle_runs["test accuracy"].min() >= 0.95
    )  # aligned, frozen vectors: 20 texts suffice
    # A start's own learning rate replaces the default: with tiny steps the linear layer stays near its random start.
    assert results[results.start == "oracle, tiny steps"]["test accuracy"].mean() < 0.9


def test_plot_mean_with_band_draws_one_line_and_band_per_start() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from utils.plots import plot_mean_with_band

    results = pd.DataFrame(
        {
            "start": ["a"] * 4 + ["b"] * 4,
            "size": [10, 10, 100, 100] * 2,
            "acc": [0.5, 0.7, 0.8, 0.8, 0.6, 0.6, 0.9, 0.7],
        }
    )
    ax = plot_mean_with_band(
        results, "size", "acc", by="start", reference=0.75, reference_label="baseline"
    )
    means = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    np.testing.assert_allclose(means["a"], [0.6, 0.8])
    np.testing.assert_allclose(means["b"], [0.6, 0.8])
    assert "baseline" in means and ax.get_xscale() == "log"
    assert len(ax.collections) == 2  # one band per start
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.6 - np.std([0.5, 0.7], ddof=1))


def test_learning_curves_record_the_dev_accuracy_of_every_epoch() -> None:
    results = learning_curves(
        {"random": Start()},
        20,
        _toy_sentiment(200, 0),
        _toy_sentiment(100, 1),
        _toy_sentiment(100, 2),
        sizes=[50],
        seeds=[0],
        dim=2,
        progress=False,
    )
    curve = results["dev accuracy by epoch"].iloc[0]
    assert (
        len(curve) == results["epochs"].iloc[0]
        and max(curve) == results["dev accuracy"].iloc[0]
    )
    clock = results["seconds by epoch"].iloc[0]
    assert len(clock) == len(curve) and clock[-1] <= results["seconds"].iloc[0]
    correct = results["test correct"].iloc[0]
    assert len(correct) == 100 and np.mean(correct) == results["test accuracy"].iloc[0]


def test_time_to_reach_finds_the_first_epoch_at_the_target() -> None:
    results = pd.DataFrame(
        {
            "start": ["a", "b", "c"],
            "size": [10, 10, 20],
            "seed": [0, 0, 0],
            "test accuracy": [0.0] * 3,
            "dev accuracy": [0.8, 0.9, 0.6],
            "epochs": [4, 2, 3],
            "seconds": [8.0, 1.0, 3.0],
            "dev accuracy by epoch": [
                (0.5, 0.7, 0.8, 0.6),
                (0.9, 0.85),
                (0.5, 0.6, 0.55),
            ],
            "seconds by epoch": [(1.0, 5.0, 6.0, 8.0), (0.9, 1.0), (1.0, 2.0, 3.0)],
        }
    )
    reach = time_to_reach(results, {10: 0.7, 20: 0.65})
    # seconds are read off the measured clock, not derived from the run's mean time per epoch (8 / 4 * 2 = 4)
    assert reach["epochs to target"].iloc[0] == 2 and reach["seconds to target"].iloc[0] == 5.0
    assert reach["epochs to target"].iloc[1] == 1 and reach["seconds to target"].iloc[1] == 0.9
    assert np.isnan(reach["seconds to target"].iloc[2])  # never reached
    assert reach["reached"].tolist() == [True, True, False]


def test_tune_learning_rates_reports_every_start_and_rate_and_a_tiny_rate_loses() -> (
    None
):
    oracle = torch.zeros(20, 2)
    oracle[2], oracle[3] = torch.tensor([9.0, 0.0]), torch.tensor([-9.0, 0.0])
    starts = {"random": Start(), "oracle, frozen": Start(oracle, freeze=True)}
    table = tune_learning_rates(
        starts,
        20,
        _toy_sentiment(200, 0),
        _toy_sentiment(100, 1),
        size=100,
        grid=[1e-6, 0.1],
        dim=2,
        extend=0,
    )
    assert list(table.index) == ["random", "oracle, frozen"] and list(
        table.columns
    ) == [1e-6, 0.1]
    assert (
        table.idxmax(axis=1)["random"] == 0.1
    )  # the random start cannot learn with tiny steps


def test_tune_learning_rates_extends_the_grid_past_an_edge_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import utils.transfer

    # dev accuracy peaks at lr = 1e-2 for "a" and falls with lr for "b": a grid [1e-4, 1e-3] has both choices on an edge
    def fake_dev_accuracy(start: Start, lr: float, *args: object) -> float:
        peak = 1e-2 if start.freeze else 1e-6
        return 1.0 - abs(np.log10(lr) - np.log10(peak))

    monkeypatch.setattr(utils.transfer, "_dev_accuracy", fake_dev_accuracy)
    starts = {"a": Start(freeze=True), "b": Start()}
    table = tune_learning_rates(starts, 20, ([], []), ([], []), size=10, grid=[1e-3, 1e-4], extend=3)
    assert list(table.columns) == pytest.approx([1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
    assert table.idxmax(axis=1).tolist() == pytest.approx([1e-2, 1e-6])
    assert np.isnan(table.loc["a", 1e-5]) and np.isnan(table.loc["b", 1e-2])  # only the edge start is extended
    limited = tune_learning_rates(starts, 20, ([], []), ([], []), size=10, grid=[1e-3, 1e-4], extend=1)
    assert limited.idxmax(axis=1).tolist() == pytest.approx([1e-2, 1e-5])  # still on an edge: the caller must see it
