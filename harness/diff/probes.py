"""Probes diff: the runtime surface of a family (applets, modules, extensions, versions).

Records are keyed `family:group:item` (`rt-python3.11:module:ssl`, `busybox:applet:ls`,
`rt-java17:runtime:version`); the subject is the item.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.diff.change import Change
from harness.diff.records import diff_keyed


def probe_records(family: str, groups: dict[str, Any]) -> dict[str, Any]:
    """{group: iterable of items | {item: value}} -> flat records."""
    records: dict[str, Any] = {}
    for group, items in groups.items():
        if isinstance(items, dict):
            records.update({f"{family}:{group}:{k}": v for k, v in items.items()})
        else:
            records.update({f"{family}:{group}:{item}": True for item in items})
    return records


def _major_minor(version: Any) -> str:
    parts = str(version).replace("_", ".").replace("+", ".").split(".")
    return ".".join(parts[:2])


def diff_probes(before: Mapping[str, Any], after: dict[str, Any]) -> list[Change]:
    """probe-item-removed (break), probe-item-added (info), runtime-version-changed (break on a
    new major.minor), runtime-updated (info)."""
    keyed = diff_keyed(before, after)
    changes: list[Change] = []
    for key in keyed.removed:
        changes.append(Change("probes", "probe-item-removed", key.split(":", 2)[2], before=key))
    for key in keyed.added:
        changes.append(Change("probes", "probe-item-added", key.split(":", 2)[2], after=key))
    for key in keyed.changed:
        family, group, item = key.split(":", 2)
        old, new = before[key], after[key]
        if group == "runtime":
            kind = "runtime-version-changed" if _major_minor(old) != _major_minor(new) else "runtime-updated"
        else:
            kind = "probe-item-changed"
        changes.append(Change("probes", kind, item, old, new))
    return changes
