"""The bag-of-words classifier of the lecture, done right for padded batches, and the naive version for contrast."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class BagOfWords(nn.Module):
    """Mean of a text's token embeddings, then a linear layer to class scores.

    `nn.EmbeddingBag` fuses the lookup and the mean, and skips `padding_idx`, so padding never counts in the mean.
    It accepts a padded (batch, length) tensor or, faster, flat ids plus per-text offsets.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, num_classes: int, padding_idx: int = 0, sparse: bool = False) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embedding_dim, mode="mean", padding_idx=padding_idx, sparse=sparse)
        self.linear = nn.Linear(embedding_dim, num_classes)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.embedding(ids, offsets))

    @classmethod
    def from_pretrained(cls, vectors: torch.Tensor, num_classes: int, freeze: bool = True, padding_idx: int = 0) -> BagOfWords:
        """A classifier whose embedding table starts as `vectors` (one row per vocabulary id), frozen or trainable."""
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        model = cls(vectors.shape[0], vectors.shape[1], num_classes, padding_idx=padding_idx)
        with torch.no_grad():
            model.embedding.weight.copy_(vectors)
            model.embedding.weight[padding_idx].zero_()
        return model.freeze_embeddings(freeze)

    def freeze_embeddings(self, flag: bool = True) -> BagOfWords:
        """Stop (or restart) training the embedding table; returns the model for chaining."""
        self.embedding.weight.requires_grad_(not flag)
        return self


class NaivePaddedBagOfWords(nn.Module):
    """The lecture's classifier verbatim: `embedding(x).mean(dim=-2)`. On a padded batch it averages the padding too.

    Kept only to show the bug and measure the cost of the two-step lookup; use `BagOfWords` for real work.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, num_classes: int, padding_idx: int | None = 0) -> None:
        super().__init__()
        # padding_idx=None is the lecture's code to the letter: the [PAD] row is then an ordinary, trained vector.
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        self.linear = nn.Linear(embedding_dim, num_classes)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        if offsets is not None:
            raise ValueError("NaivePaddedBagOfWords takes a padded (batch, length) tensor, not ids with offsets")
        return self.linear(self.embedding(ids).mean(dim=-2))


@torch.no_grad()
def word_scores(model: BagOfWords) -> torch.Tensor:
    """The class scores every vocabulary word contributes on its own, W e_w (bias left out): a (vocab, classes) tensor.

    The mean and the linear layer are both linear, so a text's scores are the average of its words' rows plus the bias.
    """
    return model.embedding.weight @ model.linear.weight.T


@torch.no_grad()
def token_contributions(model: BagOfWords, ids: Sequence[int]) -> torch.Tensor:
    """Each token's share W e_t / n of one text's class scores, (tokens, classes); they sum to the scores minus the bias.

    Padding ids are skipped, as the model skips them.
    """
    ids = torch.as_tensor(list(ids), dtype=torch.long)
    ids = ids[ids != model.embedding.padding_idx]
    return model.embedding.weight[ids] @ model.linear.weight.T / max(len(ids), 1)
