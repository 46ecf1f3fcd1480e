"""Interactive widgets (ipywidgets) for exploring what the chapters compute, grouped by what they explore.

Each widget is a thin shell around a plain function that returns a table, so the logic is testable and a
reader without a live kernel can call the function directly.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import HTML, display

from utils.models import BagOfWords, token_contributions
from utils.plots import plot_bars
from utils.similarity import Table, neighbours_side_by_side
from utils.text import Vocab, tokenize

# --- Looking up word vectors ---------------------------------------------------------------------------------


def lookup_table(text: str, vocab: Vocab, weight: torch.Tensor, dims: int = 6) -> pd.DataFrame:
    """One row per token of `text`: its id (`[UNK]`'s id if unknown), the entry it maps to, its norm and first `dims` values."""
    weight = weight.detach()
    rows = []
    for token in tokenize(text):
        index = vocab[token]
        vector = weight[index]
        row = {"token": token, "id": index, "maps to": vocab.itos[index], "norm": round(float(vector.norm()), 3)}
        row.update({f"v[{j}]": round(float(v), 3) for j, v in enumerate(vector[:dims])})
        rows.append(row)
    return pd.DataFrame(rows)


def word_lookup_widget(vocab: Vocab, weight: torch.Tensor, value: str = "a great monster movie") -> widgets.VBox:
    """A text box: type words and see the ids and embedding vectors the layer gives them (unknown words get `[UNK]`)."""
    box = widgets.Text(value=value, description="Words:", placeholder="type a few words", layout=widgets.Layout(width="60%"))
    out = widgets.Output()

    def show(_: object = None) -> None:
        out.clear_output(wait=True)
        with out:
            table = lookup_table(box.value, vocab, weight)
            display(table if len(table) else "Type a word.")

    box.observe(show, names="value")
    show()
    return widgets.VBox([box, out])


# --- Explaining a classifier's prediction --------------------------------------------------------------------


def explain_text(text: str, model: BagOfWords, vocab: Vocab, classes: Sequence[str]) -> tuple[pd.DataFrame, pd.Series]:
    """Why the bag-of-words `model` scores `text` as it does: one row per token with its share of each class score
    (plus, for two classes, how far it pushes towards the second), and the predicted class probabilities."""
    tokens = tokenize(text)
    ids = vocab.encode(tokens)
    model.eval()
    with torch.no_grad():
        scores = model(torch.tensor(ids, dtype=torch.long), torch.tensor([0]))[0]
    table = pd.DataFrame({"token": tokens, "maps to": [vocab.itos[i] for i in ids]})
    shares = token_contributions(model, ids).numpy()
    for j, name in enumerate(classes):
        table[name] = shares[:, j]
    if len(classes) == 2:
        table[f"push towards {classes[1]}"] = table[classes[1]] - table[classes[0]]
    return table, pd.Series(torch.softmax(scores, dim=-1).numpy(), index=list(classes), name="probability")


def figure_img(figure: plt.Figure, alt: str) -> str:
    """A figure as an HTML <img> with alt text (an Output widget would otherwise save it without one)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def review_widget(model: BagOfWords, vocab: Vocab, classes: Sequence[str], value: str = "A gem of a movie, funny and moving.") -> widgets.VBox:
    """A text box: type a review and see the predicted class and each word's push towards a class, as bars."""
    box = widgets.Textarea(value=value, description="Review:", layout=widgets.Layout(width="90%", height="60px"))
    out = widgets.Output()

    def show(_: object = None) -> None:
        out.clear_output(wait=True)
        with out:
            table, probability = explain_text(box.value, model, vocab, classes)
            if not len(table):
                print("Type a review.")
                return
            print(f"prediction: {probability.idxmax()}  (" + ", ".join(f"P({c}) = {p:.3f}" for c, p in probability.items()) + ")")
            column = table.columns[-1] if len(classes) == 2 else probability.idxmax()
            bars = pd.Series(table[column].to_numpy(), index=[f"{t} → {m}" if t != m else t for t, m in zip(table["token"], table["maps to"])])
            ax = plot_bars(bars, title="What each token adds to the score", xlabel=f"contribution ({column})")
            alt = f"Bar chart of how much each token of the review adds to the score of {column}"
            display(HTML(figure_img(ax.figure, alt)))
            plt.close(ax.figure)

    box.observe(show, names="value")
    show()
    return widgets.VBox([box, out])


# --- Comparing embedding spaces ------------------------------------------------------------------------------


def neighbours_widget(spaces: Mapping[str, Table], value: str = "good", k: int = 10) -> widgets.VBox:
    """A text box: type a word and see its nearest neighbours (by cosine) in each embedding space, side by side."""
    box = widgets.Text(value=value, description="Word:", placeholder="type one word")
    slider = widgets.IntSlider(value=k, min=1, max=30, description="neighbours:")
    out = widgets.Output()

    def show(_: object = None) -> None:
        out.clear_output(wait=True)
        with out:
            word = box.value.strip().lower()
            display(neighbours_side_by_side(word, spaces, slider.value).round(3) if word else "Type a word.")

    box.observe(show, names="value")
    slider.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([box, slider]), out])
