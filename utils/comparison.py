"""Comparison: the course's one rule for saying that one model or start is better than another.

The rule, used by every chapter that compares:

- Differences are *paired*: two starts are run on the same seeds and the same splits (or two single models are
  scored on the same test examples), and we look at the differences, which cancels what the pair shares.
- A difference is reported with an interval of two standard errors either side of its mean.
- A winner is named only when that interval excludes zero, whichever way the gap points; otherwise neither is.
- Every choice (learning rate, epochs, which start is "best") is made on dev data; test data only reports.

`paired_difference` applies the rule to repeated runs (seeds); `mcnemar` to two single models on one test set,
where the paired standard error of the difference in accuracy comes from the examples the two models disagree on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest


@dataclass(frozen=True)
class Difference:
    """Mean of `a - b` with its standard error: the interval is `mean ± 2 stderr`; `winner` is None when it holds 0."""

    a: str
    b: str
    mean: float
    stderr: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - 2 * self.stderr

    @property
    def high(self) -> float:
        return self.mean + 2 * self.stderr

    @property
    def winner(self) -> str | None:
        """`a` if the whole interval is above zero, `b` if it is below, None if it contains zero (or is unknown)."""
        if not np.isfinite(self.stderr):
            return None
        if self.low > 0:
            return self.a
        if self.high < 0:
            return self.b
        return None

    def verdict(self) -> str:
        """A short sentence for prose: who wins, or that the difference is within noise."""
        if self.winner is None:
            return f"no clear difference between {self.a} and {self.b}"
        loser = self.b if self.winner == self.a else self.a
        return f"{self.winner} beats {loser}"

    def as_dict(self, scale: float = 1.0) -> dict[str, object]:
        """One labelled row (differences multiplied by `scale`, e.g. 100 for points of accuracy)."""
        return {
            "mean difference": scale * self.mean,
            "± 2 standard errors": 2 * scale * self.stderr,
            "n": self.n,
            "winner": self.winner or "neither",
        }


def paired_difference(a: Sequence[float], b: Sequence[float], names: tuple[str, str] = ("a", "b")) -> Difference:
    """The rule for repeated runs: `a[i]` and `b[i]` must come from the same seed and split.

    The standard error is the standard deviation of the differences over sqrt(n); with fewer than two pairs it is
    infinite, so no winner can be named.
    """
    a_values, b_values = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_values.shape != b_values.shape or a_values.ndim != 1 or len(a_values) == 0:
        raise ValueError(
            f"paired results need two equally long, non-empty lists, got {a_values.shape} and {b_values.shape}"
        )
    differences = a_values - b_values
    n = len(differences)
    stderr = float(differences.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    return Difference(names[0], names[1], float(differences.mean()), stderr, n)


def compare_runs(
    results: pd.DataFrame, a: str, b: str, value: str, by: str | None = None, pair_on: Sequence[str] = ("seed",),
    label: str = "start",
) -> pd.DataFrame:
    """Apply `paired_difference` to the runs of starts `a` and `b` in `results` (one row per run), within each `by`.

    Runs are matched on `pair_on` (and `by`); a run without its partner raises, because an unpaired run would
    silently change what is compared.
    """
    keys = ([by] if by else []) + list(pair_on)
    wide = results[results[label].isin([a, b])].pivot_table(index=keys, columns=label, values=value)
    if wide[[a, b]].isna().any().any() or len(wide) == 0:
        raise ValueError(f"every run of {a!r} needs a partner run of {b!r} with the same {keys}")
    groups = wide.groupby(level=by) if by else [(None, wide)]
    rows = {}
    for key, part in groups:
        rows[key] = paired_difference(part[a], part[b], (a, b))
    return pd.DataFrame({key: diff.as_dict() for key, diff in rows.items()}).T.rename_axis(by)


@dataclass(frozen=True)
class McNemar:
    """Two single models on one test set: counts of the examples only one of them gets right, and what follows."""

    a: str
    b: str
    only_a: int
    only_b: int
    n: int

    @property
    def difference(self) -> Difference:
        """Accuracy of `a` minus accuracy of `b`, with the paired standard error over the `n` examples."""
        mean = (self.only_a - self.only_b) / self.n
        discordant = (self.only_a + self.only_b) / self.n
        stderr = float(np.sqrt(max(discordant - mean**2, 0.0) / self.n))
        return Difference(self.a, self.b, mean, stderr if stderr > 0 else float("inf"), self.n)

    @property
    def p_value(self) -> float:
        """McNemar's exact test: under "equally good", each disagreement is a fair coin between the two models."""
        disagreements = self.only_a + self.only_b
        if disagreements == 0:
            return 1.0
        return float(binomtest(self.only_a, disagreements, 0.5).pvalue)

    @property
    def winner(self) -> str | None:
        return self.difference.winner


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool], names: tuple[str, str] = ("a", "b")) -> McNemar:
    """Compare two models from their per-example correctness on the same test examples, in the same order."""
    right_a, right_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if right_a.shape != right_b.shape or right_a.ndim != 1 or len(right_a) == 0:
        raise ValueError("McNemar's test needs both models' results on the same, non-empty list of examples")
    return McNemar(
        names[0], names[1], int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b)), len(right_a)
    )
