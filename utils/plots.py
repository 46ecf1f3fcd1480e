"""Plotting helpers shared by the chapters and labs, grouped by what they show.

Each function draws on a given Axes (or a new ~(7, 4) figure) and returns the Axes, so a notebook can adjust it.
Interactive (plotly) figures are in `utils.interactive_plots`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator


def _axes(ax: Axes | None, figsize: tuple[float, float] = (7, 4)) -> Axes:
    """The given Axes, or the Axes of a new figure of the course's usual size."""
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


# --- Distributions -------------------------------------------------------------------------------------------


def plot_histogram_vs_normal(values: np.ndarray, bins: int = 100, title: str = "", xlabel: str = "value", ax: Axes | None = None) -> Axes:
    """A density histogram of `values` with the standard normal density N(0, 1) drawn over it."""
    ax = _axes(ax)
    values = np.asarray(values, dtype=float).ravel()
    ax.hist(values, bins=bins, density=True, alpha=0.6, label=f"{len(values):,} values")
    x = np.linspace(min(values.min(), -4.0), max(values.max(), 4.0), 400)
    ax.plot(x, np.exp(-(x**2) / 2) / np.sqrt(2 * np.pi), color="black", label="N(0, 1) density")
    ax.set(xlabel=xlabel, ylabel="density", title=title)
    ax.legend()
    return ax


# --- Measurements --------------------------------------------------------------------------------------------


def plot_scaling(
    frame: pd.DataFrame, x: str, columns: Sequence[str], ylabel: str, xlabel: str | None = None, title: str = "", ax: Axes | None = None
) -> Axes:
    """One line per column of `frame` against column `x`, on log-log axes: how a cost grows with a size."""
    ax = _axes(ax)
    for column in columns:
        ax.loglog(frame[x], frame[column], marker="o", label=column)
    ax.set(xlabel=xlabel or x, ylabel=ylabel, title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return ax


# --- Training and classifiers ----------------------------------------------------------------------------------


def plot_learning_curves(history: pd.DataFrame, title: str = "", axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """Loss and accuracy per epoch from a `utils.training.train` history, training vs dev, side by side.

    A dotted line marks the best dev epoch: the weights that early stopping keeps.
    """
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)[1]
    has_dev = "dev_acc" in history
    for ax, metric, label in zip(axes, ["loss", "acc"], ["cross-entropy loss", "accuracy"]):
        ax.plot(history["epoch"], history[f"train_{metric}"], marker="o", label="training")
        if has_dev:
            ax.plot(history["epoch"], history[f"dev_{metric}"], marker="o", label="dev")
            ax.axvline(history.loc[history["dev_acc"].idxmax(), "epoch"], color="grey", linestyle=":", label="best dev epoch")
        ax.set(xlabel="epoch", ylabel=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        axes[0].figure.suptitle(title)
    return axes


def plot_mean_with_band(
    results: pd.DataFrame, x: str, y: str, by: str, reference: float | None = None, reference_label: str = "",
    logx: bool = True, title: str = "", xlabel: str = "", ylabel: str = "", ax: Axes | None = None,
) -> Axes:
    """One line per value of `by`: the mean of `y` over repeated runs at each `x`, with a band of one standard deviation.

    `reference` draws a horizontal dashed line (e.g. a baseline's score) for comparison.
    """
    ax = _axes(ax)
    for name, group in results.groupby(by, sort=False):
        stats = group.groupby(x)[y].agg(["mean", "std"]).fillna(0.0)
        ax.plot(stats.index, stats["mean"], marker="o", label=str(name))
        ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.2)
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", linewidth=1, label=reference_label or None)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_bars(scores: pd.Series, title: str = "", xlabel: str = "", ax: Axes | None = None) -> Axes:
    """Horizontal bars, one per entry of `scores` (first entry on top), blue for positive and red for negative values."""
    ax = _axes(ax, figsize=(7, max(2.0, 0.25 * len(scores) + 1)))
    values = np.asarray(scores, dtype=float)
    positions = np.arange(len(values))[::-1]
    ax.barh(positions, values, color=np.where(values >= 0, "tab:blue", "tab:red"))
    ax.set_yticks(positions, [str(label) for label in scores.index])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(xlabel=xlabel, title=title)
    ax.grid(True, axis="x", alpha=0.3)
    return ax
