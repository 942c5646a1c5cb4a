"""Subtrees of layer folders that an earlier walk of this process read: replayed, not listed
again.

The members of a release family are built on one base. Below most of the base's folders
(`/usr/share/doc/PKG`, `/usr/share/zoneinfo`, ...) a member's merged view holds what the base's
did: no layer of the member's own holds a copy of the folder, so the same copies decide
everything below it (`LayerDirsReader.folder_key`). A walk notes what it met below each such
folder (`Recorder`). A later walk of this process, or of a child forked from it (the run's
snapshots taken ahead, harness.gate), that meets a folder of the same key replays those
members instead of listing, stat-ing and serving them again (`replay`):
- each member's record is the one the first walk made;
- each regular file that any collector took notice of in the first walk
  (`ContentCollector.noticed`) is offered to the collectors as `LayerCache.serve` offers
  it: their `wants` see its kept head, the ELF parser gets the known facts, and any other
  taker gets the bytes read from the file's host path. The others (most of them) are shown
  to none: the same path, head and size would move none again;
- the members come in the first walk's order, which is the reader's order for those copies.
The snapshot is therefore the one a walk of the folders takes (tests/test_subtrees.py).

Trust is as the layer cache's, no less. Before anything is replayed, every member's host
path is stat-ed again:
- each folder copy's identity (inode, size, mtime, ctime) must be as it was before it was
  listed: a name added, removed or renamed in it, or a changed attribute, moves it;
- each non-folder's identity must be as it was (the identity the layer cache trusts to
  tell a file's digest);
- each regular file offered again must be the layer cache's entry, with the digest the
  first walk gave.
A subtree that fails any of these is walked as any other.

A member of a folder that is not replayed (one a member's own layer also holds a copy of:
`/usr/bin`, dpkg's `info/`) is still listed, but when it is a regular file no collector took
notice of, or a symlink, and an earlier walk met it at the same host path with the same
identity, its row is that walk's (`Recorder.reuse`): its record is its host path's alone.

Not replayed either:
- a subtree that held a hard link, or a file a later layer deleted (the reader's
  `irregular` count): both depend on more than the folder's copies;
- the folders whose entries the init layer changes;
- a walk past `MAX_NOTED` members, which notes no more.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.errors import SourceError
from harness.filetable import FileTable, Names, Row, unpack
from harness.limits import tick
from harness.rootfs.readers import STAMP, stamp

#: members one walk notes at most (a note holds the member's path and its host paths'
#: identities); past it the walk notes no more, and replays nothing it had not noted
MAX_NOTED = 1 << 15
#: walks whose notes a process keeps: the last ones (a family's base, and a member built
#: on it that a later member shares more with)
KEPT_WALKS = 2

#: a member's layer folders and identities, flat: (layer, stamp, layer, stamp...), a stamp
#: packed as harness.rootfs.readers `STAMP` (`LayerDirsReader.stamps`)
Stamped = tuple[bytes, ...]
#: takes a file's bytes to the collectors that want them, as the walk does, and gives its
#: sha256 (harness.snapshot.walk `_hash_and_collect`)
Collect = Callable[[Any, str, int, list[Any], list[Any]], tuple[str, bytes]]
#: the package names of a walk's rows: none (owners are given after the walk)
_NO_NAMES = Names()


class FolderReader(Protocol):
    """What a reader of layer folders tells of its current member (harness.source.layerdirs)."""

    irregular: int

    def folder_key(self) -> Hashable | None: ...

    def stamps(self) -> Stamped | None: ...

    def skip_folder(self) -> None: ...


class CacheEntries(Protocol):
    """The layer cache (harness.snapshot.layercache), as a replay asks it."""

    def locate(self, host: str) -> tuple[str, str] | None: ...

    def entry(self, layer: str, name: str, ident: tuple[int, int, int, int]) -> Any: ...

    def offer(self, path: str, entry: Any, size: int, collectors: list[Any],
              capped: Callable[[list[Any], str, int], list[Any]]
              ) -> tuple[str | None, list[Any] | None]: ...


@dataclass(slots=True)
class _Walked:
    """The members one walk noted, in its order: path, layer folders with identities,
    whether its row is its host path's alone (`QUIET`, `SYMLINK`; else 0), and (once the
    walk ended) the record's row as the walk made it. About 150 bytes a member."""

    #: the kinds of collectors the walk offered its files to: whether a file moved none
    #: holds for those only
    kinds: tuple[type, ...] = ()
    paths: list[str] = field(default_factory=list)
    stamped: list[Stamped] = field(default_factory=list)
    alone: bytearray = field(default_factory=bytearray)
    rows: list[Row] = field(default_factory=list)


