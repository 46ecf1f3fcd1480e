"""The widgets' table functions, and that each widget builds and reacts to input."""

from __future__ import annotations

import torch

from utils.text import Vocab
from utils.widgets import lookup_table, word_lookup_widget

VOCAB = Vocab.build([["a", "great", "movie"], ["a", "monster", "movie"]])
TABLE = torch.arange(len(VOCAB) * 4, dtype=torch.float32).reshape(len(VOCAB), 4)


def test_lookup_table_rows_ids_and_vectors() -> None:
    table = lookup_table("A great Zorblax!", VOCAB, TABLE, dims=2)
    assert table["token"].tolist() == ["a", "great", "zorblax", "!"]
    assert table["id"].tolist() == [VOCAB["a"], VOCAB["great"], Vocab.unk_id, Vocab.unk_id]
    assert table["maps to"].tolist() == ["a", "great", Vocab.UNK, Vocab.UNK]
    great = TABLE[VOCAB["great"]]
    row = table.iloc[1]
    assert [row["v[0]"], row["v[1]"]] == great[:2].tolist()
    assert row["norm"] == round(float(great.norm()), 3)
    assert "v[2]" not in table.columns


def test_lookup_table_empty_text() -> None:
    assert len(lookup_table("   ", VOCAB, TABLE)) == 0


def test_word_lookup_widget_shows_the_table_for_new_input(capsys) -> None:
    # Outside a kernel, `display` prints the table, so the printed text shows what the widget would show.
    widget = word_lookup_widget(VOCAB, TABLE, value="great")
    box, _ = widget.children
    assert "great" in capsys.readouterr().out
    box.value = "monster zorblax"
    shown = capsys.readouterr().out
    assert "monster" in shown and Vocab.UNK in shown and "great" not in shown
