"""Set-based comparison of two keyed record maps: the linear core of every aspect's diff.

Key sets are compared first; DeepDiff would only be needed to describe what changed inside a
changed record, and records here are flat enough that a field comparison says it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class KeyedDiff:
    """Keys only in the baseline, only in the candidate, and in both with different records."""

    removed: list[str]
    added: list[str]
    changed: list[str]


def diff_keyed(before: dict[str, Any], after: dict[str, Any]) -> KeyedDiff:
    """Compare two {key: record} maps by key set, then by record equality."""
    if before == after:  # one C-level pass settles an unchanged image
        return KeyedDiff([], [], [])
    before_keys, after_keys = before.keys(), after.keys()
    removed = sorted(before_keys - after_keys)
    added = sorted(after_keys - before_keys)
    changed = sorted(k for k in before_keys & after_keys if before[k] != after[k])
    return KeyedDiff(removed, added, changed)
