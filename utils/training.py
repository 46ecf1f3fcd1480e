"""One training loop for every classifier in the course: seeded, batched, with a progress bar and early stopping."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from utils.text import Vocab, flatten_ids, pad_ids, tokenize

Ids = Sequence[Sequence[int]]


class Batch(NamedTuple):
    """A batch of texts as model input (`ids` and, for the flat layout, `offsets`) and their labels."""

    ids: torch.Tensor
    offsets: torch.Tensor | None
    labels: torch.Tensor


def encode_texts(texts: Sequence[str], vocab: Vocab) -> list[list[int]]:
    """Tokenise and encode each text into a list of vocabulary ids."""
    return [vocab.encode(tokenize(text)) for text in texts]


def batches(
    ids: Ids,
    labels: Sequence[int],
    batch_size: int = 64,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    padded: bool = False,
) -> Iterator[Batch]:
    """Yield batches in the flat ids + offsets layout (`padded=False`) or as a padded (batch, length) tensor."""
    labels = torch.tensor(np.asarray(labels), dtype=torch.long)
    order = torch.randperm(len(ids), generator=generator) if shuffle else torch.arange(len(ids))
    for start in range(0, len(ids), batch_size):
        index = order[start : start + batch_size].tolist()
        chosen = [ids[i] for i in index]
        if padded:
            yield Batch(pad_ids(chosen), None, labels[index])
        else:
            flat, offsets = flatten_ids(chosen)
            yield Batch(flat, offsets, labels[index])


def _uses_padding(model: nn.Module) -> bool:
    """True for models that want a padded (batch, length) tensor rather than flat ids with offsets."""
    return not any(isinstance(m, nn.EmbeddingBag) for m in model.modules())


def _optimizers(model: nn.Module, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
    """Adam for dense parameters, SparseAdam for embedding tables that produce sparse gradients."""
    sparse = [m.weight for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse]
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids and p.requires_grad]
    sparse = [p for p in sparse if p.requires_grad]
    optimizers: list[torch.optim.Optimizer] = []
    if dense:
        optimizers.append(torch.optim.Adam(dense, lr=lr, weight_decay=weight_decay))
    if sparse:
        optimizers.append(torch.optim.SparseAdam(sparse, lr=lr))
    return optimizers


@torch.no_grad()
def evaluate(model: nn.Module, ids: Ids, labels: Sequence[int], batch_size: int = 512) -> dict[str, float]:
    """Mean cross-entropy loss and accuracy of `model` on a labelled set."""
    model.eval()
    padded = _uses_padding(model)
    total_loss, correct, n = 0.0, 0, 0
    for batch in batches(ids, labels, batch_size, padded=padded):
        scores = model(batch.ids, batch.offsets)
        total_loss += nn.functional.cross_entropy(scores, batch.labels, reduction="sum").item()
        correct += (scores.argmax(dim=-1) == batch.labels).sum().item()
        n += len(batch.labels)
    return {"loss": total_loss / max(n, 1), "accuracy": correct / max(n, 1)}


@torch.no_grad()
def predict(model: nn.Module, ids: Ids, batch_size: int = 512) -> torch.Tensor:
    """The predicted class id of every text."""
    model.eval()
    padded = _uses_padding(model)
    dummy = [0] * len(ids)
    return torch.cat([model(b.ids, b.offsets).argmax(dim=-1) for b in batches(ids, dummy, batch_size, padded=padded)])


def train(
    model: nn.Module,
    train: tuple[Ids, Sequence[int]],
    dev: tuple[Ids, Sequence[int]] | None = None,
    epochs: int = 10,
    lr: float = 1e-2,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    patience: int | None = 3,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Train with cross-entropy and Adam; stop when dev accuracy has not improved for `patience` epochs.

    Returns the history (one row per epoch). With a dev set, the model ends with the weights of its best dev epoch.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizers = _optimizers(model, lr, weight_decay)
    padded = _uses_padding(model)
    train_ids, train_labels = train
    history, best_acc, best_state, since_best = [], -1.0, None, 0
    bar = tqdm(range(1, epochs + 1), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        total_loss, correct, n = 0.0, 0, 0
        for batch in batches(train_ids, train_labels, batch_size, shuffle=True, generator=generator, padded=padded):
            for opt in optimizers:
                opt.zero_grad()
            scores = model(batch.ids, batch.offsets)
            loss = nn.functional.cross_entropy(scores, batch.labels)
            loss.backward()
            for opt in optimizers:
                opt.step()
            total_loss += loss.item() * len(batch.labels)
            correct += (scores.argmax(dim=-1) == batch.labels).sum().item()
            n += len(batch.labels)
        row = {"epoch": epoch, "train_loss": total_loss / n, "train_acc": correct / n}
        if dev is not None:
            scores = evaluate(model, *dev)
            row.update(dev_loss=scores["loss"], dev_acc=scores["accuracy"])
            if scores["accuracy"] > best_acc:
                best_acc, best_state, since_best = scores["accuracy"], copy.deepcopy(model.state_dict()), 0
            else:
                since_best += 1
        history.append(row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k != "epoch"})
        if patience is not None and dev is not None and since_best >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return pd.DataFrame(history)


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str]) -> pd.DataFrame:
    """Counts of (true class, predicted class) pairs as a labelled table: rows are true, columns predicted."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = len(classes)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    return pd.DataFrame(counts, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))
