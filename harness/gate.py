"""The gate, apart from pytest: snapshot an image once, judge each aspect against its baseline.

source -> snapshot -> baseline -> diff -> policy, as plain function calls; the pytest plugin
and the command line both drive this module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from harness import baseline, causes, gcpause, ownership, safepath
from harness.config import HarnessConfig, ImageSpec
from harness.diff import abi
from harness.diff.change import Change
from harness.diff.files import candidate_security, diff_files, diff_security
from harness.diff.metadata import diff_metadata
from harness.diff.packages import diff_packages
from harness.diff.probes import diff_probes
from harness.engine import Engine, ImageInfo
from harness.snapshot import elf
from harness.source import EngineSource, ImageSource, open_source
from harness.errors import BaselineCorrupt, BaselineMissing, HarnessError
from harness.forked import Forked
from harness.limits import Limits, budget
from harness.linkage import Finding, linkage_findings
from harness.policy import WaiverUse, glob_regex, judge
from harness.snapshot import CACHE_FORMAT, SCHEMA, Snapshot, baseline_header, take_snapshot
from harness.snapshot import layercache

ASPECTS = ("metadata", "files", "packages", "security", "abi")
#: the baseline file each aspect is judged against (security reads the files baseline)
STORED_AS = {"metadata": "metadata", "files": "files", "packages": "packages",
             "security": "files", "abi": "abi"}
STORED_ASPECTS = ("metadata", "files", "packages", "abi")
#: the reason on changes that `--update-baselines` accepted into the new baseline
ACCEPTED = "accepted by --update-baselines"


def _code_fingerprint() -> str:
    """A hash of the snapshot code: a cached snapshot from other code is never reused."""
    digest = hashlib.sha256(str(SCHEMA).encode())
    root = Path(__file__).parent
    # every module of the package: readers live beside the snapshot (rpmheader, linkage, ...)
    for path in sorted(root.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class SnapshotStore:
    """Takes each image's snapshot once, shared by pytest-xdist workers and later runs.

    A snapshot is keyed by image id (content-addressed, so safe to reuse across runs) and by
    the snapshot code's fingerprint; a file lock makes concurrent workers wait for one taker.
    """

    def __init__(self, cache_dir: Path, run_id: str, platform: str | None = None,
                 read: str = "auto", limits: Limits | None = None) -> None:
        self.cache_dir = cache_dir
        #: the bounds of every snapshot this store takes (`[tool.harness.limits]`)
        self.limits = limits or Limits()
        self.run_id = run_id
        self.platform = platform
        #: how engine images are read (harness.source.READ_MODES)
        self.read = read
        self._engine: Engine | None = None
        #: image id -> the source it was resolved through (to stream its filesystem later)
        self._sources: dict[str, ImageSource] = {}
        self._resolved: dict[str, ImageInfo] = {}
        self._fingerprint = _code_fingerprint()
        #: snapshots this process already holds: the five aspect tests of an image share one
        self._memo: dict[str, Snapshot] = {}
        #: id() of each held snapshot -> its image's key (ImageInfo.key)
        self._keys: dict[int, str] = {}
        #: each held snapshot's linkage findings, begun in a child when the snapshot was taken
        self._linkage: dict[str, Forked[list[Finding]]] = {}

    @property
    def engine(self) -> Engine:
        """The engine, connected on first use (a run with no images never connects)."""
        if self._engine is None:
            self._engine = Engine.connect()
        return self._engine

    def resolve(self, spec: ImageSpec) -> ImageInfo:
        """Find the image: through the engine (local, else pulled), or read from an archive.

        Resolved once per reference and process: every aspect of a run judges the same image
        even if its tag moves meanwhile (and the engine is asked once, not once per test)."""
        info = self._resolved.get(spec.ref)
        if info is None:
            source = open_source(spec.ref, lambda: self.engine, self.platform, self.read)
            info = self._resolved[spec.ref] = source.inspect()
            self._sources.setdefault(info.key, source)
        return info

    def snapshot(self, info: ImageInfo) -> Snapshot:
        """The snapshot of an image, from the cache or taken now behind a lock."""
        held = self._memo.get(info.key)
        if held is not None:
            return held
        with gcpause.paused():
            snap = self._load_or_take(info)
        self._memo[info.key] = snap
        self._keys[id(snap)] = info.key
        gcpause.settle()
        return snap

    def _cache_path(self, info: ImageInfo) -> Path:
        # the content's key, hashed: an engine image's id, a daemonless one's with its layers;
        # a snapshot taken under other bounds may hold other errors
        name = hashlib.sha256(info.key.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        bound = hashlib.sha256(repr(self.limits).encode()).hexdigest()[:8]
        key = f"{name}-{self._fingerprint}-{bound}-{CACHE_FORMAT}"
        return safepath.inside(self.cache_dir, f"{key}.snapshot")

    def _layer_folder(self) -> Path:
        """Facts per layer folder (harness.snapshot.layercache), under the code and bounds
        that learnt them."""
        bound = hashlib.sha256(repr(self.limits).encode()).hexdigest()[:8]
        return self.cache_dir / f"layers-{self._fingerprint}-{bound}-{CACHE_FORMAT}"

    def _load_or_take(self, info: ImageInfo) -> Snapshot:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        path = self._cache_path(info)
        # imported here: a warm run, whose verdicts are all known, never locks (importing
        # filelock costs 17 ms, 3% of such a run)
        from filelock import FileLock

        # another xdist worker may be taking it: ask the lock often, as the snapshot is
        # wanted the moment it is kept (filelock's default: every 50 ms)
        with FileLock(str(path) + ".lock").acquire(poll_interval=0.01):
            cached = Snapshot.recall(path)
            if cached is not None:
                # identity fields may differ (another tag of the same image)
                cached.image["ref"] = info.ref
                return cached
            return self._take(info, path)

    def _take(self, info: ImageInfo, path: Path) -> Snapshot:
        """Read the image now and keep its snapshot at `path` (the caller holds its lock)."""
        source = self._sources.get(info.key) or open_source(
            info.ref, lambda: self.engine, self.platform, self.read)
        if self.read != "export" and isinstance(source, EngineSource):
            elf.prestart_pool(in_place=True)  # a guess: `auto` may still fall back
        try:
            # the budget covers opening the filesystem too (a daemonless source's layers)
            with budget(self.limits, info.ref), source.rootfs(self.run_id) as stream, \
                    layercache.using(self._layer_folder()):
                snap = take_snapshot(info, stream, lambda: source.rootfs(self.run_id),
                                     self.limits)
        finally:
            elf.discard_started_pool()
        # the closure waits for the abi aspect, which comes after the others: the second core
        # computes it meanwhile (Debian minbase: 0.12 s)
        self._linkage[info.key] = _linkage_of(snap, fork=True)
        snap.keep(path)
        return snap

    @property
    def fingerprint(self) -> str:
        """The harness code's fingerprint (part of every cache key)."""
        return self._fingerprint

    def recall_verdict(self, key: str) -> dict[str, Any] | None:
        """A judgement an earlier run stored under `key`; None when absent or unreadable."""
        try:
            path = safepath.inside(self.cache_dir, "verdicts", f"{key}.json")
            data = json.loads(path.read_text("ascii"))
        except (OSError, ValueError, HarnessError):
            return None
        if not isinstance(data, dict) or not {"result", "matched", "expired"} <= data.keys():
            return None
        return data

    def keep_verdict(self, key: str, data: dict[str, Any]) -> None:
        """Store a judgement for later runs (atomically; a failure only costs the reuse)."""
        try:
            (self.cache_dir / "verdicts").mkdir(parents=True, exist_ok=True)
            path = safepath.inside(self.cache_dir, "verdicts", f"{key}.json")
            safepath.replace_file(path, json.dumps(data, ensure_ascii=True).encode("ascii"))
        except (OSError, HarnessError):
            pass

    def linkage(self, snap: Snapshot) -> list[Finding]:
        """The linkage findings of a snapshot (harness.linkage), computed once."""
        key = self._keys.get(id(snap), snap.image["image_id"])
        if key not in self._linkage:
            self._linkage[key] = _linkage_of(snap, fork=False)
        return self._linkage[key].result()

    def cleanup(self) -> int:
        """Remove every container this run created (they are removed as they go; this is the
        safety net after a crash or Ctrl-C), and stop what still computes for it."""
        for pending in self._linkage.values():
            pending.close()
        if self._engine is None:
            return 0
        return self._engine.remove_labelled(self.run_id)


