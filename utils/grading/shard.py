"""Sharding: split a class's submissions into N disjoint parts that separate machines grade independently.

A submission belongs to shard K of N by a hash of its name, so the split does not depend on the order files are
listed in, on the machine, or on which other submissions exist: a late submission never moves the others.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Sequence, TypeVar

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1..count) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, name: str) -> bool:
        """Whether the submission called `name` belongs to this shard."""
        digest = hashlib.sha256(name.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1


def parse_shard(text: str) -> Shard:
    """'2/4' -> Shard(2, 4); raises ValueError with what to write instead."""
    match = _SPEC.match(text)
    if not match:
        raise ValueError(f"not a shard: {text!r} (write K/N, e.g. 1/4 for the first of four shards)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"shard {text!r} out of range: K/N needs 1 <= K <= N (shards are numbered from 1)")
    return Shard(index, count)


def select(items: Sequence[T], shard: Shard, name=lambda item: item.name) -> list[T]:
    """The items of `shard`, in their original order."""
    return [item for item in items if shard.holds(name(item))]
