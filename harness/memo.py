"""Bounded memos: work the aspects of one image share (a loaded baseline, its files without
the ignored paths, an ABI diff, the cause index) is done once and held while that image is
judged, not for the whole run.

The plugin runs an image's tests together (`harness.plugin`), so a memo needs to hold the
last image or two: a release family of many images judged in one run then holds a few
images' worth of records, not the family's. The oldest entry goes first.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """At most `size` values by key; `get` keeps an entry in use, `put` drops the oldest."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        """The value kept under `key` (now the newest entry), or None."""
        value = self._entries.pop(key, None)
        if value is not None:
            self._entries[key] = value
        return value

    def put(self, key: K, value: V) -> None:
        """Keep `value` under `key`, dropping the oldest entries beyond `size`."""
        self._entries.pop(key, None)
        self._entries[key] = value
        while len(self._entries) > self.size:
            del self._entries[next(iter(self._entries))]

    def __contains__(self, key: object) -> bool:
        return key in self._entries  # its place untouched

    def items(self) -> list[tuple[K, V]]:
        """The entries, oldest first (their order untouched)."""
        return list(self._entries.items())

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class IdentityMemo(Generic[V]):
    """At most `size` values computed from live objects (large dicts nobody mutates), keyed
    by their identity and a hashable `extra`. The objects are held with the value: while
    an entry lives their ids cannot be reused by other objects."""

    def __init__(self, size: int) -> None:
        self._memo: Memo[tuple[tuple[int, ...], Hashable], tuple[tuple[object, ...], V]] = Memo(size)

    def get(self, objects: tuple[object, ...], extra: Hashable = None) -> V | None:
        """The value computed from these very objects (and `extra`), or None."""
        found = self._memo.get((tuple(map(id, objects)), extra))
        if found is None or any(a is not b for a, b in zip(found[0], objects, strict=True)):
            return None
        return found[1]

    def put(self, objects: tuple[object, ...], extra: Hashable, value: V) -> None:
        """Keep the value computed from `objects` (and `extra`)."""
        self._memo.put((tuple(map(id, objects)), extra), (objects, value))

    def clear(self) -> None:
        """Forget every entry."""
        self._memo.clear()

    def __len__(self) -> int:
        return len(self._memo)
