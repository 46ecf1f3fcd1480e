"""Plotting helpers shared by the chapters and labs, grouped by what they show.

Each matplotlib function draws on a given Axes (or a new ~(7, 4) figure) and returns the Axes, so a notebook can
adjust it; the interactive maps are plotly figures that the book serves offline (see `BookRenderer`).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator
from plotly.io.base_renderers import MimetypeRenderer
from plotly.io.json import to_json_plotly


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


# --- Interactive maps (plotly) -------------------------------------------------------------------------------

_figure_numbers = itertools.count(1)  # element ids that are unique within a notebook and the same on every build

# Where the website serves plotly.js (copied there by scripts/vendor_assets.py), relative to the site's root.
PLOTLY_JS_PATH = "_static/vendor/plotly/plotly.min.js"

_BOOK_FIGURE_HTML = """<div id="{id}" class="plotly-graph-div" style="height:{height}px; width:100%;"></div>
<script>
(function () {{
  var draw = function () {{ Plotly.newPlot("{id}", {data}, {layout}, {config}); }};
  if (window.Plotly) {{ draw(); return; }}
  var src = (document.documentElement.dataset.content_root || "") + "{path}";
  var script = document.querySelector('script[src="' + src + '"]');
  if (!script) {{
    script = document.createElement("script");
    script.src = src;
    document.head.appendChild(script);
  }}
  script.addEventListener("load", draw);
}})();
</script>"""


class BookRenderer(MimetypeRenderer):
    """Plotly figures as HTML that loads plotly.js from the website itself, so the book's figures work offline."""

    def to_mimebundle(self, fig_dict: dict) -> dict:
        """The `text/html` output the book shows: a div and a script that draws into it once plotly.js is there."""
        layout = fig_dict.get("layout", {})
        data = to_json_plotly(fig_dict.get("data", []))
        html = _BOOK_FIGURE_HTML.format(
            id=f"plotly-{next(_figure_numbers)}-{hashlib.sha1(data.encode()).hexdigest()[:8]}",
            height=int(layout.get("height") or 500),
            data=data,
            layout=to_json_plotly(layout),
            config=to_json_plotly({"responsive": True, "displaylogo": False, **fig_dict.get("config", {})}),
            path=PLOTLY_JS_PATH,
        )
        return {"text/html": html}


# JupyterLab and VS Code draw the plotly mime type themselves; the book (myst-nb) uses the HTML.
pio.renderers["book"] = BookRenderer()
pio.renderers.default = "plotly_mimetype+book"


def embedding_map(
    words: Sequence[str],
    coords: np.ndarray,
    colors: Sequence | None = None,
    title: str = "",
    show_text: bool | None = None,
    height: int = 500,
) -> go.Figure:
    """An interactive 2-d map of word vectors (e.g. after PCA): hover over a point to read its word.

    `colors` may hold one category per word (one legend entry per category) or one number per word (a colour
    scale); words are written next to their points when there are at most 60 of them, unless `show_text` says.
    """
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) != len(words):
        raise ValueError(f"coords must have shape ({len(words)}, 2), got {coords.shape}")
    words = [str(word) for word in words]
    mode = "markers+text" if (len(words) <= 60 if show_text is None else show_text) else "markers"
    style = dict(mode=mode, textposition="top center", hovertemplate="<b>%{text}</b><br>(%{x:.2f}, %{y:.2f})")
    figure = go.Figure()
    if colors is None:
        figure.add_trace(go.Scatter(x=coords[:, 0], y=coords[:, 1], text=words, name="", **style))
    elif all(isinstance(c, (int, float, np.number)) and not isinstance(c, bool) for c in colors):
        marker = dict(color=np.asarray(colors, dtype=float), colorscale="RdBu", showscale=True)
        figure.add_trace(go.Scatter(x=coords[:, 0], y=coords[:, 1], text=words, marker=marker, name="", **style))
    else:
        groups = pd.Series([str(c) for c in colors])
        for group in dict.fromkeys(groups):  # first-seen order
            mask = (groups == group).to_numpy()
            text = [w for w, m in zip(words, mask) if m]
            figure.add_trace(go.Scatter(x=coords[mask, 0], y=coords[mask, 1], text=text, name=group, **style))
    figure.update_layout(title=title, height=height, xaxis_title="component 1", yaxis_title="component 2",
                         template="plotly_white", margin=dict(l=40, r=20, t=60 if title else 20, b=40))
    return figure


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
    ax.legend()
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
