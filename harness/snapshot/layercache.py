"""Facts per image layer: what the walk learnt of a file of a layer folder read in place (its
sha256, and the ELF parser's facts when it is an object), kept in `--compat-cache` and reused
by every image that shares the layer.

An engine's overlay2 layer folder (`.../overlay2/ID/diff`) belongs to one layer diff and is
never written once the layer is made; images built on one base read the same folders. So a
file's facts are keyed by its host path below its layer folder and checked against its
identity (inode, size, mtime and ctime in ns): a family of images pays the parsing and hashing
of its unique layers once, and a rebuilt image over an unchanged base only those of its new
layers. The merged view (whiteouts, opaque folders, the winning copy of a path) is still the
reader's, walked per image (within one run, a member replays the folders it shares with a
base walked before: harness.snapshot.subtrees, which offers their files through `offer`):
only per-file work is reused, so the snapshot, hence every baseline, is the one a walk
without the cache takes (tests/test_layercache.py).

A known file is never opened: its identity is the reader's own lstat of it (taken as its
folder was listed), and the collectors decide whether they want it (`ContentCollector.wants`)
from its head as kept in its entry, the same `WANTS_HEAD` bytes a read shows them. It is
served from the cache only when no collector but the ELF parser wants its bytes (package
databases, accounts, secrets and language metadata are read every time, and they are few);
small files are kept up to a bound (`MAX_SMALL`); facts holding an error are never kept.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from harness import safepath
from harness.snapshot.elf import ElfCollector, facts_by_digest, kept_facts, kept_facts_path
from harness.snapshot.walk import WANTS_HEAD, knowing

#: what marks an overlay2 layer's folder in a host path
_LAYER_MARK = "/diff/"
#: files smaller than this are "small": an image may hold any count of them (a node_modules
#: tree), so a cache holds at most `MAX_SMALL` entries of small files, loaded and learnt
#: together, past which small files are read every time (reading one costs little more
#: than serving it, so the bound costs little; unbounded, the cache's memory and files
#: would grow with a hostile image's count of tiny files)
SMALL = 1024
#: small-file entries one cache holds at most (an entry takes under 1 KiB of memory)
MAX_SMALL = 1 << 13
#: entries of larger files one snapshot learns at most: a file read is noted with its head
#: until it is learnt, so an image of a million files would otherwise hold a note of each
#: (about 600 B with its head) beside its records; past the bound files are read as if no
#: cache were there
MAX_LEARNT = 1 << 14

#: a sha256 as the walk spells it
_SHA256 = re.compile(r"[0-9a-f]{64}")

#: (inode, size, mtime_ns, ctime_ns, sha256, the file's first min(size, WANTS_HEAD) bytes,
#: marshalled ELF facts or None)
Entry = tuple[int, int, int, int, str, bytes, "bytes | None"]


@dataclass(slots=True)
class _Miss:
    """A file read this snapshot that the cache did not know."""

    path: str                                 # in the image
    layer: str                                # the shard's layer folder
    name: str                                 # below it
    ident: tuple[int, int, int, int]
    head: bytes | None = None                 # as the walk read it (`LayerCache.read`)

_current: list[LayerCache] = []


class LayerCache:
    """The cache of one run's snapshots, in `folder` (one file per layer folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._shards: dict[str, dict[str, Entry]] = {}
        self._dirty: set[str] = set()
        #: files read this snapshot that the cache did not know
        self._misses: list[_Miss] = []
        self._layers: dict[str, str] = {}
        #: small-file entries this cache may still hold (`MAX_SMALL`)
        self._small_left = MAX_SMALL
        #: misses noted this snapshot, of small files and of others (`_note`)
        self._noted_small = self._noted = 0

    def _shard(self, layer: str) -> dict[str, Entry]:
        shard = self._shards.get(layer)
        if shard is None:
            shard = dict(_loaded_shard(self._path(layer)))
            small = [name for name, entry in shard.items() if _small(entry)]
            if len(small) > self._small_left:  # past the bound: read every time
                for name in small:
                    del shard[name]
            else:
                self._small_left -= len(small)
            self._shards[layer] = shard
        return shard

    def _path(self, layer: str) -> Path:
        import hashlib

        name = hashlib.sha256(layer.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return safepath.inside(self.folder, f"{name}.layer")

    def serve(self, reader: Any, path: str, size: int, collectors: list[Any],
              capped: Callable[[list[Any], str, int], list[Any]]
              ) -> tuple[str | None, list[Any] | None]:
        """For the walk's current regular file (`reader` a layer-folder reader): (its sha256,
        None) when the cache knows it and no collector but the ELF parser wants its bytes (the
        parser is given the known facts, and the file is not opened); (None, the collectors
        that want it) when they were asked; (None, None) when the cache cannot tell (not
        asked). A file the cache did not know is learnt once the walk tells its head (`read`)."""
        host = reader.host_path()
        located = self.locate(host) if host else None
        st = reader.host_stat() if located is not None else None
        if located is None or st is None:
            return None, None
        layer, name = located
        ident = safepath.identity(st)
        entry = self._shard(layer).get(name)  # well formed (`_shard`, `learn`)
        if entry is None or entry[:4] != ident or st.st_size != size:
            self._note(_Miss(path, layer, name, ident))
            return None, None
        known, takers = self.offer(path, entry, size, collectors, capped)
        if known is None:
            self._note(_Miss(path, layer, name, ident))
        else:
            reader.detach()  # consumed unread
        return known, takers

    def locate(self, host: str) -> tuple[str, str] | None:
        """(layer folder, name below it) of a file's host path; None when it lies in none."""
        cut = host.find(_LAYER_MARK)
        if cut < 0:
            return None
        layer = host[:cut + len(_LAYER_MARK)]
        # one string per layer, not per file noted
        return self._layers.setdefault(layer, layer), host[cut + len(_LAYER_MARK):]

    def entry(self, layer: str, name: str, ident: tuple[int, int, int, int]) -> Entry | None:
        """The entry of the file `name` of a layer folder (`locate`) when it has this
        identity (inode, size, mtime and ctime in ns), else None."""
        entry = self._shard(layer).get(name)
        return entry if entry is not None and entry[:4] == ident else None

    def offer(self, path: str, entry: Entry, size: int, collectors: list[Any],
              capped: Callable[[list[Any], str, int], list[Any]]
              ) -> tuple[str | None, list[Any] | None]:
        """A known file (`entry`, of this identity) offered to the collectors as `serve` does:
        (its sha256, None) when none but the ELF parser wants its bytes (given the facts);
        else (None, the collectors that want them)."""
        takers = capped([c for c in collectors if c.wants(path, entry[5], size)], path, size)
        elf = [c for c in takers if isinstance(c, ElfCollector)]
        if len(elf) != len(takers) or (elf and entry[6] is None):
            return None, takers
        if elf:
            facts = _facts(entry[6] or b"", (self.folder, entry[4]))
            if facts is None:  # damaged: parsed again
                return None, takers
            elf[0].known(path, facts)
        return entry[4], None

    def _note(self, miss: _Miss) -> None:
        """Note a file to learn once read, within the bounds: the small files this cache
        may still hold (`MAX_SMALL`), the others `MAX_LEARNT` a snapshot."""
        if miss.ident[1] < SMALL:
            if self._noted_small >= self._small_left:
                return
            self._noted_small += 1
        elif self._noted >= MAX_LEARNT:
            return
        else:
            self._noted += 1
        self._misses.append(miss)

    def read(self, path: str, head: bytes) -> None:
        """The walk read the file `serve` last missed (`path`): its head, as shown to the
        collectors, to keep with its facts."""
        miss = self._misses[-1] if self._misses else None
        if miss is not None and miss.path == path and miss.head is None:
            miss.head = head[:WANTS_HEAD]

    def learn(self, files: Mapping[str, dict[str, Any]], objects: dict[str, dict[str, Any]]) -> None:
        """Keep what this snapshot read of the files the cache did not know (a shard is
        written again only when an entry in it changed)."""
        for miss in self._misses:
            digest = files.get(miss.path, {}).get("sha256")
            if (not isinstance(digest, str) or miss.head is None
                    or len(miss.head) != min(miss.ident[1], WANTS_HEAD)):
                continue  # not read, or a head cut short: an entry `serve` would refuse
            facts = objects.get(miss.path)
            if facts is not None and "error" in facts:
                continue  # a crash count or a bound is the run's, not the file's
            if facts is not None and facts.get("type") == "DEBUG":
                facts = None  # recorded from its header by `wants`, never parsed
            if facts is not None:
                facts = {k: v for k, v in facts.items() if k != "search_missing"}
            entry = (*miss.ident, digest, miss.head,
                     None if facts is None else marshal.dumps(facts))
            if not _well_formed(entry):
                continue  # a digest not as the walk spells it: never served
            if facts is not None:
                # as `_facts` would decode them: the children this process forks to take a
                # family's next members (harness.gate) find its base's objects decoded
                _decode_once((self.folder, digest), facts)
            shard = self._shard(miss.layer)
            if _small(entry) and miss.name not in shard:
                if self._small_left <= 0:
                    continue
                self._small_left -= 1
            if shard.get(miss.name) != entry:
                shard[miss.name] = entry
                self._dirty.add(miss.layer)
        self._misses.clear()
        self._noted_small = self._noted = 0

    def save(self) -> None:
        """Write the shards that grew, each atomically (a concurrent writer's shard is as good
        as this one: the last one written stays)."""
        if not self._dirty:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for layer in sorted(self._dirty):
            target = self._path(layer)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(marshal.dumps(self._shards[layer]))
            os.replace(tmp, target)
            ident = _identity(target)
            if ident is not None:
                # what the file holds (or a concurrent writer's, as good: every entry is
                # checked against its file's identity when served)
                _remember(target, ident, dict(self._shards[layer]))
        self._dirty.clear()


#: shard file -> (its identity when read, its well-formed entries): a process's later
#: snapshots, and the children it forks to take the next ones (harness.gate), find the
#: shards it read or wrote loaded, while the files are as they were. At most
#: `MAX_LOADED` entries in all (a base image's worth: an entry holds a file's head, up to
#: 256 bytes, and the memo outlives the snapshot), past which it starts again
_loaded: dict[Path, tuple[tuple[int, int, int, int], dict[str, Entry]]] = {}
MAX_LOADED = 1 << 14


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        return safepath.identity(path.stat())
    except OSError:
        return None


def _loaded_shard(path: Path) -> dict[str, Entry]:
    """The well-formed entries of a shard file (shared: never to be changed), read once
    while the file stays the same; empty when absent or damaged (learnt again)."""
    ident = _identity(path)
    known = _loaded.get(path)
    if known is not None and ident is not None and known[0] == ident:
        return known[1]
    shard: dict[str, Entry] = {}
    try:
        loaded = marshal.loads(path.read_bytes())
        if isinstance(loaded, dict):
            # checked once here, not at every serve: a damaged or foreign entry is a
            # miss, never trusted
            shard = {name: entry for name, entry in loaded.items()
                     if type(name) is str and _well_formed(entry)}
    except Exception:  # noqa: BLE001 - absent or damaged (any way marshal fails): learnt again
        return shard
    if ident is not None:  # replaced since stat-ed: the next read tells
        _remember(path, ident, shard)
    return shard


def _remember(path: Path, ident: tuple[int, int, int, int], shard: dict[str, Entry]) -> None:
    _loaded.pop(path, None)
    if len(shard) > MAX_LOADED:
        return  # read again when asked
    if sum(len(entries) for _, entries in _loaded.values()) + len(shard) > MAX_LOADED:
        _loaded.clear()
    _loaded[path] = (ident, shard)


def _well_formed(entry: Any) -> TypeGuard[Entry]:
    """Whether a cache entry has the shape of `Entry` (a damaged or foreign cache file is a
    miss, never trusted)."""
    # spelt out, not all(...) over a generator: it runs for every file served
    return (type(entry) is tuple and len(entry) == 7
            and type(entry[0]) is int and type(entry[1]) is int
            and type(entry[2]) is int and type(entry[3]) is int
            and type(entry[4]) is str and _SHA256.fullmatch(entry[4]) is not None
            and type(entry[5]) is bytes and len(entry[5]) == min(entry[1], WANTS_HEAD)
            and (entry[6] is None or type(entry[6]) is bytes))


def _small(entry: Any) -> bool:
    """Whether an entry (of any shape) is one of a small file, held within `MAX_SMALL`."""
    return type(entry) is tuple and len(entry) > 1 and type(entry[1]) is int and entry[1] < SMALL


#: ELF facts this process decoded, by cache folder and content digest: the members of a
#: family serve their base's objects, decoded once (at most `MAX_DECODED` of them, past
#: which it starts again; the gate holds its snapshots, hence these facts, all run anyway)
_decoded: dict[tuple[Path, str], dict[str, Any]] = {}
MAX_DECODED = 1 << 14


def _facts(data: bytes, key: tuple[Path, str]) -> dict[str, Any] | None:
    """An entry's ELF facts, or None when they do not load as a dict (empty data included).

    Each caller gets a dict of its own (the ELF collector adds an image's `search_missing`
    to it); the values within are shared with the other snapshots of this process that
    served the same content, as a snapshot's facts are never changed past that."""
    facts = _decoded.get(key)
    if facts is None:
        try:
            facts = marshal.loads(data)
        except Exception:  # noqa: BLE001 - any way marshal fails is a damaged entry
            return None
        if not isinstance(facts, dict):
            return None
        _decode_once(key, facts)
    return dict(facts)


def _kept_in(folder: Path) -> str:
    """The folder of facts by content digest of a cache folder (`using`)."""
    return str(folder / "objects")


def holds_facts(folder: Path, digest: str) -> bool:
    """Whether the cache in `folder` keeps the facts of the object of this sha256 by
    digest (an object of at least harness.snapshot.elf `KEPT_MIN` bytes that parsed)."""
    return _SHA256.fullmatch(digest) is not None and os.path.isfile(
        kept_facts_path(_kept_in(folder), digest))


def facts_by(folder: Path, digest: str) -> dict[str, Any] | None:
    """The facts the cache in `folder` keeps of the object of this sha256 (a dict of the
    caller's own, its values shared and never to be changed), decoded once a process;
    None when it keeps none, or damaged ones."""
    if _SHA256.fullmatch(digest) is None:
        return None  # a name in the folder: never a path of another
    key = (folder, digest)
    facts = _decoded.get(key)
    if facts is None:
        facts = kept_facts(_kept_in(folder), digest)
        if facts is None:
            return None
        _decode_once(key, facts)
    return dict(facts)


def _decode_once(key: tuple[Path, str], facts: dict[str, Any]) -> None:
    if len(_decoded) >= MAX_DECODED:
        _decoded.clear()
    _decoded[key] = facts


def current() -> LayerCache | None:
    """The cache of the snapshot being taken, if the caller gave one."""
    return _current[-1] if _current else None


@contextlib.contextmanager
def using(folder: Path) -> Iterator[LayerCache]:
    """Snapshots taken within use the layer cache in `folder`, and keep the ELF facts of the
    objects they parse by content digest in its `objects/` (an object met again in a layer
    the cache does not know yet, the same library in another image's layer, is not parsed
    again)."""
    cache = LayerCache(folder)
    _current.append(cache)
    try:
        with facts_by_digest(Path(_kept_in(folder))), knowing(cache):
            yield cache
    finally:
        _current.pop()
