"""The plotting helpers draw what they promise (checked on the Axes they return, with the Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from utils.plots import plot_bars, plot_histogram_vs_normal, plot_learning_curves, plot_scaling  # noqa: E402
from utils.interactive_plots import PLOTLY_JS_PATH, embedding_map  # noqa: E402


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


# --- Interactive maps (plotly) ---


def test_embedding_map_one_trace_per_category_in_first_seen_order() -> None:
    coords = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]])
    figure = embedding_map(["good", "bad", "great", "movie"], coords, colors=["pos", "neg", "pos", "other"], title="t")
    assert [trace.name for trace in figure.data] == ["pos", "neg", "other"]
    positive = figure.data[0]
    assert list(positive.text) == ["good", "great"]
    assert list(positive.x) == [0.0, 4.0] and list(positive.y) == [1.0, 5.0]
    assert figure.layout.title.text == "t"


def test_embedding_map_numbers_become_a_colour_scale() -> None:
    figure = embedding_map(["a", "b", "c"], np.zeros((3, 2)), colors=[0.5, -1.0, 2])
    (trace,) = figure.data
    assert list(trace.marker.color) == [0.5, -1.0, 2.0] and trace.marker.showscale


def test_embedding_map_labels_points_only_when_few() -> None:
    few = embedding_map([str(i) for i in range(60)], np.zeros((60, 2)))
    many = embedding_map([str(i) for i in range(61)], np.zeros((61, 2)))
    forced = embedding_map([str(i) for i in range(61)], np.zeros((61, 2)), show_text=True)
    assert few.data[0].mode == "markers+text" and many.data[0].mode == "markers" and forced.data[0].mode == "markers+text"
    assert "%{text}" in many.data[0].hovertemplate  # the word is still shown on hover


def test_embedding_map_rejects_coordinates_of_the_wrong_shape() -> None:
    for coords in (np.zeros((3, 3)), np.zeros((2, 2)), np.zeros(6)):
        try:
            embedding_map(["a", "b", "c"], coords)
        except ValueError:
            continue
        raise AssertionError(f"no error for shape {coords.shape}")


def test_figures_render_for_the_offline_book_and_for_jupyterlab() -> None:
    figure = embedding_map(["</script><b>x", "y"], np.array([[0.0, 1.0], [1.0, 0.0]]))
    first, second = figure._repr_mimebundle_(), figure._repr_mimebundle_()
    assert "application/vnd.plotly.v1+json" in first  # what JupyterLab draws
    html = first["text/html"]  # what the book shows
    assert PLOTLY_JS_PATH in html and "http" not in html  # plotly.js from the site itself, nothing from a CDN
    assert html.count("</script>") == 1  # the word cannot close the script early
    div_id = html.split('id="')[1].split('"')[0]
    assert f'Plotly.newPlot("{div_id}"' in html
    assert div_id not in second["text/html"]  # two figures on one page do not share an element


def test_learning_curves_show_both_splits_and_the_best_epoch() -> None:
    history = pd.DataFrame({"epoch": [1, 2, 3, 4], "train_loss": [0.7, 0.5, 0.3, 0.2], "train_acc": [0.6, 0.7, 0.8, 0.9],
                            "dev_loss": [0.6, 0.5, 0.55, 0.6], "dev_acc": [0.65, 0.72, 0.71, 0.70]})
    loss_ax, acc_ax = plot_learning_curves(history, title="t")
    assert loss_ax.get_ylabel() == "cross-entropy loss" and acc_ax.get_ylabel() == "accuracy"
    train_line, dev_line, best = acc_ax.lines
    assert list(train_line.get_ydata()) == [0.6, 0.7, 0.8, 0.9] and list(dev_line.get_ydata()) == [0.65, 0.72, 0.71, 0.70]
    assert list(best.get_xdata()) == [2, 2]  # epoch 2 has the best dev accuracy
    assert list(loss_ax.lines[1].get_ydata()) == [0.6, 0.5, 0.55, 0.6]
    no_dev = plot_learning_curves(history[["epoch", "train_loss", "train_acc"]])
    assert len(no_dev[0].lines) == 1
    plt.close("all")


def test_bars_in_order_coloured_by_sign() -> None:
    scores = pd.Series([2.0, 0.5, -1.0], index=["great", "fine", "dull"])
    ax = plot_bars(scores, title="t", xlabel="x")
    widths = [patch.get_width() for patch in ax.patches]
    tops = [patch.get_y() for patch in ax.patches]
    assert widths == [2.0, 0.5, -1.0] and tops[0] > tops[1] > tops[2]  # first entry on top
    colours = [patch.get_facecolor() for patch in ax.patches]
    assert colours[0] == colours[1] != colours[2]
    labels = {round(tick): label.get_text() for tick, label in zip(ax.get_yticks(), ax.get_yticklabels())}
    assert [labels[round(patch.get_y() + patch.get_height() / 2)] for patch in ax.patches] == ["great", "fine", "dull"]
    plt.close(ax.figure)
