"""The widgets' table functions, and that each widget builds and reacts to input."""

from __future__ import annotations

import torch

from utils.text import Vocab
from utils.models import BagOfWords
from utils.widgets import explain_text, lookup_table, neighbours_widget, review_widget, word_lookup_widget

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


def sentiment_model() -> BagOfWords:
    torch.manual_seed(0)
    return BagOfWords(len(VOCAB), 3, 2)


def test_explain_text_contributions_add_up_to_the_scores() -> None:
    model = sentiment_model()
    table, probability = explain_text("A great zorblax movie", model, VOCAB, ["negative", "positive"])
    assert table["token"].tolist() == ["a", "great", "zorblax", "movie"]
    assert table["maps to"].tolist() == ["a", "great", Vocab.UNK, "movie"]
    with torch.no_grad():
        scores = model(torch.tensor([VOCAB.encode(["a", "great", "zorblax", "movie"])]))[0]
    sums = torch.tensor([table["negative"].sum(), table["positive"].sum()]) + model.linear.bias.detach()
    torch.testing.assert_close(sums, scores, check_dtype=False)
    assert (table["push towards positive"] == table["positive"] - table["negative"]).all()
    torch.testing.assert_close(torch.tensor(probability.to_numpy()), torch.softmax(scores, dim=-1), check_dtype=False)
    assert probability.index.tolist() == ["negative", "positive"]


def test_explain_text_of_an_empty_text_is_the_bias_alone() -> None:
    model = sentiment_model()
    table, probability = explain_text("", model, VOCAB, ["negative", "positive"])
    assert len(table) == 0
    expected = torch.softmax(model.linear.bias.detach(), dim=-1)
    torch.testing.assert_close(torch.tensor(probability.to_numpy()), expected, check_dtype=False)


def test_review_widget_reports_the_prediction(capsys) -> None:
    model = sentiment_model()
    widget = review_widget(model, VOCAB, ["negative", "positive"], value="a great movie")
    box, _ = widget.children
    assert "prediction:" in capsys.readouterr().out
    box.value = ""
    assert "Type a review." in capsys.readouterr().out


def test_neighbours_widget_shows_each_space(capsys) -> None:
    spaces = {"first": (VOCAB.itos, TABLE), "second": (VOCAB.itos, -TABLE)}
    widget = neighbours_widget(spaces, value="great", k=2)
    (box, slider), _ = widget.children[0].children, widget.children[1]
    shown = capsys.readouterr().out
    assert "first" in shown and "second" in shown
    box.value = "zorblax"
    assert "not in this space" in capsys.readouterr().out
