"""Batches in order of length: each batch is padded only to its own longest item, results come back in input order.

Every model call over many texts (encoding, teacher scoring, translation) and the search index's
chunks use it, so the order (longest first, ties in input order) is defined in one place.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence, TypeVar

T = TypeVar("T")


def by_length(lengths: Sequence[int], batch_size: int, longest_first: bool = True) -> Iterator[list[int]]:
    """Indices into ``lengths`` in batches of at most ``batch_size``, sorted by length (a stable sort).

    >>> list(by_length([3, 9, 3, 5], 2))
    [[1, 3], [0, 2]]
    >>> list(by_length([3, 9, 3, 5], 3, longest_first=False))
    [[0, 2, 3], [1]]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    order = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=longest_first)
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def map_by_length(lengths: Sequence[int], batch_size: int, run: Callable[[list[int]], Iterable[T]]) -> list[T]:
    """``run`` on each batch of indices (longest first); its results, one per index, in input order.

    >>> map_by_length([1, 3, 2], 2, lambda idx: [f"item {i}" for i in idx])
    ['item 0', 'item 1', 'item 2']
    """
    out: list[T | None] = [None] * len(lengths)
    for idx in by_length(lengths, batch_size):
        results = list(run(idx))
        if len(results) != len(idx):
            raise ValueError(f"a batch of {len(idx)} items gave {len(results)} results.")
        for i, result in zip(idx, results):
            out[i] = result
    return out  # type: ignore[return-value]
