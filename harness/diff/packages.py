"""Packages diff: removed, added, up/downgraded (the manager's own ordering), epoch, arch,
licence (changed; a new package's licence as license-added). Records are keyed `name:arch`; the subject is the bare name."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from harness.diff.change import Change
from harness.diff.records import diff_keyed
from harness.snapshot.managers import compare_versions


def replacements(removed: Iterable[str], before_files: Mapping[str, dict[str, Any]] | None,
                 after_files: Mapping[str, dict[str, Any]] | None) -> dict[str, str]:
    """Removed package name -> the package that now owns most of its former files (a rename
    or a split: Debian's t64 `libssl3` -> `libssl3t64`). Empty without owner data."""
    gone = set(removed)
    if not gone or not before_files or not after_files:
        return {}
    moved: dict[str, Counter[str]] = {}
    for path, record in before_files.items():
        owner = record.get("package")
        if owner in gone:
            new = (after_files.get(path) or {}).get("package")
            if new and new != owner:
                moved.setdefault(owner, Counter())[new] += 1
    return {old: count.most_common(1)[0][0] for old, count in moved.items()}


def _label(record: dict[str, Any]) -> str:
    return f"{record.get('evr')} {record.get('arch')}".strip()


def diff_packages(before: Mapping[str, dict[str, Any]], after: dict[str, dict[str, Any]],
                  before_files: Mapping[str, dict[str, Any]] | None = None,
                  after_files: Mapping[str, dict[str, Any]] | None = None) -> list[Change]:
    """Package changes between two `name:arch`-keyed record maps. With both sides' file
    records (their `pkg` owners), a removed package whose files another package now owns
    is `package-replaced` (a rename or split), not a removal."""
    keyed = diff_keyed(before, after)
    changes: list[Change] = []
    removed_by_name: dict[str, list[str]] = defaultdict(list)
    added_by_name: dict[str, list[str]] = defaultdict(list)
    for key in keyed.removed:
        removed_by_name[before[key]["name"]].append(key)
    for key in keyed.added:
        added_by_name[after[key]["name"]].append(key)
    for name in sorted(removed_by_name.keys() & added_by_name.keys()):
        old_keys, new_keys = removed_by_name[name], added_by_name[name]
        if len(old_keys) == 1 and len(new_keys) == 1:
            # one arch replaced by another (x86_64 -> noarch): not a removal plus an addition
            old, new = before[old_keys[0]], after[new_keys[0]]
            changes.append(Change("packages", "package-arch-changed", name, _label(old), _label(new)))
            changes += _version_changes(name, old, new)
            del removed_by_name[name], added_by_name[name]
    after_names = {r["name"]: r for r in after.values()}
    replaced = replacements(removed_by_name, before_files, after_files)
    for name, keys in removed_by_name.items():
        owner = after_names.get(replaced.get(name, ""))
        if owner is not None:
            new = owner
            changes += [Change("packages", "package-replaced", name, before=_label(before[k]),
                               after={"package": new["name"], "version": _label(new)}) for k in keys]
            continue
        changes += [Change("packages", "package-removed", name, before=_label(before[k])) for k in keys]
    for name, keys in added_by_name.items():
        changes += [Change("packages", "package-added", name, after=_label(after[k])) for k in keys]
        # a new package's licence, judged against `license_deny` by the policy
        changes += [Change("packages", "license-added", name, after=after[k]["license"])
                    for k in keys if after[k].get("license")]
    for key in keyed.changed:
        changes += _version_changes(before[key]["name"], before[key], after[key])
    return changes


def _version_changes(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    changes: list[Change] = []
    manager = str(new.get("manager") or old.get("manager"))
    if (old.get("epoch") or 0) != (new.get("epoch") or 0):
        # the epoch decides the order by itself; one change of the more telling kind
        changes.append(Change("packages", "package-epoch-changed", name, _label(old), _label(new),
                              detail={"epoch": [old.get("epoch") or 0, new.get("epoch") or 0]}))
    else:
        order = compare_versions(manager, old, new)
        if order > 0:
            changes.append(Change("packages", "package-downgraded", name, _label(old), _label(new)))
        elif order < 0:
            changes.append(Change("packages", "package-upgraded", name, _label(old), _label(new)))
    if old.get("license") != new.get("license") and old.get("license") is not None:
        changes.append(Change("packages", "license-changed", name, old.get("license"), new.get("license")))
    return changes