#: a member's row is its host path's alone: a regular file no collector took notice of
#: (shown to none when replayed), a symlink
QUIET, SYMLINK = 1, 2


#: whether this process's walks note what they meet (`last_walk`)
_noting = [True]


def last_walk() -> None:
    """This process takes no snapshot after its current one (a child taking one ahead,
    harness.gate): its walk replays what earlier walks of the run noted, but notes nothing."""
    _noting[0] = False


@contextlib.contextmanager
def noting(later: bool) -> Iterator[None]:
    """Within, walks note what they meet only when `later` walks may replay it (not in a
    run of one image: its notes would only cost time and memory)."""
    saved = _noting[0]
    _noting[0] = saved and later
    try:
        yield
    finally:
        _noting[0] = saved


#: folder key -> (the walk that noted it, the folder's own stamps, its members' range)
_segments: dict[Hashable, tuple[_Walked, Stamped, int, int]] = {}
#: the kept walks, oldest first, with their folder keys
_kept: list[tuple[_Walked, list[Hashable]]] = []
#: path -> (the walk that noted it, its index) of the kept walks' members whose rows are
#: their host paths' alone (`Recorder.reuse`)
_alone: dict[str, tuple[_Walked, int]] = {}


class Recorder:
    """Notes one walk's members and the folders whose subtrees a later walk may replay."""

    def __init__(self, reader: FolderReader, kinds: tuple[type, ...]) -> None:
        """`kinds`: the kinds of the collectors the walk offers its files to. Only walks
        that offered theirs to the same kinds are replayed."""
        self._reader = reader
        self._kinds = kinds
        self._walked = _Walked(kinds)
        #: folders the walk is below: (their path and "/", key, own stamps, first member,
        #: the reader's irregular count then)
        self._open: list[tuple[str, Hashable, Stamped, int, int]] = []
        self._done: list[tuple[Hashable, Stamped, int, int]] = []
        self._full = not _noting[0]
        #: the reader's irregular count as the last member was passed
        self._irregular = reader.irregular

    def leave(self, path: str) -> None:
        """Before the member at `path`: close the folders the walk has left."""
        while self._open and not path.startswith(self._open[-1][0]):
            _, key, own, start, irregular = self._open.pop()
            if self._reader.irregular == irregular:
                self._done.append((key, own, start, len(self._walked.paths)))

    def note(self, path: str, folder: bool, alone: int = 0) -> Stamped | None:
        """Note the member the reader is at, its record made under `path`: its stamps (a
        `folder`'s also when the walk notes no more: its subtree may still be replayed).
        `alone`: `QUIET` or `SYMLINK` when its row is its host path's alone."""
        self._irregular = self._reader.irregular
        if self._full:
            # a folder may still be replayed, when an earlier walk noted any
            return self._reader.stamps() if folder and _segments else None
        stamped = self._reader.stamps()
        if stamped is None:
            # an init-layer folder: its parent (the root, /dev) is never replayed; were it
            # below a folder, that folder could not be
            if self._open:
                self._stop()
            return None
        return stamped if self._add(path, stamped, alone) or folder else None

    def reuse(self, path: str, files: FileTable) -> bool:
        """For the member the reader is at, a regular file or a symlink not yet recorded:
        when an earlier walk met it at `path`, from the same host path with the same
        identity, and its row is that path's alone (`QUIET`, `SYMLINK`), put that row into
        `files` (noted by this walk too). False, and nothing done, otherwise, and for a
        member that moved the reader's irregular count (a hard link group's)."""
        irregular, self._irregular = self._irregular, self._reader.irregular
        found = _alone.get(path)
        if found is None or irregular != self._irregular:
            return False
        walked, i = found
        if walked.kinds != self._kinds:
            return False
        stamped = self._reader.stamps()
        if stamped is None or stamped != walked.stamped[i]:
            return False
        files.put_row(path, walked.rows[i])
        self._add(path, stamped, walked.alone[i])
        return True

    @property
    def noting(self) -> bool:
        """Whether the walk still notes its members (`note` then wants `alone` told)."""
        return not self._full

    @property
    def idle(self) -> bool:
        """Whether the walk notes no more and no earlier walk noted anything to replay:
        it need not be asked of the members left (but `finish` still keeps what it noted)."""
        return self._full and not _segments and not _alone

    def _add(self, path: str, stamped: Stamped, alone: int) -> bool:
        if self._full:
            return False
        if len(self._walked.paths) >= MAX_NOTED:
            self._stop()
            return False
        self._walked.paths.append(path)
        self._walked.stamped.append(stamped)
        self._walked.alone.append(alone)
        return True

    def enter(self, path: str, key: Hashable, own: Stamped) -> None:
        """The member at `path` is a folder of this key and stamps: what follows below it
        is its subtree."""
        if not self._full:
            self._open.append((path + "/", key, own, len(self._walked.paths),
                               self._reader.irregular))

    def _stop(self) -> None:
        # a folder still open would lack the members not noted: none of them is kept
        self._full = True
        self._open.clear()

    def finish(self, files: FileTable) -> None:
        """The walk ended (every record complete, none yet given its owning package): keep
        each closed folder's members for later walks of this process."""
        self.leave("")
        if not self._done:
            return
        walked = self._walked
        walked.rows = [_row(files, path) for path in walked.paths]
        keys = [key for key, *_ in self._done]
        for key, own, start, end in self._done:
            _segments[key] = (walked, own, start, end)
        for i, alone in enumerate(walked.alone):
            if alone:
                _alone[walked.paths[i]] = (walked, i)
        _kept.append((walked, keys))
        while len(_kept) > KEPT_WALKS:
            old, old_keys = _kept.pop(0)
            for key in old_keys:
                if key in _segments and _segments[key][0] is old:
                    del _segments[key]
            for path in old.paths:
                if path in _alone and _alone[path][0] is old:
                    del _alone[path]

    def replay(self, key: Hashable, own: Stamped, files: FileTable,
               collectors: list[Any], cache: CacheEntries,
               capped: Callable[[list[Any], str, int], list[Any]], collect: Collect) -> bool:
        """Replay the members below the folder the walk is at (of `key`, its copies'
        stamps `own`) as an earlier walk met them: their records into `files`, each regular
        file some collector took notice of offered to the collectors again
        (`LayerCache.offer`, and `collect` for those that want its bytes), each noted by
        this walk too. False, and nothing done, when no walk
        kept the folder, or anything below it is not as that walk met it."""
        found = _segments.get(key)
        if found is None or found[1] != own or found[0].kinds != self._kinds:
            return False
        walked, _, start, end = found
        known = _checked(walked, start, end, cache)
        if known is None:
            return False
        for i in range(start, end):
            path, stamped = walked.paths[i], walked.stamped[i]
            tick(path)  # the image's time budget, as for a member read
            file = known.get(i)
            if file is not None:
                _offer(path, *file, collectors, cache, capped, collect)
            files.put_row(path, walked.rows[i])
            self._add(path, stamped, walked.alone[i])
        return True


