"""The plotting helpers draw what they promise (checked on the Axes they return, with the Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from utils.plots import plot_histogram_vs_normal, plot_scaling  # noqa: E402


def test_histogram_vs_normal() -> None:
    values = np.random.default_rng(0).standard_normal(10_000)
    ax = plot_histogram_vs_normal(values, bins=50, title="t")
    heights = np.array([patch.get_height() for patch in ax.patches])
    widths = np.array([patch.get_width() for patch in ax.patches])
    assert len(heights) == 50
    assert np.isclose((heights * widths).sum(), 1.0)  # a density histogram
    (line,) = ax.lines
    x, y = line.get_data()
    assert np.isclose(y.max(), 1 / np.sqrt(2 * np.pi), rtol=1e-3) and x.min() <= -4 and x.max() >= 4
    assert ax.get_title() == "t" and ax.get_ylabel() == "density"
    plt.close(ax.figure)


def test_plot_scaling_is_log_log_with_one_line_per_column() -> None:
    frame = pd.DataFrame({"n": [10, 100, 1000], "a": [1.0, 10.0, 100.0], "b": [1.0, 1.0, 1.0]})
    _, given = plt.subplots()
    ax = plot_scaling(frame, "n", ["a", "b"], ylabel="time", ax=given)
    assert ax is given
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.lines] == ["a", "b"]
    assert list(ax.lines[0].get_ydata()) == [1.0, 10.0, 100.0]
    assert ax.get_xlabel() == "n" and ax.get_ylabel() == "time"
    plt.close(ax.figure)