#: (id of a files dict, ignore globs) -> (that dict, its visible part): the files and security
#: aspects of an image, and their baselines, filter the same 100,000-path dicts
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


def stored_records(snap: Snapshot, aspect: str, config: HarnessConfig) -> dict[str, Any]:
    """What a baseline stores for an aspect of this snapshot."""
    if aspect == "files":
        return visible_files(snap.files, config)
    if aspect == "metadata":
        return snap.metadata
    if aspect == "packages":
        return snap.packages
    if aspect == "abi":
        return abi.baseline_records(snap.abi, config)
    raise ValueError(aspect)


@dataclass
class AspectResult:
    """The judged outcome of one aspect of one image."""

    name: str
    ref: str
    aspect: str
    arch: str | None
    image_id: str | None
    baseline_path: str | None
    changes: list[Change] = field(default_factory=list)
    error: str | None = None
    missing_baseline: bool = False
    updated: bool | None = None

    @property
    def verdict(self) -> str:
        """`error` when it could not be judged, `fail` on an unwaived break, else `pass`."""
        if self.error:
            return "error"
        if self.missing_baseline or any(c.blocking for c in self.changes):
            return "fail"
        return "pass"

    def to_dict(self) -> dict[str, Any]:
        """Plain data, to travel between xdist workers and the controller."""
        return {"name": self.name, "ref": self.ref, "aspect": self.aspect, "arch": self.arch,
                "image_id": self.image_id, "baseline_path": self.baseline_path,
                "changes": [c.to_dict() for c in self.changes], "error": self.error,
                "missing_baseline": self.missing_baseline, "updated": self.updated}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AspectResult:
        """Inverse of `to_dict`."""
        data = dict(data)
        data["changes"] = [Change(**c) for c in data["changes"]]
        return cls(**data)


