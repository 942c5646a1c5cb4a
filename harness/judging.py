"""The one judging path of the plugin and the command line, for any aspect of the registry
(harness.aspects): what a baseline stores of it, its diff against a baseline or its checks
of the candidate alone, its root causes, then policy's verdicts and waivers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.aspects import BY_NAME
from harness.aspects.abi import linkage_here, suppressions
from harness.aspects.aspect import Linkage, unignored_files
from harness.config import HarnessConfig
from harness.diff import abi, causes
from harness.diff.change import Change
from harness.policy import WaiverUse, judge
from harness.snapshot import Snapshot


def stored_records(snap: Snapshot, aspect: str, config: HarnessConfig) -> Mapping[str, Any]:
    """What a baseline stores for an aspect of this snapshot."""
    records = BY_NAME[aspect].records
    if records is None:
        raise ValueError(aspect)
    return records(snap, config)


def candidate_only_changes(aspect: str, snap: Snapshot, config: HarnessConfig,
                           linkage: Linkage = linkage_here) -> list[Change]:
    """Checks that need no baseline (they also guard a first release)."""
    return BY_NAME[aspect].alone(snap, config, linkage)


def diff_aspect(aspect: str, before: Mapping[str, Any], snap: Snapshot,
                config: HarnessConfig, linkage: Linkage = linkage_here,
                before_files: Mapping[str, Any] | None = None) -> list[Change]:
    """Baseline records vs. the candidate snapshot, for one aspect (`before_files`: the
    files baseline, whose owners tell a replaced package from a removed one)."""
    return BY_NAME[aspect].diff(before, snap, config, linkage, before_files)


def aspect_error(aspect: str, snap: Snapshot) -> str | None:
    """A reason the aspect cannot be judged on this snapshot (e.g. a damaged database, a
    file past its cap)."""
    return BY_NAME[aspect].error(snap)


def cause_index(before: Mapping[str, Mapping[str, Any]], snap: Snapshot,
                config: HarnessConfig) -> causes.CauseIndex:
    """What explains the changes of an image against its baselines (`before`: the packages,
    files and abi records, an absent one empty; harness.diff.causes)."""
    old_files = unignored_files(before.get("files") or {}, config)
    abi_changes = (abi.diff_abi(before["abi"], snap.abi, suppressions(config))
                   if before.get("abi") else [])
    return causes.build_index({**before, "files": old_files}, snap.packages,
                              unignored_files(snap.files, config), abi_changes)


def judged_changes(aspect: str, snap: Snapshot, config: HarnessConfig, name: str,
                   baseline: tuple[dict[str, Any], Mapping[str, Any]] | None,
                   index: causes.CauseIndex | None, linkage: Linkage = linkage_here,
                   use: WaiverUse | None = None) -> list[Change]:
    """The one judging path of the plugin and the command line: against a baseline (its
    header and records) the aspect's diff and its changes against the header (the size,
    with the metadata), each change linked to its root cause (`index`); without one the
    checks of the candidate alone; then policy's verdicts and waivers."""
    entry = BY_NAME[aspect]
    if baseline is None:
        changes = entry.alone(snap, config, linkage)
    else:
        header, before = baseline
        before_files = index.before_files if index is not None else None
        changes = entry.diff(before, snap, config, linkage, before_files)
        if entry.against_header is not None:
            changes += entry.against_header(header, snap, config)
        if index is not None:
            changes = causes.link(changes, index)
    return judge(changes, config, name, snap.arch, use=use)
