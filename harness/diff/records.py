"""Set-based comparison of two keyed record maps: the linear core of every aspect's diff.

Key sets are compared first; DeepDiff would only be needed to describe what changed inside a
changed record, and records here are flat enough that a field comparison says it.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

from harness.filetable import FileTable


@dataclass
class KeyedDiff:
    """Keys only in the baseline, only in the candidate, and in both with different records."""

    removed: list[str]
    added: list[str]
    changed: list[str]


def diff_keyed(before: Mapping[str, Any], after: Mapping[str, Any]) -> KeyedDiff:
    """Compare two {key: record} maps by key set, then by record equality."""
    if before == after:  # one C-level pass settles an unchanged image
        return KeyedDiff([], [], [])
    if isinstance(before, FileTable) and isinstance(after, FileTable):
        # no set of every path (40 MB at a million files), and rows compared as they lie
        # (a baseline shares an unchanged record's row)
        return KeyedDiff(sorted(k for k in before if k not in after),
                         sorted(k for k in after if k not in before),
                         sorted(k for k in before if k in after and not before.same(k, after)))
    before_keys, after_keys = before.keys(), after.keys()
    removed = sorted(before_keys - after_keys)
    added = sorted(after_keys - before_keys)
    changed = sorted(k for k in before_keys & after_keys if before[k] != after[k])
    return KeyedDiff(removed, added, changed)
