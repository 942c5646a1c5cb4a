"""The gate, apart from pytest: snapshot an image once, judge each aspect against its baseline.

source -> snapshot -> baseline -> diff -> policy, as plain function calls; the pytest plugin
and the command line both drive this module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from harness import baseline, emulation, gcpause, runtime_families, safepath
from harness.diff import causes
from harness.config import HarnessConfig, ImageSpec
from harness.diff.probes import diff_probes
from harness.rootfs.image import ImageInfo
from harness.source.engine import Engine
from harness.source.sources import ImageSource, open_source
from harness.errors import BaselineCorrupt, BaselineMissing, HarnessError
from harness.aspects import JUDGED_AGAINST, REGISTRY, STORED_ASPECTS
from harness.aspects.abi import abi_with_env
from harness.judging import (aspect_error, candidate_only_changes, cause_index, diff_aspect,
                             judged_changes, stored_records)
from harness.childresult import ChildResult, first_ended
from harness.outcome.result import AspectResult
from harness.limits import Limits
from harness.memo import Memo
from harness.diff.linkage import Finding, linkage_findings
from harness.policy import WaiverUse, judge
from harness.snapshot import CACHE_FORMAT, SCHEMA, Snapshot, baseline_header, read_snapshot
from harness.snapshot import layercache, subtrees
from harness.snapshot.elf import parsing_here

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


#: snapshots a store holds in memory at most
HELD_SNAPSHOTS = 2
#: planned images whose snapshots are taken ahead at once, each in a child (`plan`)
AHEAD = 2


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
        #: image key -> the source it was found through (to stream its filesystem later)
        self._sources: dict[str, ImageSource] = {}
        #: image reference -> the image it named when first asked
        self._found: dict[str, ImageInfo] = {}
        self._fingerprint = _code_fingerprint()
        #: snapshots this process holds: the aspect tests of an image share one, and the
        #: plugin runs them together, so the last few images' are held (a family's earlier
        #: members are recalled from the cache if asked again)
        self._memo: Memo[str, Snapshot] = Memo(HELD_SNAPSHOTS)
        #: id() of each held snapshot -> its image's key (ImageInfo.key)
        self._keys: dict[int, str] = {}
        #: each held snapshot's linkage findings, begun in a child when the snapshot was taken
        self._linkage: dict[str, ChildResult[list[Finding]]] = {}
        #: the images the run will ask for, in order, and whether one still needs its
        #: snapshot (`plan`); image reference -> the child taking its snapshot ahead (and giving
        #: its linkage findings when it took it)
        self._plan: list[ImageSpec] = []
        self._wanted: Callable[[ImageSpec], bool] = lambda spec: True
        self._judge: Callable[[ImageSpec], None] | None = None
        #: image key -> the linkage findings its child gave (None: none given), once the
        #: child taking it ahead has ended; for the images judged last (the run's process
        #: may never load a member judged in its child)
        self._settled: Memo[str, list[Finding] | None] = Memo(HELD_SNAPSHOTS)
        self._ahead: dict[str, ChildResult[list[Finding] | bool]] = {}
        #: references of children taking snapshots ahead that have ended, and the plan's
        #: place of the last image asked for (children begin after it)
        self._ended: set[str] = set()
        self._at = -1
        #: references a child was begun for (each once: one that failed is left to its tests)
        self._tried: set[str] = set()

    @property
    def engine(self) -> Engine:
        """The engine, connected on first use (a run with no images never connects)."""
        if self._engine is None:
            self._engine = Engine.connect()
        return self._engine

    def find_image(self, spec: ImageSpec) -> ImageInfo:
        """Find the image: through the engine (local, else pulled), or read from an archive.

        Found once per reference and process: every aspect of a run judges the same image
        even if its tag moves meanwhile (and the engine is asked once, not once per test)."""
        info = self._found.get(spec.ref)
        if info is None:
            source = open_source(spec.ref, lambda: self.engine, self.platform, self.read)
            info = self._found[spec.ref] = source.inspect()
            self._sources.setdefault(info.key, source)
        return info

    def snapshot_of(self, spec: ImageSpec) -> Snapshot:
        """The snapshot of the image a spec names (`find_image`, then `snapshot`)."""
        return self.snapshot(self.find_image(spec))

    def plan(self, specs: list[ImageSpec], wanted: Callable[[ImageSpec], bool],
             judge: Callable[[ImageSpec], None] | None = None) -> None:
        """The images this run will judge, in the order it asks for them: once one's snapshot
        is had, the next ones that are `wanted` (their judgements not all known from an
        earlier run) are taken ahead in forked children, `AHEAD` at a time, and kept in the
        cache for `snapshot` to recall. A child that took its image then calls `judge` on
        it, with the snapshot in hand (`plan_run`: its verdicts kept). A family is then read
        and judged on every core while the run reports it."""
        self._plan, self._wanted, self._judge = list(specs), wanted, judge

    def baselines_folder(self) -> Path:
        """Where baselines parsed by this code are kept (harness.baseline `parsed_in`)."""
        return self.cache_dir / f"baselines-{self._fingerprint}-{CACHE_FORMAT}"

    def snapshot(self, info: ImageInfo) -> Snapshot:
        """The snapshot of an image, from the cache or taken now behind a lock."""
        kept = self._memo.get(info.key)
        if kept is not None:
            return kept
        self._settle(info)
        with gcpause.paused():
            snap = self._load_or_take(info)
        if info.key in self._settled:
            findings = self._settled.get(info.key)
            self._linkage.setdefault(info.key, ChildResult.given(findings) if findings is not None
                                     else _linkage_of(snap, fork=True))
        self._take_next_ahead(info)
        self._hold(info, snap)
        gcpause.settle()
        return snap

    def settle(self, spec: ImageSpec) -> None:
        """Wait for the child taking the spec's image ahead, if one is (at most the image's
        time): its snapshot, and its verdicts when the plan judges, are then in the cache.
        The children that end meanwhile make room for the next planned images."""
        try:
            info = self.find_image(spec)
        except HarnessError:
            return
        self._settle(info)

    def _settle(self, info: ImageInfo) -> None:
        """`settle`; the child's linkage findings kept for `snapshot` (`_settled`)."""
        ref = next((ref for ref in self._ahead
                    if (found := self._found.get(ref)) is not None and found.key == info.key),
                   None)
        if ref is None:
            return
        # never longer than the image's own time: a child stuck past it is stopped (its
        # lock goes with it) and the snapshot taken here, under the run's own bounds
        deadline = time.monotonic() + self.limits.image_seconds
        while ref not in self._ended and (left := deadline - time.monotonic()) > 0:
            running = {child: other for other, child in self._ahead.items()
                       if other not in self._ended}
            self._ended.update(running[child] for child in first_ended(list(running), left))
            self._fill()  # another child ended first: the next planned image in its place
        ahead = self._ahead.pop(ref)
        findings: list[Finding] | None = None
        if ref in self._ended:
            given = ahead.result()
            findings = given if isinstance(given, list) else None
        else:
            ahead.close()
        self._ended.discard(ref)
        self._settled.put(info.key, findings)
        self._take_next_ahead(info)

    def _hold(self, info: ImageInfo, snap: Snapshot) -> None:
        self._memo.put(info.key, snap)
        # an id is an object's only while it lives: those of dropped snapshots go too
        self._keys = {id(held): key for key, held in self._memo.items()}

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
        # imported here: a warm run, whose verdicts are all known, never locks (and need not
        # pay filelock's import)
        from filelock import FileLock

        # another xdist worker may be taking it: ask the lock often, as the snapshot is
        # wanted the moment it is kept (more often than filelock's default)
        with FileLock(str(path) + ".lock").acquire(poll_interval=0.01):
            cached = Snapshot.recall(path, self._layer_folder())
            if cached is not None:
                # identity fields may differ (another tag of the same image)
                cached.image["ref"] = info.ref
                return cached
            return self._take(info, path)

    def _take(self, info: ImageInfo, path: Path, linkage: bool = True) -> Snapshot:
        """Read the image now and keep its snapshot at `path` (the caller holds its lock)."""
        source = self._sources.get(info.key) or open_source(
            info.ref, lambda: self.engine, self.platform, self.read)
        # a run planned for this image alone has no later walk to replay what this one met
        alone = len(self._plan) == 1 and self._found.get(self._plan[0].ref) is info
        with layercache.using(self._layer_folder()), subtrees.noting(not alone):
            snap = read_snapshot(info, lambda: source.rootfs(self.run_id), self.limits,
                                 in_place=source.reads_in_place)
        if linkage:
            # the closure waits for the abi aspect, which comes after the others: the second
            # core computes it meanwhile; unless children will take the next images: then
            # now, and they share its checks (harness.diff.linkage `_SHARED_CHECKS`)
            shared = len(self._plan) > 1
            self._linkage[info.key] = _linkage_of(snap, fork=not shared)
            if shared:
                self._linkage[info.key].result()
        snap.keep(path, self._layer_folder())
        return snap

    def _take_next_ahead(self, info: ImageInfo) -> None:
        """Begin taking the snapshots of the planned images after `info`'s, each in a child,
        `AHEAD` at once (`_fill`)."""
        at = next((n for n, spec in enumerate(self._plan)
                   if (found := self._found.get(spec.ref)) is not None and found.key == info.key),
                  None)
        if at is not None:
            self._at = max(self._at, at)
            self._fill()

    def _fill(self) -> None:
        """Begin taking the snapshots of the next planned images, each in a child, while
        fewer than `AHEAD` children run, unless held, kept or tried already. The child finds
        the image (an image the engine lacks is pulled there, not here) and leaves it when not
        `wanted`."""
        running = len(self._ahead.keys() - self._ended)
        for spec in self._plan[self._at + 1:]:
            if running >= AHEAD:
                return
            found = self._found.get(spec.ref)
            if (spec.ref in self._tried or found is not None and (
                    found.key in self._memo or self._cache_path(found).exists())
                    or not _room_for_a_child()):
                continue
            self._tried.add(spec.ref)
            _parser_imported()
            self._ahead[spec.ref] = ChildResult(partial(_taken_ahead, self, spec, os.getpid()))
            running += 1

    @property
    def fingerprint(self) -> str:
        """The harness code's fingerprint (part of every cache key)."""
        return self._fingerprint

    def recall_verdict(self, key: str) -> dict[str, Any] | None:
        """A judgement an earlier run stored under `key`; None when absent or unreadable."""
        try:
            path = safepath.inside(self.cache_dir, "verdicts", f"{key}.json")
            data = json.loads(path.read_text("ascii"))
        except (OSError, ValueError, RecursionError, HarnessError):  # damaged: judged again
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
        """The linkage findings of a snapshot (harness.diff.linkage), computed once."""
        key = self._keys.get(id(snap), snap.image["image_id"])
        if key not in self._linkage:
            self._linkage[key] = _linkage_of(snap, fork=False)
        return self._linkage[key].result()

    def cleanup(self) -> int:
        """Remove every container this run created (they are removed as they go; this is the
        safety net after a crash or Ctrl-C), and stop what still computes for it."""
        for ahead in self._ahead.values():
            ahead.close()
        for pending in self._linkage.values():
            pending.close()
        self._ahead.clear()
        if self._engine is None:
            return 0
        return self._engine.remove_labelled(self.run_id)


