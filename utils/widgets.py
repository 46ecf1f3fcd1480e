"""Interactive widgets (ipywidgets) for exploring what the chapters compute, grouped by what they explore.

Each widget is a thin shell around a plain function that returns a table, so the logic is testable and a
reader without a live kernel can call the function directly.
"""

from __future__ import annotations

import ipywidgets as widgets
import pandas as pd
import torch
from IPython.display import display

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