def _file_digest(row: Row) -> str | None:
    """The sha256 of a walk's row of a regular file (not a hard link); None for another."""
    if type(row) is bytes:
        if len(row) == 44:
            return row[12:44].hex()  # the small form (harness.filetable)
        if len(row) == 50:
            return row[18:50].hex()
        return None  # a folder (a walk's rows hold no owning package yet)
    record = unpack(row, _NO_NAMES)
    digest = record.get("sha256")
    if record.get("type") != "file" or "link" in record or type(digest) is not str:
        return None
    return digest


def _row(files: FileTable, path: str) -> Row:
    row = files.row(path)
    assert row is not None  # noted as its record was put
    return row


def _checked(walked: _Walked, start: int, end: int, cache: CacheEntries
             ) -> dict[int, tuple[Any, bytes, int, str]] | None:
    """Each regular file's (layer cache entry, host path, size, sha256) by index, that file
    not quiet, when every member in the range is as the walk met it (its host paths'
    identities unchanged, each regular file to offer held by the cache with the walk's
    digest); else None."""
    found: dict[int, tuple[Any, bytes, int, str]] = {}
    lstat = os.lstat
    for i in range(start, end):
        rel = walked.paths[i].encode("utf-8", "surrogateescape")  # "/" and the name
        stamped = walked.stamped[i]
        for at in range(0, len(stamped), 2):
            try:
                st = lstat(stamped[at] + rel)
            except OSError:
                return None
            if stamp(st) != stamped[at + 1]:
                return None
        if walked.alone[i]:
            continue  # shown to no collector: its row says all, the identity vouching
        digest = _file_digest(walked.rows[i])
        if digest is None:
            continue
        host = stamped[0] + rel
        try:
            located = cache.locate(host.decode("utf-8"))
        except UnicodeDecodeError:
            return None  # no entry of the cache holds such a file
        ident = STAMP.unpack(stamped[1])
        entry = cache.entry(*located, ident) if located is not None else None
        if entry is None or entry[4] != digest:
            return None
        found[i] = (entry, host, ident[1], digest)
    return found


