"""The aspects the gate judges, one entry each: the baseline file it is judged against, what
its own baseline stores, its diff, its checks of the candidate alone, what makes it
unjudgeable, its kinds (harness.kinds) and its place in the reports. The plugin, the command
line and the reports all read this registry; `judged_changes` is the one judging path both
faces share.

Adding an aspect: its diff module in harness/diff/, its kinds in harness/kinds.py and
docs/compat-rules.md, one `Aspect` entry in `REGISTRY` (and a test in suites/compat/).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.config import HarnessConfig
from harness.diff import abi, causes, ownership
from harness.diff.change import Change
from harness.diff.files import candidate_security, diff_files, diff_security
from harness.diff.linkage import Finding, linkage_findings
from harness.diff.metadata import diff_metadata
from harness.diff.packages import diff_packages
from harness.kinds import KINDS
from harness.policy import WaiverUse, glob_regex, judge
from harness.snapshot import Snapshot, baseline_header

def _abi_with_env(snap: Snapshot) -> dict[str, Any]:
    """The ABI section plus the image's LD_LIBRARY_PATH, which the loader searches too."""
    return {**snap.abi, "library_path": snap.metadata.get("Env.LD_LIBRARY_PATH")}


def _linkage_here(snap: Snapshot) -> list[Finding]:
    return linkage_findings(_abi_with_env(snap))


#: a snapshot's linkage findings (`SnapshotStore.linkage` keeps them; else computed here)
Linkage = Callable[[Snapshot], list[Finding]]
#: (baseline records, candidate, config, linkage, the files baseline) -> changes
Diff = Callable[[dict[str, Any], Snapshot, HarnessConfig, Linkage, "dict[str, Any] | None"],
                list[Change]]
#: (candidate, config, linkage) -> changes that need no baseline
Alone = Callable[[Snapshot, HarnessConfig, Linkage], list[Change]]


@dataclass(frozen=True)
class Aspect:
    """One aspect of an image, everything the gate knows of it."""

    name: str
    #: the baseline file it is judged against (security reads the files baseline)
    stored_as: str
    #: what its own baseline file stores of a snapshot; None when it reads another's
    records: Callable[[Snapshot, HarnessConfig], dict[str, Any]] | None
    diff: Diff
    #: checks of the candidate alone (they also guard a first release)
    alone: Alone
    #: its place in the reports (HTML sections)
    order: int

    @property
    def kinds(self) -> tuple[str, ...]:
        """The change kinds its results carry (harness.kinds)."""
        return tuple(k.name for k in KINDS.values()
                     if self.name in k.aspects or (self.name == "metadata" and "size" in k.aspects))

    def error(self, snap: Snapshot) -> str | None:
        """A reason it cannot be judged on this snapshot (a damaged database, a file past
        its cap)."""
        errors = list(snap.errors.get(self.name, []))
        if self.name == "packages":
            errors = [db["error"] for db in snap.package_dbs if db.get("error")] + errors
        return "; ".join(errors[:10]) if errors else None


_VISIBLE: dict[tuple[int, tuple[str, ...]], tuple[dict[str, Any], dict[str, Any]]] = {}


def visible_files(files: dict[str, dict[str, Any]], config: HarnessConfig) -> dict[str, dict[str, Any]]:
    """The files aspect without the volatile paths the config ignores."""
    ignore = glob_regex(config.ignore)
    if ignore is None:
        return files
    key = (id(files), tuple(config.ignore))
    held = _VISIBLE.get(key)
    if held is not None and held[0] is files:  # the dict itself is kept: its id is its own
        return held[1]
    visible = {p: r for p, r in files.items() if not ignore.match(p)}
    if len(_VISIBLE) > 8:
        _VISIBLE.clear()
    _VISIBLE[key] = (files, visible)
    return visible


#: the subject of the one note an image read as a merged export stream gets
HIDDEN_UNKNOWN = "image"


def hidden_changes(snap: Snapshot) -> list[Change]:
    """hidden-in-lower-layer: each regular file a later layer deleted that the image still
    ships; break when it holds a secret, is setuid/setgid or ELF, else info. An image read
    as one merged stream gets one info note that the check needs its layers."""
    if snap.hidden is None:
        return [Change("security", "hidden-in-lower-layer", HIDDEN_UNKNOWN,
                       after="not checked: the image was read as one merged export stream; "
                             "the check needs its layers (--compat-read=layers on a local "
                             "engine, or a daemonless source)",
                       detail={"verdict": "info"})]
    return [Change("security", "hidden-in-lower-layer", path, after=dict(record),
                   detail={"verdict": "break" if record.get("found") else "info"})
            for path, record in snap.hidden.items()]


