"""The training loop is reproducible, batches correctly, stops early with the best weights, and counts right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

from utils.models import BagOfWords, NaivePaddedBagOfWords
from utils.text import Vocab, flatten_ids, pad_ids
from utils.training import EncodedTexts, batches, confusion_matrix, encode_texts, evaluate, predict, train


def toy_data(n: int, seed: int, noise: float = 0.0) -> tuple[list[list[int]], list[int]]:
    """Texts over ids 2..21: ids 2-11 lean positive, 12-21 negative; a share `noise` of labels is flipped."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        words = rng.integers(2, 12, size=rng.integers(1, 8)) + (0 if label else 10)
        filler = rng.integers(2, 22, size=rng.integers(0, 4))
        ids.append([int(i) for i in np.concatenate([words, filler])])
        labels.append(label if rng.random() >= noise else 1 - label)
    return ids, labels


TRAIN, DEV = toy_data(200, 0), toy_data(60, 1, noise=0.3)


def fresh_model(seed: int = 0, **kwargs) -> BagOfWords:
    torch.manual_seed(seed)
    return BagOfWords(22, 8, 2, **kwargs)


def test_encode_texts_tokenizes_and_encodes() -> None:
    vocab = Vocab.build([["a", "good", "film"]])
    assert encode_texts(["A good FILM!", "bad"], vocab) == [[vocab["a"], vocab["good"], vocab["film"], Vocab.unk_id], [Vocab.unk_id]]


def test_batches_flat_and_padded_layouts() -> None:
    ids, labels = TRAIN[0][:10], TRAIN[1][:10]
    for given in (ids, EncodedTexts(ids)):
        flat = list(batches(given, labels, batch_size=4))
        padded = list(batches(given, labels, batch_size=4, padded=True))
        assert [len(b.labels) for b in flat] == [4, 4, 2]
        for start, (f, p) in enumerate(zip(flat, padded)):
            chosen = ids[4 * start : 4 * start + 4]
            expected_flat, expected_offsets = flatten_ids(chosen)
            assert torch.equal(f.ids, expected_flat) and torch.equal(f.offsets, expected_offsets)
            assert torch.equal(p.ids, pad_ids(chosen)) and p.offsets is None
            assert f.labels.tolist() == labels[4 * start : 4 * start + 4]


def test_shuffled_batches_visit_every_text_once_in_a_seeded_order() -> None:
    ids, labels = TRAIN[0][:50], list(range(50))  # labels double as text numbers

    def order(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return [i for b in batches(ids, labels, 8, shuffle=True, generator=generator) for i in b.labels.tolist()]

    assert sorted(order(0)) == labels and order(0) == order(0) and order(0) != order(1) and order(0) != labels
    generator = torch.Generator().manual_seed(0)
    for batch in batches(ids, labels, 8, shuffle=True, generator=generator):  # each text travels with its label
        expected = flatten_ids([ids[i] for i in batch.labels.tolist()])
        assert torch.equal(batch.ids, expected[0]) and torch.equal(batch.offsets, expected[1])


def test_same_seed_same_history_and_weights() -> None:
    runs = []
    for _ in range(2):
        model = fresh_model()
        runs.append((train(model, TRAIN, DEV, epochs=4, seed=3, progress=False), model.state_dict()))
    scores = [history.drop(columns="seconds") for history, _ in runs]  # wall-clock time is not reproducible
    pd.testing.assert_frame_equal(scores[0], scores[1])
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    other = train(fresh_model(), TRAIN, DEV, epochs=4, seed=4, progress=False)
    assert not other.drop(columns="seconds").equals(scores[0])
    assert list(runs[0][0].columns) == ["epoch", "train_loss", "train_acc", "dev_loss", "dev_acc", "seconds"]
    clock = runs[0][0]["seconds"]
    assert (clock > 0).all() and clock.is_monotonic_increasing  # measured, cumulative


def test_training_learns_the_toy_task() -> None:
    model = fresh_model()
    history = train(model, TRAIN, epochs=15, patience=None, progress=False)
    assert len(history) == 15 and "dev_acc" not in history
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert evaluate(model, *TRAIN)["accuracy"] >= 0.9


def test_early_stopping_stops_after_patience_and_restores_the_best_weights() -> None:
    model = fresh_model()
    history = train(model, TRAIN, DEV, epochs=40, lr=0.05, patience=2, progress=False)
    best = history["dev_acc"].idxmax()  # first epoch with the best dev accuracy
    assert len(history) == best + 1 + 2 < 40  # stopped 2 epochs after the best one
    restored = evaluate(model, *DEV)
    assert restored["accuracy"] == history.loc[best, "dev_acc"]
    assert restored["loss"] == pytest.approx(history.loc[best, "dev_loss"], rel=1e-6)
    assert restored["loss"] != pytest.approx(history["dev_loss"].iloc[-1], rel=1e-6)


def test_evaluate_and_predict_match_a_direct_computation() -> None:
    model = fresh_model()
    ids, labels = DEV
    with torch.no_grad():
        scores = model(*flatten_ids(ids))
    assert torch.equal(predict(model, ids, batch_size=7), scores.argmax(dim=-1))
    result = evaluate(model, ids, labels, batch_size=7)
    expected_loss = torch.nn.functional.cross_entropy(scores, torch.tensor(labels)).item()
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert result["accuracy"] == pytest.approx(float((scores.argmax(dim=-1) == torch.tensor(labels)).float().mean()))


def test_naive_model_trains_on_padded_batches() -> None:
    torch.manual_seed(0)
    model = NaivePaddedBagOfWords(22, 8, 2)
    history = train(model, TRAIN, DEV, epochs=3, progress=False)
    assert len(history) == 3 and np.isfinite(history["train_loss"]).all()
    assert len(predict(model, DEV[0])) == len(DEV[0])


def test_sparse_embeddings_train_and_refuse_weight_decay() -> None:
    model = fresh_model(sparse=True)
    before = model.embedding.weight.detach().clone()
    train(model, TRAIN, epochs=2, progress=False)
    assert not torch.equal(model.embedding.weight.detach(), before)
    with pytest.raises(ValueError, match="weight decay"):
        train(fresh_model(sparse=True), TRAIN, epochs=1, weight_decay=1e-4, progress=False)


def test_confusion_matrix_counts_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 3, 100), rng.integers(0, 3, 100)
    table = confusion_matrix(y_true, y_pred, ["a", "b", "c"])
    assert np.array_equal(table.to_numpy(), sklearn_confusion_matrix(y_true, y_pred, labels=[0, 1, 2]))
    assert table.index.name == "true" and table.columns.name == "predicted" and list(table.index) == ["a", "b", "c"]
    small = confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ["neg", "pos"])
    assert small.loc["neg", "pos"] == 1 and small.loc["pos", "pos"] == 2 and small.loc["pos", "neg"] == 1
    assert small.to_numpy().sum() == 5