def _offer(path: str, entry: Any, host: bytes, size: int, digest: str, collectors: list[Any],
           cache: CacheEntries, capped: Callable[[list[Any], str, int], list[Any]],
           collect: Collect) -> None:
    """A regular file to the collectors, as the walk offers one the cache knows: its bytes
    read from `host` for those that want them, checked against the digest kept."""
    known, takers = cache.offer(path, entry, size, collectors, capped)
    if known is not None or not takers:
        return
    data = _read(host, size, path)
    got, _ = collect(iter([memoryview(data)]) if data else iter(()), path, size, collectors,
                     takers)
    if got != digest:
        raise SourceError(f"{path} changed between two reads of its layer folder "
                          f"({os.fsdecode(host)})")


def _read(host: bytes, size: int, path: str) -> bytes:
    """The file's bytes, which must be `size` (not a symlink or a fifo swapped in)."""
    try:
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
                     | os.O_NONBLOCK)
    except OSError as exc:
        raise SourceError(f"{path} vanished from its layer folder ({os.fsdecode(host)}): "
                          f"{exc.strerror or exc}") from None
    try:
        parts, left = [], size + 1  # one byte more: a file that grew is told
        while left > 0:
            part = os.read(fd, min(left, 1 << 20))
            if not part:
                break
            parts.append(part)
            left -= len(part)
    except OSError as exc:
        raise SourceError(f"{path} cannot be read in its layer folder ({os.fsdecode(host)}): "
                          f"{exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(parts)
    if len(data) != size:
        raise SourceError(f"{path} changed size in its layer folder ({os.fsdecode(host)}): "
                          f"{len(data)} bytes, not {size}")
    return data