def hidden_size(snap: Snapshot) -> list[Change]:
    """The bytes deleted files still cost the image (size aspect, info)."""
    if not snap.hidden:
        return []
    total = sum(int(r.get("size") or 0) for r in snap.hidden.values())
    return [Change("size", "hidden-in-lower-layer", "image",
                   after={"files": len(snap.hidden), "bytes": total}, detail={"verdict": "info"})]


def package_checks(snap: Snapshot, config: HarnessConfig) -> list[Change]:
    """Candidate-only checks of the packages aspect: no database at all, an empty one,
    entries skipped as unreadable, or files the databases promise that the image lacks or
    holds differently."""
    return (no_database(snap) + database_findings(snap)
            + ownership.changes(snap.ownership, snap.packages, glob_regex(config.ignore)))


def database_findings(snap: Snapshot) -> list[Change]:
    """package-record-malformed (subject: the file and line or record) for every entry a
    reader skipped; package-database-empty for an existing database of no entries."""
    out: list[Change] = []
    for db in snap.package_dbs:
        where = str(db.get("location") or ", ".join(db.get("paths", [])))
        if db.get("empty"):
            out.append(Change("packages", "package-database-empty", where,
                              after=f"{db.get('manager')} database with no package"))
        for problem in db.get("malformed", []):
            subject, _, reason = str(problem).partition(": ")
            if reason.startswith("package #"):  # rpm: the file and the header's number
                number, _, reason = reason.partition(": ")
                subject = f"{subject} {number}"
            out.append(Change("packages", "package-record-malformed", subject,
                              after=reason or subject, detail={"manager": db.get("manager")}))
    return out


def no_database(snap: Snapshot) -> list[Change]:
    """An image without any package database says so (info), never "zero packages"."""
    if snap.package_dbs:
        return []
    return [Change("packages", "no-package-database", "/", after="no rpm, dpkg or apk database")]


def _security_alone(snap: Snapshot, config: HarnessConfig, linkage: Linkage) -> list[Change]:
    return (diff_security(None, {}, snap.accounts) + candidate_security(snap.metadata, snap.secrets)
            + hidden_changes(snap))


def _security(before: dict[str, Any], snap: Snapshot, config: HarnessConfig, linkage: Linkage,
              before_files: dict[str, Any] | None) -> list[Change]:
    return (diff_security(visible_files(before, config), visible_files(snap.files, config),
                          snap.accounts) + candidate_security(snap.metadata, snap.secrets)
            + hidden_changes(snap))


def _files(before: dict[str, Any], snap: Snapshot, config: HarnessConfig, linkage: Linkage,
           before_files: dict[str, Any] | None) -> list[Change]:
    return diff_files(visible_files(before, config), visible_files(snap.files, config))


def _metadata(before: dict[str, Any], snap: Snapshot, config: HarnessConfig, linkage: Linkage,
              before_files: dict[str, Any] | None) -> list[Change]:
    return diff_metadata(before, snap.metadata) + hidden_size(snap)


def _packages(before: dict[str, Any], snap: Snapshot, config: HarnessConfig, linkage: Linkage,
              before_files: dict[str, Any] | None) -> list[Change]:
    return (diff_packages(before, snap.packages, before_files, snap.files)
            + package_checks(snap, config))


def _abi_alone(snap: Snapshot, config: HarnessConfig, linkage: Linkage) -> list[Change]:
    return abi.linkage_changes(_abi_with_env(snap), config, linkage(snap))


def _abi(before: dict[str, Any], snap: Snapshot, config: HarnessConfig, linkage: Linkage,
         before_files: dict[str, Any] | None) -> list[Change]:
    return abi.diff_abi(before, snap.abi, config) + _abi_alone(snap, config, linkage)


