"""The one comparison rule: paired differences, two standard errors, a winner only when the interval excludes 0."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from utils.comparison import compare_runs, mcnemar, paired_difference


def test_the_standard_error_is_that_of_the_paired_differences_not_of_each_side() -> None:
    # Both sides vary a lot from seed to seed, but b is always exactly 0.01 below a: pairing removes the seed effect.
    a = np.array([0.60, 0.80, 0.70, 0.90])
    diff = paired_difference(a, a - 0.01, ("a", "b"))
    assert diff.mean == pytest.approx(0.01)
    assert diff.stderr == pytest.approx(0.0, abs=1e-12)
    assert diff.winner == "a"


def test_stderr_is_sample_std_over_sqrt_n() -> None:
    d = np.array([0.03, -0.01, 0.02, 0.00])
    diff = paired_difference(d, np.zeros(4))
    assert diff.stderr == pytest.approx(d.std(ddof=1) / 2)
    assert (diff.low, diff.high) == pytest.approx((d.mean() - 2 * diff.stderr, d.mean() + 2 * diff.stderr))


@pytest.mark.parametrize("sign", [1, -1])
def test_positive_and_negative_gaps_are_treated_alike(sign: int) -> None:
    gaps = sign * np.array([0.010, 0.012, 0.011])  # clearly away from zero
    noisy = sign * np.array([0.03, -0.02, 0.01])  # mean 0.0067 in the same direction, interval holds zero
    clear, unclear = paired_difference(gaps, np.zeros(3), ("x", "y")), paired_difference(noisy, np.zeros(3), ("x", "y"))
    assert clear.winner == ("x" if sign > 0 else "y")
    assert unclear.winner is None
    assert "no clear difference" in unclear.verdict()


def test_a_single_pair_names_no_winner() -> None:
    diff = paired_difference([0.9], [0.1])
    assert diff.winner is None and np.isinf(diff.stderr)


def test_unequal_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="equally long"):
        paired_difference([0.1, 0.2], [0.1])


def test_compare_runs_pairs_on_seed_within_each_size_and_refuses_a_missing_partner() -> None:
    rows = [
        {"start": s, "size": size, "seed": seed, "acc": base + (0.05 if s == "pre" else 0.0) + 0.1 * seed}
        for size, base in [(100, 0.5), (1000, 0.7)]
        for seed in range(3)
        for s in ["pre", "random"]
    ]
    table = compare_runs(pd.DataFrame(rows), "pre", "random", "acc", by="size")
    assert list(table.index) == [100, 1000]
    assert table["mean difference"].astype(float).tolist() == pytest.approx([0.05, 0.05])
    assert set(table["winner"]) == {"pre"}
    with pytest.raises(ValueError, match="partner"):
        compare_runs(pd.DataFrame(rows[:-1]), "pre", "random", "acc", by="size")


def test_mcnemar_counts_only_the_disagreements() -> None:
    a = [True] * 50 + [True] * 30 + [False] * 10 + [False] * 10
    b = [True] * 50 + [False] * 30 + [True] * 10 + [False] * 10
    result = mcnemar(a, b, ("A", "B"))
    assert (result.only_a, result.only_b, result.n) == (30, 10, 100)
    assert result.difference.mean == pytest.approx(0.2)
    # paired variance of a per-example difference in {-1, 0, 1}: E[d^2] - E[d]^2 = 0.4 - 0.04
    assert result.difference.stderr == pytest.approx(np.sqrt(0.36 / 100))
    assert result.winner == "A"
    assert 0.001 < result.p_value < 0.01  # exact binomial: 10 or fewer of 40 fair coins, two-sided


def test_mcnemar_is_symmetric_and_agreement_gives_no_winner() -> None:
    a = [True, False] * 20
    b = [False, True] * 20
    assert mcnemar(a, b).winner is None and mcnemar(a, b).difference.mean == 0
    flipped = mcnemar(b[:30] + [True] * 10, a[:30] + [False] * 10, ("B", "A"))
    forward = mcnemar(a[:30] + [False] * 10, b[:30] + [True] * 10, ("A", "B"))
    assert flipped.difference.mean == pytest.approx(-forward.difference.mean)
    assert flipped.p_value == pytest.approx(forward.p_value)
    assert mcnemar([True] * 5, [True] * 5).p_value == 1.0