def _parser_imported() -> None:
    """Import the ELF parser here, once, before forking children that take snapshots
    ahead: each inherits it instead of importing LIEF again (20 ms of CPU each)."""
    from harness.snapshot import elfparse

    elfparse.quiet()


def _room_for_a_child() -> bool:
    """Whether the machine has the memory for one more snapshot taken ahead: twice the most
    this process, or a child of it that ended, has held (the next image may well be as
    large as the last; the children judge theirs, so the run's process may never have held
    a member; a family of large images is then read one at a time, as without `plan`).
    False where it cannot tell."""
    import resource

    try:
        with open("/proc/meminfo", "rb") as f:
            available = next(int(line.split()[1]) for line in f
                             if line.startswith(b"MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return False
    held = max(resource.getrusage(who).ru_maxrss
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return available > 2 * held  # both KiB


def _taken_ahead(store: SnapshotStore, spec: ImageSpec, parent: int) -> list[Finding] | bool:
    """In a forked child: find a planned image and, when `wanted`, take its snapshot into
    the store's cache (`plan`), and give its linkage findings (the parent then forks no
    child of its own for them); True when another process took it, False when not wanted.
    The parent's engine connection and signal handlers are not this process's. Never in
    the parent (a child that could not fork): there the snapshot is taken when asked for."""
    import signal

    if os.getpid() == parent:
        return False
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    store._engine = store._engine.for_child() if store._engine is not None else None
    store._sources, store._linkage, store._ahead, store._ended = {}, {}, {}, set()
    subtrees.last_walk()
    info = store.find_image(spec)
    if not store._wanted(spec):
        return False
    store.cache_dir.mkdir(parents=True, exist_ok=True)
    path = store._cache_path(info)
    from filelock import FileLock

    with FileLock(str(path) + ".lock").acquire(poll_interval=0.01):
        if path.exists():
            return True
        # the run's process and another child keep the cores busy: a parser pool of its own
        # would cost more than it gives (bench/README.md)
        with gcpause.paused(), parsing_here():
            snap = store._take(info, path, linkage=False)
            findings = linkage_findings(abi_with_env(snap))
    if store._judge is not None:
        # judged here, on this core, from the snapshot in hand: the run's process then
        # recalls the verdicts (`check_aspect`) instead of the snapshot
        store._linkage[info.key] = ChildResult.given(findings)
        store._hold(info, snap)
        store._judge(spec)
    return findings


def plan_run(store: SnapshotStore, specs: list[ImageSpec], root: Path, config: HarnessConfig,
             update: bool, aspects: Mapping[str, Collection[str]] | None = None) -> None:
    """Plan a run of several images (`SnapshotStore.plan`): an image is taken ahead unless
    every judgement of it the run asks for is known from an earlier run, and the child
    that took it judges those aspects too (not when updating baselines). `aspects`: image
    name -> the aspects the run asks of it (else every aspect of `REGISTRY`), a hint: an
    aspect the child did not judge is judged when asked, one judged in vain costs only the
    child's time."""
    every = [aspect.name for aspect in REGISTRY]

    def asked(spec: ImageSpec) -> Collection[str]:
        known = aspects.get(spec.name) if aspects is not None else None
        return known if known is not None else every

    def wanted(spec: ImageSpec) -> bool:
        # an image the run asks no aspect of (its other suites' tests) is wanted as before
        return update or not _judgements_known(spec, store, root, config, asked(spec) or every)

    store.plan(specs, wanted, None if update else partial(_judge_asked, store=store, root=root,
                                                          config=config, asked=asked))


def _judge_asked(spec: ImageSpec, store: SnapshotStore, root: Path, config: HarnessConfig,
               asked: Callable[[ImageSpec], Collection[str]]) -> None:
    """Judge the aspects of an image the run asks for, each kept as a verdict for the run's
    process to recall (`check_aspect`)."""
    for aspect in asked(spec):
        check_aspect(spec, aspect, store, root, config)


def _linkage_of(snap: Snapshot, fork: bool) -> ChildResult[list[Finding]]:
    """The snapshot's linkage findings, begun in a forked child or left to compute here."""
    return ChildResult(partial(linkage_findings, abi_with_env(snap)), fork=fork)


#: the aspect a runtime family's probe records are stored and judged as, after its prefix
PROBES = "probes."


def image_families(spec: ImageSpec, store: SnapshotStore, root: Path) -> tuple[str, ...]:
    """The families whose runtime suites apply to an image: its configured ones, else those
    detected from its snapshot together with every family its baselines hold probes of (a
    candidate that lost its runtime must fail that family's suite, not skip it)."""
    if spec.families:
        return spec.families
    info = store.find_image(spec)
    snap = store.snapshot(info)
    has_db = any("count" in db for db in snap.package_dbs)
    found = runtime_families.detect(snap.files, snap.metadata, has_db)
    recorded = tuple(aspect[len(PROBES):] for aspect in
                     baseline.stored_aspects(root, spec.name, info.arch)
                     if aspect.startswith(PROBES))
    return tuple(dict.fromkeys(found + recorded))


def write_sbom(spec: ImageSpec, store: SnapshotStore, folder: Path) -> None:
    """Write the CycloneDX SBOM of an image into `folder` (harness.outcome.sbom)."""
    from harness.outcome import sbom  # only a run that asks for SBOMs pays the import

    sbom.write(folder, spec.name, store.snapshot_of(spec))


@dataclass(frozen=True)
class RunTarget:
    """An image as the runtime suites start it: its id and architecture, and whether (and
    how) the engine can run it."""

    image_id: str
    arch: str
    runnable: emulation.Runnable


def run_target(spec: ImageSpec, store: SnapshotStore) -> RunTarget:
    """What the runtime suites need to start an image: the engine's verdict on running it,
    natively or emulated (then with the image's platform)."""
    info = store.find_image(spec)
    verdict = emulation.can_run(info.arch, emulation.engine_arch(store.engine))
    if verdict.emulated:
        verdict = replace(verdict, platform=emulation.platform_of(info.arch, info.os,
                                                                  info.variant))
    return RunTarget(info.image_id, info.arch, verdict)


def runtime_shell(spec: ImageSpec, store: SnapshotStore) -> str | None:
    """The image's POSIX shell, which the runtime probes run through; None without one."""
    return runtime_families.shell_of(store.snapshot_of(spec).files)


def check_probes(spec: ImageSpec, family: str, records: dict[str, Any], store: SnapshotStore,
                 root: Path, config: HarnessConfig, update: bool = False,
                 waiver_use: WaiverUse | None = None) -> AspectResult:
    """Judge (or store) the probe records a runtime suite collected for one family."""
    aspect = f"{PROBES}{family}"
    result = AspectResult(spec.name, spec.ref, aspect, None, None, None)
    try:
        info = store.find_image(spec)
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
            result.changes = [replace(c, waived=True, reason=ACCEPTED) if c.blocking else c
                              for c in changes]
            result.updated = baseline.write(root, spec.name, info.arch, aspect,
                                            baseline_header(store.snapshot(info)), records)
        else:
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
        if not update:  # a child judging the image ahead keeps its verdict
            store.settle(spec)
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


def _judgements_known(spec: ImageSpec, store: SnapshotStore, root: Path,
                      config: HarnessConfig, aspects: Collection[str]) -> bool:
    """Whether the judgements of the image's `aspects` are all known from an earlier run
    (`check_aspect` then never needs its snapshot)."""
    for aspect in aspects:
        key = _verdict_key(spec, aspect, store, root, config)
        if key is None or store.recall_verdict(key) is None:
            return False
    return True


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
        info = store.find_image(spec)
        # a change's cause comes from the other baselines too (harness.diff.causes)
        paths = [baseline.aspect_path(root, spec.name, info.arch, part)
                 for part in (JUDGED_AGAINST[aspect], *STORED_ASPECTS)]
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
_CAUSES: Memo[tuple[str, str, str, str], causes.CauseIndex] = Memo(2)


def image_causes(root: Path, name: str, snap: Snapshot, config: HarnessConfig) -> causes.CauseIndex:
    """What explains the changes of an image against its baselines (harness.diff.causes)."""
    key = (str(root), name, str(snap.image.get("image_id")), repr(config))
    known = _CAUSES.get(key)
    if known is not None:
        return known
    before: dict[str, Mapping[str, Any]] = {}
    for aspect in STORED_ASPECTS:  # the cause index reads what they hold
        try:
            before[aspect] = load_baseline(root, name, snap, aspect, config)[1]
        except HarnessError:
            before[aspect] = {}
    index = cause_index(before, snap, config)
    _CAUSES.put(key, index)
    return index


#: stored aspects whose records are quicker to make from the snapshot than to parse (a
#: record per exported symbol): their baseline is first compared, as text, with the
#: candidate's own records, which an unchanged image's baseline holds
_EXPECTED_FIRST = frozenset({"abi"})


def load_baseline(root: Path, name: str, snap: Snapshot, aspect: str, config: HarnessConfig
                  ) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """(header, records) of an image's stored aspect, read against the snapshot's files
    (harness.baseline `load`)."""
    if aspect in _EXPECTED_FIRST:
        return baseline.load_expecting(root, name, snap.arch, aspect,
                                       stored_records(snap, aspect, config), like=snap.files)
    return baseline.load(root, name, snap.arch, aspect, like=snap.files)


def _check_aspect(spec: ImageSpec, aspect: str, store: SnapshotStore, root: Path,
                  config: HarnessConfig, update: bool, waiver_use: WaiverUse) -> AspectResult:
    result = AspectResult(spec.name, spec.ref, aspect, None, None, None)
    try:
        info = store.find_image(spec)
        result.arch, result.image_id = info.arch, info.image_id
        stored = JUDGED_AGAINST[aspect]
        result.baseline_path = str(baseline.aspect_path(root, spec.name, info.arch, stored))
        snap = store.snapshot(info)
        result.error = aspect_error(aspect, snap)
        if result.error:
            return result
        if update:
            return _update_aspect(result, snap, store, root, config, waiver_use)
        try:
            stored_baseline = load_baseline(root, spec.name, snap, stored, config)
        except BaselineMissing:
            result.missing_baseline = True
            result.changes = judged_changes(aspect, snap, config, spec.name, None, None,
                                            store.linkage, waiver_use)
            return result
        result.changes = judged_changes(aspect, snap, config, spec.name, stored_baseline,
                                        image_causes(root, spec.name, snap, config),
                                        store.linkage, waiver_use)
    except HarnessError as exc:
        result.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - MemoryError, RecursionError, a reader's bug
        result.changes, result.error = [], judgement_error(exc)
    return result


def _update_aspect(result: AspectResult, snap: Snapshot, store: SnapshotStore, root: Path,
                   config: HarnessConfig, waiver_use: WaiverUse) -> AspectResult:
    """`--update-baselines`: the changes against the stored baseline (none: every
    candidate-only finding), judged, their breaks accepted; the new baseline is written only
    then, once the changes it accepts are known."""
    aspect, name, arch = result.aspect, result.name, str(result.arch)
    before: Mapping[str, Any] | None
    try:
        _, before = baseline.load(root, name, arch, JUDGED_AGAINST[aspect], like=snap.files)
    except HarnessError:
        before = None
    only = candidate_only_changes(aspect, snap, config, store.linkage)
    diffed = (diff_aspect(aspect, before, snap, config, store.linkage)
              if before is not None else only)
    # what the candidate alone shows stays judged as it is: accepting it stores nothing
    keys = {(c.kind, c.subject, c.consumer) for c in only}
    result.changes = [c if (c.kind, c.subject, c.consumer) in keys or c.blocking is False
                      else replace(c, waived=True, reason=ACCEPTED)
                      for c in judge(diffed, config, name, arch, use=waiver_use)]
    if aspect in STORED_ASPECTS:
        result.updated = baseline.write(root, name, arch, aspect, baseline_header(snap),
                                        stored_records(snap, aspect, config))
    return result
