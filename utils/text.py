"""From text to token ids: a tokenizer and a vocabulary, shared by every chapter and lab."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

# A word is a run of letters or digits in any script, with inner apostrophes ("don't"); any other visible
# character is a token of its own.
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]|_")


def tokenize(text: str) -> list[str]:
    """Lower-case a text and split it into words (with their apostrophes) and single punctuation marks."""
    return _TOKEN.findall(text.lower())


def tokenize_words(text: str) -> list[str]:
    """Like `tokenize`, but keep only tokens with a letter or digit (no punctuation): for raw-text pre-training."""
    return [t for t in tokenize(text) if t[0].isalnum()]


class Vocab:
    """A two-way map between tokens and integer ids.

    Id 0 is always `[PAD]` (filler for batches of unequal length) and id 1 is `[UNK]` (any token not in the
    vocabulary). The other tokens follow by falling frequency, ties broken alphabetically, so a vocabulary
    built from the same texts is always the same.
    """

    PAD = "[PAD]"
    UNK = "[UNK]"
    pad_id = 0
    unk_id = 1

    def __init__(self, tokens: Iterable[str], counts: dict[str, int] | None = None) -> None:
        self.itos: list[str] = [self.PAD, self.UNK]
        for token in tokens:
            if token not in (self.PAD, self.UNK):
                self.itos.append(token)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("a vocabulary cannot hold the same token twice")
        self.counts: dict[str, int] = dict(counts or {})

    @classmethod
    def build(cls, documents: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """Build from tokenised documents: keep tokens seen at least `min_freq` times, at most `max_size` ids in all."""
        counter = Counter(token for doc in documents for token in doc)
        ranked = sorted((t for t, c in counter.items() if c >= min_freq), key=lambda t: (-counter[t], t))
        if max_size is not None:
            ranked = ranked[: max(0, max_size - 2)]
        return cls(ranked, {t: counter[t] for t in ranked})

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, self.unk_id)

    def __repr__(self) -> str:
        preview = ", ".join(self.itos[2:8])
        return f"Vocab({len(self)} ids: [PAD], [UNK], {preview}, ...)"

    def coverage(self, documents: Iterable[Sequence[str]]) -> float:
        """The fraction of running tokens in `documents` that the vocabulary knows (is not `[UNK]`)."""
        total = known = 0
        for doc in documents:
            total += len(doc)
            known += sum(token in self.stoi for token in doc)
        return known / total if total else 0.0

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of a token sequence; unknown tokens map to `[UNK]`."""
        return [self.stoi.get(t, self.unk_id) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of an id sequence, without padding."""
        return [self.itos[i] for i in map(int, ids) if i != self.pad_id]

    def encode_padded(self, documents: Sequence[Sequence[str]], max_len: int | None = None) -> torch.Tensor:
        """A (batch, length) tensor of ids, each row padded with `[PAD]` (and cut at `max_len` if given)."""
        return pad_ids([self.encode(doc) for doc in documents], max_len=max_len)

    def encode_offsets(self, documents: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """All ids in one flat tensor plus each document's start offset: the input `nn.EmbeddingBag` takes."""
        return flatten_ids([self.encode(doc) for doc in documents])

    def save(self, path: str | Path) -> None:
        """Write the tokens (in id order) and their counts as JSON."""
        Path(path).write_text(json.dumps({"itos": self.itos, "counts": self.counts}, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by `save`."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(data["itos"][2:], data.get("counts"))


def pad_ids(sequences: Sequence[Sequence[int]], pad_id: int = 0, max_len: int | None = None) -> torch.Tensor:
    """Stack id lists of different lengths into one (batch, length) LongTensor, padding on the right.

    The default pad_id is Vocab.pad_id, written as 0 so that this module loads where Vocab is disabled (lab 1).
    """
    length = max((len(s) for s in sequences), default=0)
    if max_len is not None:
        length = min(length, max_len)
    out = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        seq = list(seq)[:length]
        if seq:
            out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


def flatten_ids(sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate id lists into one flat LongTensor and return it with each list's start offset."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    offsets = torch.zeros(len(sequences), dtype=torch.long)
    if len(sequences) > 1:
        offsets[1:] = torch.cumsum(lengths[:-1], dim=0)
    flat = torch.tensor([i for s in sequences for i in s], dtype=torch.long)
    return flat, offsets
