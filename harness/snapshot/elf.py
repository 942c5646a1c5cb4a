"""The ELF ABI of an image: every ELF object's dynamic facts, taken during the one pass.

Each object is parsed with LIEF from the bytes the walk hands over, at once, and only the
extracted facts are kept (never the bytes): memory grows with the number of symbols, not
with the image. An object that LIEF cannot read is recorded with the reason, never raised.

The section also carries what the linkage closure needs and the snapshot alone knows: the
image's symlinks and hard links, and the loader configuration files (`/etc/ld.so.conf`
with its includes, musl's `/etc/ld-musl-ARCH.path`).
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import multiprocessing
import os
import posixpath
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Union

from harness.filetable import FileTable
from harness.paths import follow
from harness.snapshot.elfheader import elf_arch

ELF_MAGIC = b"\x7fELF"
#: loader configuration larger than this is not a configuration file
MAX_CONFIG = 1 << 20
#: separate debug info: ELF files whose dynamic tables are placeholders (NOBITS)
DEBUG_DIR = "/usr/lib/debug/"
#: ELF bytes handed to the parser and not yet parsed, at most (the walk waits beyond). Two
#: batches keep one parser busy; more only grows the heap, which the allocator keeps, and
#: buys no time (bench/README.md)
MAX_INFLIGHT = 16 << 20
#: parser crashes after which the objects left are recorded unparsed: each crash costs a
#: new worker that imports LIEF again
MAX_CRASHES = 8
#: objects go to the parser workers in batches of this many, or of this many bytes
BATCH_OBJECTS, BATCH_BYTES = 32, 8 << 20
#: what a parser worker is handed: an object's bytes, the path of a file on the host holding
#: one, or such a path and the size at which the worker also hashes the file
Parsed = Union[bytes, str, tuple[str, int]]
HASH_BUFFER = 1 << 20


def is_loader_config(path: str) -> bool:
    """glibc's ld.so.conf and its include folder, musl's library path file."""
    name = posixpath.basename(path)
    return (path == "/etc/ld.so.conf" or "/ld.so.conf.d/" in path
            or (path.startswith("/etc/ld-musl-") and name.endswith(".path")))


def image_realpath(path: str, symlinks: Mapping[str, str]) -> str | None:
    """Resolve an absolute image path through the image's symlinks (at every component);
    None for a symlink loop. Existence is not asked: the loader's search probes paths."""
    return follow(path, symlinks.get)


def _missing_search_dirs(path: str, facts: dict[str, Any], symlinks: Mapping[str, str],
                         dirs: set[str]) -> list[str]:
    """RPATH/RUNPATH entries that name no directory of the image (relative ones name the
    working directory of whoever runs the program: never the image)."""
    origin = posixpath.dirname(path)
    missing = []
    for entry in (facts.get("rpath") or []) + (facts.get("runpath") or []):
        expanded = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
        if "$" in expanded:
            continue  # $LIB / $PLATFORM: the loader's choice, checked at linkage time
        real = image_realpath(expanded, symlinks) if expanded.startswith("/") else None
        if real is None or real not in dirs:
            missing.append(entry)
    return missing


def _owners(objects: Mapping[str, Any], packages: Mapping[str, dict[str, Any]],
            symlinks: Mapping[str, str]) -> dict[str, list[str]] | None:
    """Object path -> owning package names, or None when no package record lists files."""
    listed = [(rec.get("name", key), rec["files"]) for key, rec in packages.items()
              if isinstance(rec.get("files"), (list, dict))]
    if not listed:
        return None
    owners: dict[str, set[str]] = {}
    for name, paths in listed:
        for item in paths:
            # a file list holds paths, or records with a `path` (apk's carry mode and digest)
            path = item if isinstance(item, str) else item.get("path") if isinstance(item, dict) else None
            if not isinstance(path, str):
                continue
            if not path.startswith("/"):
                path = "/" + path
            if ".so" not in path and "/bin/" not in path and "/sbin/" not in path:
                continue  # only objects matter here; resolving every path costs time
            real = image_realpath(path, symlinks)
            if real is not None and real in objects:
                owners.setdefault(real, set()).add(str(name))
    return {path: sorted(names) for path, names in owners.items()}