def _abi_with_env(snap: Snapshot) -> dict[str, Any]:
    """The ABI section plus the image's LD_LIBRARY_PATH, which the loader searches too."""
    return {**snap.abi, "library_path": snap.metadata.get("Env.LD_LIBRARY_PATH")}


def _linkage_of(snap: Snapshot, fork: bool) -> Forked[list[Finding]]:
    """The snapshot's linkage findings, begun in a forked child or left to compute here."""
    return Forked(partial(linkage_findings, _abi_with_env(snap)), fork=fork)


def _linkage_here(snap: Snapshot) -> list[Finding]:
    return linkage_findings(_abi_with_env(snap))


#: a snapshot's linkage findings (`SnapshotStore.linkage` keeps them; else computed here)
Linkage = Callable[[Snapshot], list[Finding]]


def candidate_only_changes(aspect: str, snap: Snapshot, config: HarnessConfig,
                           linkage: Linkage = _linkage_here) -> list[Change]:
    """Checks that need no baseline (they also guard a first release)."""
    if aspect == "security":
        return (diff_security(None, {}, snap.accounts) + candidate_security(snap.metadata, snap.secrets)
                + hidden_changes(snap))
    if aspect == "abi":
        return abi.linkage_changes(_abi_with_env(snap), config, linkage(snap))
    if aspect == "packages":
        return package_checks(snap, config)
    if aspect == "metadata":
        return hidden_size(snap)
    return []


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


def diff_aspect(aspect: str, before: dict[str, Any], snap: Snapshot,
                config: HarnessConfig, linkage: Linkage = _linkage_here,
                before_files: dict[str, Any] | None = None) -> list[Change]:
    """Baseline records vs. the candidate snapshot, for one aspect (`before_files`: the
    files baseline, whose owners tell a replaced package from a removed one)."""
    if aspect == "files":
        return diff_files(visible_files(before, config), visible_files(snap.files, config))
    if aspect == "security":
        return (diff_security(visible_files(before, config), visible_files(snap.files, config),
                              snap.accounts) + candidate_security(snap.metadata, snap.secrets)
                + hidden_changes(snap))
    if aspect == "metadata":
        return diff_metadata(before, snap.metadata) + hidden_size(snap)
    if aspect == "packages":
        return (diff_packages(before, snap.packages, before_files, snap.files)
                + package_checks(snap, config))
    if aspect == "abi":
        return (abi.diff_abi(before, snap.abi, config)
                + abi.linkage_changes(_abi_with_env(snap), config, linkage(snap)))
    raise ValueError(aspect)


