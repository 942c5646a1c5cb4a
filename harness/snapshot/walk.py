"""ONE streaming pass over an image's filesystem tar stream.

The stream is read member by member and never unpacked to disk: every regular file is hashed
in chunks (a file on the host that a collector reads anyway, an ELF object, may be hashed by
that collector instead), and only files a content collector asks for (package databases, ELF
objects, /etc/shadow) are held in memory, one at a time. Memory therefore grows with the
largest such file, not with the image.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import stat
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, cast

from harness.errors import SourceError
from harness.filetable import FileTable
from harness.limits import tick
from harness.rootfs.readers import DetachableReader, MemberReader, Reopen, Rootfs
from harness.rootfs.tarstream import Member, TarFormatError, TarReader
from harness.snapshot import subtrees


#: Entries the engine's init layer adds to every container; they are not part of the image.
ENGINE_INIT_PATHS = frozenset({
    "/.dockerenv", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab",
    "/dev/console", "/dev/pts", "/dev/shm",
})

#: the members whose rows an earlier walk's may be (`subtrees.Recorder.reuse`): regular
#: files, symlinks
_ALONE_TYPES = frozenset({b"0", b"\0", b"7", b"2"})
_TYPES = {
    b"0": "file", b"\0": "file", b"7": "file", b"1": "file", b"2": "symlink", b"3": "char",
    b"4": "block", b"5": "dir", b"6": "fifo",
}


#: how much of a file's start `ContentCollector.wants` is shown: a bounded prefix, the same
#: wherever the walk asks (read now, or kept by the layer cache, harness.snapshot.layercache,
#: which hands a known file's head over without opening it). It holds what the collectors
#: look at: an ELF header's magic and machine (20 bytes), a jar's `PK`, a private key's
#: header within the first 256 bytes
WANTS_HEAD = 256


class ContentCollector(Protocol):
    """Something that needs the bytes of some files (a package database, an ELF object)."""

    #: how many files `wants` took notice of: wanted, or kept anything of (a finding, a
    #: record from the head). A file that moved no collector's count is shown to none again
    #: when a later walk replays it (harness.snapshot.subtrees): it would move none
    noticed: int

    def wants(self, path: str, head: bytes, size: int) -> bool:
        """Decide from the path, the first bytes and the size whether to take this file.

        `head` is the file's first min(`size`, `WANTS_HEAD`) bytes, never more (empty when
        the walk asks of a hard link, whose bytes come later): a decision must rest on no
        more than that, so that a file the layer cache knows, whose head it kept, is decided
        as one read now."""

    def take(self, path: str, data: bytes) -> None:
        """Receive the whole content of a file this collector wanted."""


class KnownFiles(Protocol):
    """Files a walk read before, whose digests (and facts) it may take unread: the layer
    cache (harness.snapshot.layercache) of files read in place."""

    def serve(self, reader: Any, path: str, size: int, collectors: list[ContentCollector],
              capped: Callable[[list[ContentCollector], str, int], list[ContentCollector]]
              ) -> tuple[str | None, list[ContentCollector] | None]:
        """For the current regular file of `reader`: (its sha256, None) when known and
        consumed unread; (None, the collectors that want it, asked with `capped`) when they
        were asked; (None, None) when it is to be read as any other file."""

    def read(self, path: str, head: bytes) -> None:
        """The walk read a file `serve` did not serve: its head, as shown to `wants`."""


#: the caches the walks within `knowing` use, innermost last
_known: list[KnownFiles] = []


@contextlib.contextmanager
def knowing(cache: KnownFiles) -> Iterator[None]:
    """Walks of a reader whose files lie on disk within serve the files `cache` knows."""
    _known.append(cache)
    try:
        yield
    finally:
        _known.pop()


class CappedCollector(ContentCollector, Protocol):
    """A collector that holds no file above its cap (`harness.limits`): the walk hands it no
    such file, and tells it instead (`refuse`), for it to record an error naming the file
    and the bound."""

    def cap(self, path: str) -> int:
        """The most bytes of this file the collector may be handed."""

    def refuse(self, path: str, size: int, cap: int) -> None:
        """A file it wanted is larger than its cap: record the error."""


#: files at least this large are hashed beside the walk when the reader allows it (a few
#: such files carry most of a large image's bytes; small ones cost more to hand over)
BACKGROUND_MIN = 8 << 20
#: files at least this large that lie on the host are offered to collectors by their host
#: path (`take_path`) before the walk reads them: a collector that reads such a file anyway
#: (the ELF parser, in another process) may hash it there too (`take_path_hashing`), and the
#: walk never reads it (the few objects this large hold most of an image's ELF bytes)
PATH_MIN = 64 << 10

def member_reader(rootfs: Rootfs) -> MemberReader:
    """A stream is read as tar; a member reader is used as it is."""
    if hasattr(rootfs, "chunks"):
        return rootfs  # type: ignore[return-value]
    return TarReader(rootfs)


def normalize_path(name: str) -> str:
    """Tar member name -> absolute image path (`./usr/bin/ls` -> `/usr/bin/ls`).

    `..` is kept, never resolved: a hostile archive must not move an entry elsewhere.
    """
    return "/" + "/".join(p for p in name.split("/") if p not in ("", "."))


#: one string per mode: every file record holds one, and an image has few distinct modes
_MODES = tuple(format(bits, "04o") for bits in range(0o10000))


def mode_string(mode: int) -> str:
    """Permission bits incl. setuid/setgid/sticky as four octal digits (`4755`)."""
    return _MODES[mode & 0o7777]  # stat.S_IMODE overflows on a hostile tar's huge mode


def walk(rootfs: Rootfs, collectors: Iterable[ContentCollector],
         reopen: Reopen | None = None) -> FileTable:
    """Read an image's filesystem once; return a file record per absolute path (packed:
    harness.filetable).

    Collectors see the content of the files they want as the pass goes by. A hard link
    group's content comes with its first member only: when a collector wants another member
    (`/etc/shadow` linked to `/bin/.shadow-data`), a second pass over `reopen()` (a seekable
    stream is read again from its start) hands it that content under the member's path.
    """
    collectors = list(collectors)
    files = _walk(rootfs, collectors)
    wanted = _wanted_links(files, collectors)
    if wanted:
        _deliver_links(rootfs, reopen, wanted, files, collectors)
    return files


def _walk(rootfs: Rootfs, collectors: list[ContentCollector]) -> FileTable:
    files = FileTable()
    background: ThreadPoolExecutor | None = None
    # digests computed elsewhere: in the hashing thread, or by the collector that reads the
    # file anyway (the walk hashes it itself when that collector gives none)
    pending: dict[str, Callable[[], str]] = {}
    try:
        reader = member_reader(rootfs)
        detachable = hasattr(reader, "detach")
        # where the current file lies on the host (a reader of files on disk), asked only
        # of files a collector wants
        on_host: Callable[[], str | None] | None = getattr(reader, "host_path", None)
        clean = getattr(reader, "names_are_clean", False)
        cache = _known[-1] if detachable and _known else None
        # folders read in place: their subtrees are noted for later walks, and replayed
        # from earlier ones (harness.snapshot.subtrees)
        folders = (cast(subtrees.FolderReader, reader)
                   if cache is not None and hasattr(reader, "folder_key") else None)
        recorder = (subtrees.Recorder(folders, tuple(type(c) for c in collectors))
                    if folders is not None else None)
        live = recorder  # while it notes, or may replay
        for member in reader:
            # not interned: a files baseline read against this table holds only the paths
            # whose records differ (harness.baseline), and the interned strings' table would
            # cost 50 MB at a million files
            path = "/" + member.name if clean else normalize_path(member.name)
            if path == "/" or path in ENGINE_INIT_PATHS:
                continue
            if live is not None:
                live.leave(path)
            tick(path)  # the image's time budget, if it is read under one
            if (live is not None and member.type in _ALONE_TYPES
                    and live.reuse(path, files)):
                continue  # an earlier walk's row (harness.snapshot.subtrees)
            kind = _TYPES.get(member.type, "other")
            record: dict[str, Any] = {"type": kind, "mode": mode_string(member.mode),
                                      "uid": member.uid, "gid": member.gid}
            noticed = -1  # a regular file's count before it was offered, while noting
            if member.type == b"2":
                record["target"] = member.linkname
            elif member.type == b"1":
                target = normalize_path(member.linkname)
                record["link"] = target
                first = files.get(target, {})
                record["size"] = first.get("size", 0)
                if "sha256" in first:
                    record["sha256"] = first["sha256"]
            elif kind == "file":
                record["size"] = member.size
                if live is not None and live.noting:
                    noticed = _noticed(collectors)
                takers = None
                head: bytes | None = None  # the file's head as read now, for the cache
                known, asked = (cache.serve(reader, path, member.size, collectors, _capped)
                                if cache is not None else (None, None))
                if known is not None:
                    record["sha256"] = known
                elif asked is not None:
                    record["sha256"], head = _hash_and_collect(reader.chunks(), path,
                                                               member.size, collectors, asked)
                elif detachable and member.size >= PATH_MIN:
                    on_disk: DetachableReader = reader  # type: ignore[assignment]
                    head = on_disk.peek(WANTS_HEAD)
                    takers = _capped([c for c in collectors if c.wants(path, head, member.size)],
                                     path, member.size)
                    host = on_disk.host_path() if takers else None
                    hashed = _hashed_by(takers, path, host, head, member.size) if host else None
                    if hashed is not None:
                        pending[path] = _or_else(hashed, on_disk.detach())
                        takers = []
                    elif host is not None:
                        takers = _by_path(takers, path, host, head)
                    if not takers and path not in pending and member.size >= BACKGROUND_MIN:
                        if background is None:
                            background = ThreadPoolExecutor(1, thread_name_prefix="hash")
                        pending[path] = background.submit(on_disk.detach()).result
                if path not in pending and "sha256" not in record:
                    record["sha256"], head = _hash_and_collect(
                        reader.chunks(), path, member.size, collectors, takers, on_host)
                if cache is not None and head is not None:
                    cache.read(path, head)
            elif kind in ("char", "block"):
                record["dev"] = f"{member.devmajor},{member.devminor}"
            files[path] = record
            if live is not None and folders is not None:
                # a regular file no collector took notice of: a replay shows it to none
                alone = (subtrees.SYMLINK if member.type == b"2" else subtrees.QUIET
                         if noticed >= 0 and noticed == _noticed(collectors) else 0)
                own = live.note(path, kind == "dir", alone)
                key = folders.folder_key() if kind == "dir" and own is not None else None
                if key is not None and own is not None:
                    if live.replay(key, own, files, collectors, cast(subtrees.CacheEntries, cache),
                                   _capped, _hash_and_collect):
                        folders.skip_folder()
                    else:
                        live.enter(path, key, own)
                if live.idle:
                    live = None
        for path, digest in pending.items():
            record = files[path]
            record["sha256"] = digest()
            files[path] = record
        _complete_hardlinks(files)
        if recorder is not None:
            recorder.finish(files)
    except TarFormatError as exc:
        raise SourceError(f"filesystem stream is damaged: {exc}") from exc
    except OSError as exc:
        raise SourceError(f"filesystem stream broke off: {exc}") from exc
    finally:
        if background is not None:
            background.shutdown(wait=True, cancel_futures=True)
    return files


def _noticed(collectors: list[ContentCollector]) -> int:
    """The files the collectors took notice of so far (`ContentCollector.noticed`); -1 when
    one keeps no count (no file is then known to have moved none)."""
    try:
        return sum(collector.noticed for collector in collectors)
    except AttributeError:
        return -1


def _hashed_by(takers: list[ContentCollector], path: str, host_path: str, head: bytes,
               size: int) -> Callable[[], str | None] | None:
    """When the file's only taker takes it by host path and hashes it as it reads it
    (`take_path_hashing`), the function giving that digest; else None."""
    taking = getattr(takers[0], "take_path_hashing", None) if len(takers) == 1 else None
    return None if taking is None else taking(path, host_path, head, size)


def _or_else(digest: Callable[[], str | None], fallback: Callable[[], str]) -> Callable[[], str]:
    return lambda: digest() or fallback()


def _by_path(takers: list[ContentCollector], path: str, host_path: str, head: bytes
             ) -> list[ContentCollector]:
    """Hand the file to the takers that take it by host path (`take_path(path, host_path,
    head)` returns True); those left need its bytes."""
    left = []
    for collector in takers:
        take_path = getattr(collector, "take_path", None)
        if take_path is None or not take_path(path, host_path, head):
            left.append(collector)
    return left


def _hash_and_collect(chunks: Iterator[memoryview], path: str, size: int,
                      collectors: list[ContentCollector],
                      takers: list[ContentCollector] | None = None,
                      host_path: Callable[[], str | None] | None = None) -> tuple[str, bytes]:
    """The file's sha256 and its head (`WANTS_HEAD`) while its content goes to the
    collectors that want it (`takers` when already asked: asking twice would record a
    finding twice). A file on the host (`host_path`) goes by path to the collectors that
    take one: the ELF parser, in another process, reads it there rather than receiving a
    copy."""
    digest = hashlib.sha256()
    parts: list[bytes] = []
    held, most = 0, min((_cap_of(c, path) for c in takers or ()), default=0)
    head: bytes | None = None
    for view in chunks:
        digest.update(view)
        if head is None:
            head = bytes(view[:WANTS_HEAD])
        if takers is None:
            takers = _capped([c for c in collectors if c.wants(path, head, size)], path, size)
            on_host = host_path() if takers and host_path is not None else None
            if on_host is not None:
                takers = _by_path(takers, path, on_host, head)
            most = min((_cap_of(c, path) for c in takers), default=0)
        if takers:
            held += len(view)
            if held > most:  # more data than the member's size said: past a cap, refused
                takers = _capped(takers, path, held)
                most = min((_cap_of(c, path) for c in takers), default=0)
                if not takers:
                    parts = []
                    continue
            parts.append(bytes(view))
    if takers:
        data = b"".join(parts)
        for collector in takers:
            collector.take(path, data)
    elif takers is None and size == 0:
        # an empty file: collectors may still want it (an empty database is an error to report)
        for collector in collectors:
            if collector.wants(path, b"", 0):
                collector.take(path, b"")
    return digest.hexdigest(), head or b""


#: a collector that declares no cap: the walk holds whatever it asks for
_UNCAPPED = 1 << 62


def _cap_of(collector: ContentCollector, path: str) -> int:
    cap = getattr(collector, "cap", None)
    return _UNCAPPED if cap is None else int(cap(path))


def _capped(takers: list[ContentCollector], path: str, size: int) -> list[ContentCollector]:
    """The takers whose cap admits `size` bytes of this file; the others are told they get
    none of it (`CappedCollector.refuse`)."""
    kept = []
    for collector in takers:
        cap = _cap_of(collector, path)
        if size > cap:
            collector.refuse(path, size, cap)  # type: ignore[attr-defined]
        else:
            kept.append(collector)
    return kept


def _complete_hardlinks(files: FileTable) -> None:
    """A hard link may precede its target in a merged stream (upper layers come first in a
    daemonless merge): take size and digest from the target once everything is read."""
    done = []
    for path, record in files.loose_items():  # a hard link's record is never packed
        if "link" in record and "sha256" not in record:
            target = files.get(record["link"], {})
            if "sha256" in target:
                done.append((path, {**record, "size": target.get("size", 0),
                                    "sha256": target["sha256"]}))
    for path, record in done:
        files[path] = record


#: regular file members (the carriers of hard link groups)
_REGULAR = (b"0", b"\0", b"7")


def _wanted_links(files: FileTable, collectors: list[ContentCollector]
                  ) -> dict[str, list[str]]:
    """Carrier path -> the hard links to it some collector may want by their path (asked
    with an empty head: a collector that reads hard links itself, as the ELF collector
    does its objects, turns them down)."""
    wanted: dict[str, list[str]] = {}
    for path, record in files.loose_items():  # a hard link's record is never packed
        target = record.get("link")
        if target is None:
            continue
        for _ in range(8):  # a hostile stream may link to a link
            nxt = files.get(target, {}).get("link")
            if nxt is None:
                break
            target = nxt
        carrier = files.get(target)
        if carrier is None or carrier.get("type") != "file" or "link" in carrier:
            continue
        size = int(carrier.get("size") or 0)
        if any(c.wants(path, b"", size) for c in collectors):
            wanted.setdefault(target, []).append(path)
    return wanted


def _reopened(rootfs: Rootfs, reopen: Reopen | None) -> contextlib.AbstractContextManager[Rootfs]:
    if reopen is not None:
        return reopen()
    if isinstance(rootfs, io.IOBase) and rootfs.seekable():
        rootfs.seek(0)
        return contextlib.nullcontext(rootfs)
    raise SourceError("hard links to files the gate reads need a second read of the image, "
                      "and this stream cannot be read again")


def _deliver_links(rootfs: Rootfs, reopen: Reopen | None, wanted: dict[str, list[str]],
                   files: FileTable, collectors: list[ContentCollector]) -> None:
    """The second pass: each carrier's content, to the collectors that want its links."""
    left = dict(wanted)
    try:
        with _reopened(rootfs, reopen) as again:
            reader = member_reader(again)
            clean = getattr(reader, "names_are_clean", False)
            for member in reader:
                if member.type not in _REGULAR:
                    continue
                path = "/" + member.name if clean else normalize_path(member.name)
                links = left.pop(path, None)
                if links is None:
                    continue
                # the caps hold here too: a link must not carry past them what its path
                # alone would not (the carrier is read only when some collector admits it)
                takers = {link: _capped([c for c in collectors if c.wants(link, b"", member.size)],
                                        link, member.size) for link in links}
                if not any(takers.values()):
                    if not left:
                        break
                    continue
                data = b"".join(bytes(view) for view in reader.chunks())
                if hashlib.sha256(data).hexdigest() != files[path].get("sha256"):
                    raise SourceError(f"{path} changed between two reads of the image")
                head = data[:WANTS_HEAD]
                for link, admitted in takers.items():
                    for collector in admitted:
                        if collector.wants(link, head, len(data)):
                            collector.take(link, data)
                if not left:
                    break
    except TarFormatError as exc:
        raise SourceError(f"filesystem stream is damaged: {exc}") from exc
    except OSError as exc:
        raise SourceError(f"filesystem stream broke off: {exc}") from exc
    if left:
        raise SourceError(f"the second read of the image lacks {', '.join(sorted(left)[:5])}, "
                          "which hard links the gate reads point at")
