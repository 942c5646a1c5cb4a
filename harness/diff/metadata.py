"""Metadata diff over the flattened image config (subjects are config keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.diff.change import Change
from harness.diff.records import diff_keyed

#: config key -> kind of a change of that key
_SCALAR_KINDS = {
    "User": "user-changed", "Entrypoint": "entrypoint-changed", "Cmd": "cmd-changed",
    "WorkingDir": "workdir-changed", "StopSignal": "stopsignal-changed",
    "Healthcheck": "healthcheck-changed", "Architecture": "platform-changed",
    "Os": "platform-changed", "Variant": "platform-changed",
}
#: prefix -> (kind when removed, kind when added, kind when changed)
_MAP_KINDS = {
    "Env.": ("env-removed", "env-added", "env-changed"),
    "ExposedPorts.": ("port-removed", "port-added", "port-changed"),
    "Volumes.": ("volume-removed", "volume-added", "volume-changed"),
    "Labels.": ("label-changed", "label-changed", "label-changed"),
}


def _kind(key: str, how: int) -> str:
    if key in _SCALAR_KINDS:
        return _SCALAR_KINDS[key]
    prefix = key.split(".", 1)[0] + "."
    if prefix in _MAP_KINDS:
        return _MAP_KINDS[prefix][how]
    return "config-changed"


def diff_metadata(before: Mapping[str, Any], after: dict[str, Any]) -> list[Change]:
    """One change per config key that was removed, added or changed."""
    keyed = diff_keyed(before, after)
    changes = [Change("metadata", _kind(k, 0), k, before=before[k]) for k in keyed.removed]
    changes += [Change("metadata", _kind(k, 1), k, after=after[k]) for k in keyed.added]
    changes += [Change("metadata", _kind(k, 2), k, before[k], after[k]) for k in keyed.changed]
    return changes