def aspect_error(aspect: str, snap: Snapshot) -> str | None:
    """A reason the aspect cannot be judged on this snapshot (e.g. a damaged database, a
    file past its cap)."""
    errors = list(snap.errors.get(aspect, []))
    if aspect == "packages":
        errors = [db["error"] for db in snap.package_dbs if db.get("error")] + errors
    return "; ".join(errors[:10]) if errors else None


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


def check_probes(spec: ImageSpec, family: str, records: dict[str, Any], store: SnapshotStore,
                 root: Path, config: HarnessConfig, update: bool = False,
                 waiver_use: WaiverUse | None = None) -> AspectResult:
    """Judge (or store) the probe records a runtime suite collected for one family."""
    aspect = f"probes.{family}"
    result = AspectResult(spec.name, spec.ref, aspect, None, None, None)
    try:
        info = store.resolve(spec)
        result.arch, result.image_id = info.arch, info.image_id
        result.baseline_path = str(baseline.aspect_path(root, spec.name, info.arch, aspect))
        try:
            _, before = baseline.load(root, spec.name, info.arch, aspect)
        except BaselineMissing:
            if not update:
                result.missing_baseline = True
                return result
            before = {}
        except BaselineCorrupt:
            if not update:
                raise
            before = {}
        changes = judge(diff_probes(before, records), config, spec.name, info.arch, use=waiver_use)
        if update:
            result.updated = baseline.write(root, spec.name, info.arch, aspect,
                                            baseline_header(store.snapshot(info)), records)
            changes = [replace(c, waived=True, reason=ACCEPTED) if c.blocking else c for c in changes]
        result.changes = changes
    except HarnessError as exc:
        result.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever stops a judgement is its error
        result.changes, result.error = [], judgement_error(exc)
    return result


def judgement_error(exc: BaseException) -> str:
    """The error of an aspect whose judgement raised something unforeseen (a MemoryError, a
    RecursionError, a reader's bug): bounded, so that building it needs next to no memory."""
    try:
        text = str(exc)[:300]
    except Exception:  # noqa: BLE001 - a message that cannot even be rendered
        text = ""
    return f"could not be judged: {type(exc).__name__}" + (f": {text}" if text else "")


def check_aspect(spec: ImageSpec, aspect: str, store: SnapshotStore, root: Path,
                 config: HarnessConfig, update: bool = False,
                 waiver_use: WaiverUse | None = None) -> AspectResult:
    """Judge (or, with `update`, store) one aspect of one image. Never raises (a MemoryError
    or RecursionError included): whatever stops the judgement becomes the result's `error`.

    A judgement is a pure function of the image, the baseline file, the configuration, the
    harness code and the date (waivers expire): when all of them equal an earlier run's, that
    run's result is reused without loading the snapshot (a warm re-run of an unchanged image).
    """
    use = WaiverUse()
    try:
        with gcpause.paused():  # baselines and diffs are large acyclic structures
            key = None if update else _verdict_key(spec, aspect, store, root, config)
            known = store.recall_verdict(key) if key else None
            result = _recalled(known, spec, use) if known is not None else None
            if result is None:
                result = _check_aspect(spec, aspect, store, root, config, update, use)
                if key and result.error is None:
                    store.keep_verdict(key, {"result": result.to_dict(), "matched": use.matched,
                                             "expired": sorted(use.expired)})
    except Exception as exc:  # noqa: BLE001 - never a crash: the aspect is `error`
        use = WaiverUse()
        result = AspectResult(spec.name, spec.ref, aspect, None, None, None,
                              error=judgement_error(exc))
    if waiver_use is not None:
        for index, count in use.matched.items():
            waiver_use.matched[index] = waiver_use.matched.get(index, 0) + count
        waiver_use.expired |= use.expired
    return result


def _recalled(known: dict[str, Any], spec: ImageSpec, use: WaiverUse) -> AspectResult | None:
    """A stored judgement as a result (and its waiver use); None when it is not one."""
    try:
        result = AspectResult.from_dict(known["result"])
        matched = {int(i): int(n) for i, n in known["matched"].items()}
        expired = {int(i) for i in known["expired"]}
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    result.ref = spec.ref
    use.matched, use.expired = matched, expired
    return result