def library_inventory(objects: Mapping[str, dict[str, Any]],
                      owners: Mapping[str, list[str]] | None) -> dict[str, dict[str, Any]]:
    """soname -> the files providing it and (when the package records list files) their
    packages; `packages` stays None when ownership is not known."""
    inventory: dict[str, dict[str, Any]] = {}
    for path in sorted(objects):
        soname = objects[path].get("soname")
        if not soname:
            continue
        entry = inventory.setdefault(soname, {"paths": [], "packages": None})
        entry["paths"].append(path)
        if owners is not None:
            entry["packages"] = sorted(set(entry["packages"] or []) | set(owners.get(path, [])))
    return inventory


class ElfCollector:
    """Takes every ELF object (and the loader's configuration) during the walk.

    Objects are parsed by LIEF in a worker process while the walk goes on (LIEF holds the
    GIL, and importing it costs most of a second): the walk hands bytes over and keeps only
    the facts that come back. Bytes in flight are bounded, so memory stays flat.
    """

    def __init__(self, workers: int | None = None, in_place: bool = False) -> None:
        self._objects: dict[str, dict[str, Any]] = {}
        self._loader_config: dict[str, str] = {}
        self._workers = workers if workers is not None else default_workers(in_place)
        self._pool: ProcessPoolExecutor | None = None
        #: batches handed to the workers: (paths, their bytes or host paths, the pending
        #: result, bytes, the pool it went to)
        self._inflight: deque[tuple[list[str], list[Parsed], Future[bytes],
                                    int, ProcessPoolExecutor]] = deque()
        #: objects the parser crashed on, each in a worker of its own
        self._crashes = 0
        self._inflight_bytes = 0
        #: (image path, the object's bytes, or the path of a file on the host holding it, or
        #: such a path and the size the worker is to hash it at)
        self._batch: list[tuple[str, Parsed]] = []
        self._batch_bytes = 0
        #: sha256 of objects the workers hashed as they read them (`take_path_hashing`)
        self._digests: dict[str, str | None] = {}
        #: files `wants` took notice of (harness.snapshot.walk `ContentCollector`)
        self.noticed = 0

    def wants(self, path: str, head: bytes, size: int) -> bool:
        """ELF objects by content, loader configuration by path. Separate debug info is
        recorded from its header alone: such files are large (the JDK's
        libjvm.so.debug) and nothing else of them is read."""
        if head.startswith(ELF_MAGIC):
            self.noticed += 1
            if path.startswith(DEBUG_DIR):
                self._objects[path] = {"arch": elf_arch(head), "type": "DEBUG"}
                return False
            return True
        if size <= MAX_CONFIG and is_loader_config(path):
            self.noticed += 1
            return True
        return False

    def known(self, path: str, facts: dict[str, Any]) -> None:
        """An object whose facts are known already (harness.snapshot.layercache): not parsed."""
        self._objects[path] = facts

    def take(self, path: str, data: bytes) -> None:
        """Hand the object to the parser; keep only the facts."""
        if not data.startswith(ELF_MAGIC):
            self._loader_config[path] = data.decode("utf-8", errors="replace")
        elif self._workers == 0:
            self._objects[path] = _facts_of(
                data, hashlib.sha256(data).hexdigest() if len(data) >= KEPT_MIN else None,
                _kept_in())
        else:
            self._batch.append((path, data))
            self._batch_bytes += len(data)
            if len(self._batch) >= BATCH_OBJECTS or self._batch_bytes >= BATCH_BYTES:
                self._send_batch()

    def take_path(self, path: str, host_path: str, head: bytes) -> bool:
        """Take an object the walk found as a regular file on the host (a layer folder read
        in place): the parser reads it there, and no copy of it is held here. False for a
        file that is not an object (loader configuration): it is to come through `take`."""
        if not head.startswith(ELF_MAGIC):
            return False
        if self._workers == 0:
            self._objects[path] = _parse_here(host_path)
            return True
        self._batch.append((path, host_path))
        if len(self._batch) >= BATCH_OBJECTS:
            self._send_batch()
        return True

    def take_path_hashing(self, path: str, host_path: str, head: bytes, size: int
                          ) -> Callable[[], str | None] | None:
        """`take_path`, and the worker that reads the object also hashes it, so that the walk
        need not read it at all: the function returned gives the sha256 (None when the worker
        could not give one: the walk then hashes the file itself, and names any damage). None
        when the file is not an object. Without workers it is read here twice, to hash it
        and to parse it (or find its facts by that digest)."""
        if not head.startswith(ELF_MAGIC):
            return None
        if self._workers == 0:
            digest = _host_file_digest(host_path, size)
            if digest is None:
                return None  # `take_path` parses it; the walk hashes it and names the damage
            self._objects[path] = _facts_of(host_path, digest if size >= KEPT_MIN else None,
                                            _kept_in())
            return lambda: digest
        self._batch.append((path, (host_path, size)))
        if len(self._batch) >= BATCH_OBJECTS:
            self._send_batch()
        return lambda: self._digest(path)

    def _digest(self, path: str) -> str | None:
        """The digest a worker gave of an object taken by `take_path_hashing`, once its batch
        is back."""
        while path not in self._digests and path not in self._objects:
            if any(p == path for p, _ in self._batch):
                self._send_batch()
            elif self._inflight:
                self._collect_one()
            else:
                break
        return self._digests.pop(path, None)

    def _send_batch(self) -> None:
        """One task per batch: a task per object costs the pool more than the parsing
        (bench/README.md)."""
        if not self._batch:
            return
        paths = [p for p, _ in self._batch]
        datas = [d for _, d in self._batch]
        pool = self._running_pool()
        try:
            pending = pool.submit(_parse_batch, datas, _kept_in())
        except BrokenProcessPool:  # broken by a crash whose batch is not collected yet
            self._drop_pool(pool)
            pool = self._running_pool()
            pending = pool.submit(_parse_batch, datas, _kept_in())
        # the executor holds a batch's arguments until its result is in anyway: keeping
        # them here too costs nothing, and lets a batch lost in a crash be parsed again
        self._inflight.append((paths, datas, pending, self._batch_bytes, pool))
        self._inflight_bytes += self._batch_bytes
        self._batch, self._batch_bytes = [], 0
        while self._inflight_bytes > MAX_INFLIGHT and self._inflight:
            self._collect_one()

    def _running_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = _take_started_pool() or _start_pool(self._workers)
        return self._pool

    def _drop_pool(self, pool: ProcessPoolExecutor | None) -> None:
        """Let go of a broken pool (a newer one started since stays)."""
        if pool is not None:
            pool.shutdown(wait=False)
        if self._pool is pool:
            self._pool = None

    def _collect_one(self) -> None:
        paths, datas, pending, size, pool = self._inflight.popleft()
        self._inflight_bytes -= size
        try:
            results = marshal.loads(pending.result())
        except BrokenProcessPool:
            # a worker died (LIEF crashed on a hostile object, or was killed): every batch
            # in its pool fails with it, so each object of them is parsed again on its own
            self._drop_pool(pool)
            results = [self._parse_alone(data) for data in datas]
        except Exception as exc:  # recorded, never raised
            results = [[{"error": f"parser failed: {type(exc).__name__}: {exc}"}, None]
                       for _ in paths]
        for path, (facts, digest) in zip(paths, results):
            if digest is not None:
                self._digests[path] = digest
            self._objects[path] = facts

    def _parse_alone(self, data: Parsed) -> list[Any]:
        """One object in a pool of its own making: a crash names exactly that object.
        [facts, sha256 or None], as `_parse_batch` gives each object."""
        if self._crashes >= MAX_CRASHES:
            return [{"error": f"not parsed: the parser crashed {self._crashes} times on this "
                              "image"}, None]
        pool = self._running_pool()
        try:
            result: list[Any] = marshal.loads(
                pool.submit(_parse_batch, [data], _kept_in()).result())[0]
            return result
        except BrokenProcessPool:
            self._crashes += 1
            self._drop_pool(pool)
            return [{"error": "the parser crashed on this object"}, None]

    def _finish(self) -> None:
        self._send_batch()
        while self._inflight:
            self._collect_one()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def result(self, files: Mapping[str, dict[str, Any]], packages: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The snapshot's `abi` section: objects, library inventory, and the loader's view
        of the filesystem (symlinks, hard links, configuration)."""
        self._finish()
        # a file table holds every symlink and hard link unpacked (harness.filetable)
        loose = getattr(files, "loose_items", None)
        odd = list(loose() if loose is not None else files.items())
        symlinks = {p: r["target"] for p, r in odd if r.get("type") == "symlink"}
        hardlinks = {p: r["link"] for p, r in odd if r.get("link") in self._objects}
        dirs: set[str] | None = None
        for path, facts in self._objects.items():
            if facts.get("rpath") or facts.get("runpath"):
                if dirs is None:
                    dirs = set(files.paths_of("dir") if isinstance(files, FileTable) else
                               (p for p, r in files.items() if r.get("type") == "dir")) | {"/"}
                facts["search_missing"] = _missing_search_dirs(path, facts, symlinks, dirs)
        owners = _owners(self._objects, packages, symlinks)
        return {
            "objects": self._objects,
            "libraries": library_inventory(self._objects, owners),
            "symlinks": symlinks,
            "hardlinks": hardlinks,
            "loader_config": self._loader_config,
        }


#: set by `parsing_here`: no parser process is started
_HERE: list[bool] = []


@contextlib.contextmanager
def parsing_here() -> Iterator[None]:
    """Within, objects are parsed in this process and no worker is started: for a process
    running beside others that keep the cores busy (a snapshot taken ahead, harness.gate),
    where starting a pool costs more than it parallelises. A parser crash then ends this
    process: its caller takes the snapshot again, with workers."""
    _HERE.append(True)
    try:
        yield
    finally:
        _HERE.pop()


def default_workers(in_place: bool = False) -> int:
    """Parser processes beside the walk: one per core the walk (and, reading an engine's
    export, the engine) leaves, at most 4, and one even where the export leaves none: with
    LIEF's import cheap (pyproject.toml holds it below 0.16), a worker sharing the second
    core with the engine still pays (bench/README.md). None on one core, and none within
    `parsing_here`."""
    if _HERE:
        return 0
    cores = os.cpu_count() or 1
    spare = cores - (1 if in_place else 2)
    return 0 if cores < 2 else min(4, max(1, spare))


_started: Any = None


@contextlib.contextmanager
def parsers_ahead(in_place: bool) -> Iterator[None]:
    """Within: parser workers started now, ahead of the walk that will need them, when the
    files are to be read in place; they import LIEF (most of a second) while the source opens
    the filesystem (a container created) and the first files are read. Workers no walk took
    (the source fell back to an export) are stopped on leaving."""
    global _started
    workers = default_workers(in_place) if in_place else 0
    if workers and _started is None:
        _started = _start_pool(workers)
    try:
        yield
    finally:
        pool = _take_started_pool()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


#: objects at least this large are kept by digest: the libraries worth not parsing twice;
#: a file per small object would grow the cache with an image's count of tiny objects
KEPT_MIN = 64 << 10
#: the folders of facts by content digest of the snapshots being taken (`facts_by_digest`)
_KEPT_IN: list[str] = []


def _kept_in() -> str | None:
    return _KEPT_IN[-1] if _KEPT_IN else None


@contextlib.contextmanager
def facts_by_digest(folder: Path) -> Iterator[None]:
    """Objects parsed within are kept in `folder` by the sha256 of their bytes, and an object
    met again (the same library in another layer or image) is not parsed again."""
    _KEPT_IN.append(str(folder))
    try:
        yield
    finally:
        _KEPT_IN.pop()


def _take_started_pool() -> Any:
    global _started
    pool, _started = _started, None
    return pool


def _start_pool(workers: int) -> ProcessPoolExecutor:
    """Workers that import LIEF now. fork: a worker starts in milliseconds and imports LIEF
    itself while the walk goes on. An executor, not a `multiprocessing.Pool`: when a worker
    dies, the executor fails what it had in hand, where a Pool would wait for it forever."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=_worker_init)
    pool.submit(int)  # an executor starts its workers on the first task
    return pool


def _worker_init() -> None:
    from harness.snapshot import elfparse

    elfparse.quiet()


def _parse_batch(datas: list[Parsed], kept_in: str | None = None) -> bytes:
    """[facts, sha256 or None] of each object of a batch (the digest of those handed over
    with a size to hash them at), as marshal data: the walk's process loads what the workers
    send while it walks, and marshal loads and writes plain data faster than pickle does.
    `kept_in`: the folder of facts by content digest (`facts_by_digest`)."""
    results = []
    for data in datas:
        if isinstance(data, tuple):
            path, size = data
            digest = _host_file_digest(path, size)
            results.append([_facts_of(path, digest, kept_in if size >= KEPT_MIN else None),
                            digest])
        elif isinstance(data, bytes) and kept_in is not None and len(data) >= KEPT_MIN:
            results.append([_facts_of(data, hashlib.sha256(data).hexdigest(), kept_in), None])
        else:
            results.append([_parse_here(data), None])
    return marshal.dumps(results)


def _facts_of(data: bytes | str, digest: str | None, kept_in: str | None) -> dict[str, Any]:
    """The facts of an object whose sha256 is `digest`: kept ones when an earlier snapshot
    parsed the same bytes (another layer or image), else parsed now and kept."""
    if kept_in is None or digest is None:
        return _parse_here(data)
    kept = kept_facts(kept_in, digest)
    if kept is not None:
        return kept
    where = kept_facts_path(kept_in, digest)
    facts = _parse_here(data)
    if "error" not in facts:  # a crash or a bound is the run's, not the object's
        try:
            os.makedirs(os.path.dirname(where), exist_ok=True)
            tmp = f"{where}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(marshal.dumps(facts))
            os.replace(tmp, where)
        except OSError:
            pass  # keeping them only saves a later parse
    return facts


def kept_facts_path(kept_in: str, digest: str) -> str:
    """Where the facts of the object of this sha256 are kept in a folder of facts by
    content digest (`facts_by_digest`)."""
    return os.path.join(kept_in, digest[:2], digest)


def kept_facts(kept_in: str, digest: str) -> dict[str, Any] | None:
    """The facts kept of the object of this sha256; None when absent or damaged."""
    try:
        with open(kept_facts_path(kept_in, digest), "rb") as f:
            facts = marshal.loads(f.read())
    except Exception:  # noqa: BLE001 - absent or damaged (any way marshal fails)
        return None
    return facts if isinstance(facts, dict) and "error" not in facts else None


def _parse_here(data: bytes | str) -> dict[str, Any]:
    from harness.snapshot import elfparse

    elfparse.quiet()
    if isinstance(data, str):
        return elfparse.read_object_at(data)
    return elfparse.read_object(data)


def _host_file_digest(path: str, size: int) -> str | None:
    """sha256 of a file on the host that should hold `size` bytes; None when it cannot be
    read or holds another size (the walk hashes it again itself and says what is wrong)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        digest, view, total = hashlib.sha256(), memoryview(bytearray(HASH_BUFFER)), 0
        while total <= size:
            got = os.readv(fd, [view])
            if not got:
                break
            digest.update(view[:got])
            total += got
        return digest.hexdigest() if total == size else None
    except OSError:
        return None
    finally:
        os.close(fd)