#: every aspect the gate judges, in the order the suite's tests run them
REGISTRY: dict[str, Aspect] = {a.name: a for a in (
    Aspect("metadata", "metadata", lambda snap, config: snap.metadata, _metadata,
           lambda snap, config, linkage: hidden_size(snap), order=0),
    Aspect("files", "files", lambda snap, config: visible_files(snap.files, config), _files,
           lambda snap, config, linkage: [], order=4),
    Aspect("packages", "packages", lambda snap, config: snap.packages, _packages,
           lambda snap, config, linkage: package_checks(snap, config), order=2),
    Aspect("security", "files", None, _security, _security_alone, order=1),
    Aspect("abi", "abi", lambda snap, config: abi.baseline_records(snap.abi, config), _abi,
           _abi_alone, order=3),
)}
ASPECTS = tuple(REGISTRY)
#: the baseline file each aspect is judged against
STORED_AS = {a.name: a.stored_as for a in REGISTRY.values()}
#: the aspects that store a baseline file of their own
STORED_ASPECTS = tuple(a.name for a in REGISTRY.values() if a.records is not None)
#: the aspects in the reports' order
REPORT_ORDER = tuple(sorted(REGISTRY, key=lambda n: REGISTRY[n].order))


def stored_records(snap: Snapshot, aspect: str, config: HarnessConfig) -> dict[str, Any]:
    """What a baseline stores for an aspect of this snapshot."""
    records = REGISTRY[aspect].records
    if records is None:
        raise ValueError(aspect)
    return records(snap, config)


def candidate_only_changes(aspect: str, snap: Snapshot, config: HarnessConfig,
                           linkage: Linkage = _linkage_here) -> list[Change]:
    """Checks that need no baseline (they also guard a first release)."""
    return REGISTRY[aspect].alone(snap, config, linkage)


def diff_aspect(aspect: str, before: dict[str, Any], snap: Snapshot,
                config: HarnessConfig, linkage: Linkage = _linkage_here,
                before_files: dict[str, Any] | None = None) -> list[Change]:
    """Baseline records vs. the candidate snapshot, for one aspect (`before_files`: the
    files baseline, whose owners tell a replaced package from a removed one)."""
    return REGISTRY[aspect].diff(before, snap, config, linkage, before_files)


def aspect_error(aspect: str, snap: Snapshot) -> str | None:
    """A reason the aspect cannot be judged on this snapshot (e.g. a damaged database, a
    file past its cap)."""
    return REGISTRY[aspect].error(snap)


def cause_index(before: Mapping[str, dict[str, Any]], snap: Snapshot,
                config: HarnessConfig) -> causes.CauseIndex:
    """What explains the changes of an image against its baselines (`before`: the packages,
    files and abi records, an absent one empty; harness.diff.causes)."""
    old_files = visible_files(before.get("files") or {}, config)
    abi_changes = abi.diff_abi(before["abi"], snap.abi, config) if before.get("abi") else []
    return causes.build_index({**before, "files": old_files}, snap.packages,
                              visible_files(snap.files, config), abi_changes)


def judged_changes(aspect: str, snap: Snapshot, config: HarnessConfig, name: str,
                   baseline: tuple[dict[str, Any], dict[str, Any]] | None,
                   index: causes.CauseIndex | None, linkage: Linkage = _linkage_here,
                   use: WaiverUse | None = None) -> list[Change]:
    """The one judging path of the plugin and the command line: against a baseline (its
    header and records) the aspect's diff, the size change with the metadata, each change
    linked to its root cause (`index`); without one the checks of the candidate alone; then
    policy's verdicts and waivers."""
    if baseline is None:
        changes = candidate_only_changes(aspect, snap, config, linkage)
    else:
        header, before = baseline
        before_files = dict(index.before_files) if index is not None and aspect == "packages" else None
        changes = diff_aspect(aspect, before, snap, config, linkage, before_files)
        if aspect == "metadata":
            changes += size_changes(header, snap, config)
        if index is not None:
            changes = causes.link(changes, index)
    return judge(changes, config, name, snap.arch, use=use)


def size_changes(header: dict[str, Any], snap: Snapshot, config: HarnessConfig) -> list[Change]:
    """size-increased: info when the image grew, review/break over the configured budgets."""
    old, new = int(header.get("size") or 0), int(baseline_header(snap)["size"])
    if not old or new <= old:
        return []
    percent = 100.0 * (new - old) / old
    verdict = "info"
    if config.size_review_percent is not None and percent > config.size_review_percent:
        verdict = "review"
    if config.size_break_percent is not None and percent > config.size_break_percent:
        verdict = "break"
    return [Change("size", "size-increased", "image", old, new,
                   detail={"verdict": verdict, "percent": round(percent, 1)})]