def _verdict_key(spec: ImageSpec, aspect: str, store: SnapshotStore, root: Path,
                 config: HarnessConfig) -> str | None:
    """What a judgement depends on, hashed; None when it cannot be known (engine errors are
    left to the judgement itself to report)."""
    try:
        info = store.resolve(spec)
        # a change's cause comes from the other baselines too (harness.causes)
        paths = [baseline.aspect_path(root, spec.name, info.arch, part)
                 for part in (STORED_AS[aspect], *STORED_ASPECTS)]
    except HarnessError:
        return None
    stored = b""
    for path in paths:
        try:
            stored += baseline.file_digest(path)
        except FileNotFoundError:
            stored += b"\0missing"
        except OSError:
            return None
    digest = hashlib.sha256()
    for part in (aspect, spec.name, info.key, info.arch, store.fingerprint, repr(config),
                 dt.date.today().isoformat()):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(stored)
    return digest.hexdigest()[:40]


#: (baselines root, image name, image id, config) -> its cause index: the aspects of an
#: image judged in one process share it
_CAUSES: dict[tuple[str, str, str, str], causes.CauseIndex] = {}


def image_causes(root: Path, name: str, snap: Snapshot, config: HarnessConfig) -> causes.CauseIndex:
    """What explains the changes of an image against its baselines (harness.causes)."""
    key = (str(root), name, str(snap.image.get("image_id")), repr(config))
    held = _CAUSES.get(key)
    if held is not None:
        return held
    before: dict[str, dict[str, Any]] = {}
    for aspect in ("packages", "files", "abi"):
        try:
            before[aspect] = baseline.load(root, name, snap.arch, aspect)[1]
        except HarnessError:
            before[aspect] = {}
    before["files"] = visible_files(before["files"], config)
    abi_changes = abi.diff_abi(before["abi"], snap.abi, config) if before["abi"] else []
    index = causes.build_index(before, snap.packages, visible_files(snap.files, config),
                               abi_changes)
    if len(_CAUSES) > 8:
        _CAUSES.clear()
    _CAUSES[key] = index
    return index


def _check_aspect(spec: ImageSpec, aspect: str, store: SnapshotStore, root: Path,
                  config: HarnessConfig, update: bool, waiver_use: WaiverUse) -> AspectResult:
    result = AspectResult(spec.name, spec.ref, aspect, None, None, None)
    try:
        info = store.resolve(spec)
        result.arch, result.image_id = info.arch, info.image_id
        stored = STORED_AS[aspect]
        result.baseline_path = str(baseline.aspect_path(root, spec.name, info.arch, stored))
        snap = store.snapshot(info)
        result.error = aspect_error(aspect, snap)
        if result.error:
            return result
        judge_changes: Callable[[list[Change]], list[Change]] = lambda cs: judge(
            cs, config, spec.name, info.arch, use=waiver_use)
        if update:
            before: dict[str, Any] | None
            try:
                _, before = baseline.load(root, spec.name, info.arch, stored)
            except HarnessError:
                before = None
            if aspect in STORED_ASPECTS:
                records = stored_records(snap, aspect, config)
                result.updated = baseline.write(root, spec.name, info.arch, aspect,
                                                baseline_header(snap), records)
            only = candidate_only_changes(aspect, snap, config, store.linkage)
            diffed = (diff_aspect(aspect, before, snap, config, store.linkage)
                      if before is not None else only)
            keys = {(c.kind, c.subject, c.consumer) for c in only}
            result.changes = [c if (c.kind, c.subject, c.consumer) in keys or c.blocking is False
                              else replace(c, waived=True, reason=ACCEPTED)
                              for c in judge_changes(diffed)]
            return result
        try:
            header, before = baseline.load(root, spec.name, info.arch, stored)
        except BaselineMissing:
            result.missing_baseline = True
            result.changes = judge_changes(candidate_only_changes(aspect, snap, config,
                                                                  store.linkage))
            return result
        index = image_causes(root, spec.name, snap, config)
        changes = diff_aspect(aspect, before, snap, config, store.linkage,
                              dict(index.before_files) if aspect == "packages" else None)
        if aspect == "metadata":
            changes += size_changes(header, snap, config)
        result.changes = judge_changes(causes.link(changes, index))
    except HarnessError as exc:
        result.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - MemoryError, RecursionError, a reader's bug
        result.changes, result.error = [], judgement_error(exc)
    return result
