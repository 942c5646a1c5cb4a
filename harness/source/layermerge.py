"""The layers of an image merged into ONE view, top layer first, as the engine's overlay2
driver shows them to `docker export` of a container it created (each rule checked against the
engine), handed to the walk member by member (`MergedReader`) as a tar reader would read that
export:

- entries shadowed by an upper layer or whited out (`.wh.NAME`, an overlay char device 0/0) are
  skipped; a folder is opaque (hides the lower layers' content of its path) when its layer holds
  `.wh..wh..opq` in it, or when its tar entry carries the PAX record
  `SCHILY.xattr.trusted.overlay.opaque=y` (the engine writes that xattr to disk, and the kernel
  honours it; another value, `user.` or `LIBARCHIVE.xattr.` records do nothing). At a layer's
  root either mark is ignored, as the kernel ignores an opaque root of a lower layer; a folder
  carrying `trusted.overlay.redirect` above the lowest layer is refused (the kernel follows it);
- names are clamped at the root (layers are applied in a chroot); folders a layer lacks are made
  0755 root; PAX global headers are ignored (the engine's Go tar reader leaves them out);
- the container init layer's folders (/dev, /etc, /proc, /sys) appear when the image has none;
  symlinks are 0777; a hard link group is led by its first surviving member in walk order, with
  the owner and mode of its last entry;
- last, what the engine's create adds (the config's WorkingDir made, its volumes checked) comes
  from `harness.source.createview`, fed the folders and non-folders shown; its refusals are raised at
  the end of the view (only the whole image shows them).

Each layer is read here as a stream: its compression told by its magic bytes (gzip, zstd,
bzip2, xz or none), its bytes checked against its diff id. Nothing is unpacked: each layer is
read twice, an index pass of its headers (seeking past member data where the layer is stored
uncompressed), then the emitting pass, which checks the digest. A compressed layer is
decompressed once: the index pass keeps the tar it reads in a temporary file (within the
temporary folder's free space) for the emitting pass to read back. Memory grows with paths,
not file sizes. The blobs come from `harness.source.archive`, which knows nothing
of layer contents; this module knows nothing of manifests.
"""

from __future__ import annotations

import bz2
import hashlib
import importlib
import io
import lzma
import shutil
import tempfile
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

try:  # ISA-L inflates gzip faster than zlib (bench/README.md)
    from isal import isal_zlib

    _inflater: Any = isal_zlib
except ImportError:  # a platform without its wheels: the same API in the standard library
    _inflater = zlib

from harness.source.createview import RootView, clean_path, parent_path
from harness.errors import SourceError
from harness.limits import Metered
from harness.rootfs.tarstream import Member, TarFormatError, TarReader

CHUNK = 1 << 20
OPAQUE, WHITEOUT = ".wh..wh..opq", ".wh."
#: xattrs of a layer's folder (PAX `SCHILY.xattr.` records) that the engine's overlay mount obeys
OPAQUE_XATTR, REDIRECT_XATTR = "trusted.overlay.opaque", "trusted.overlay.redirect"
#: what the engine's init layer adds to every container (daemon/initlayer): folders when the
#: image has none, files (dropped by the walk) that replace whatever non-folder is there
INIT_DIRS = ("/dev", "/dev/pts", "/dev/shm", "/proc", "/sys", "/etc")
INIT_PATHS = frozenset({*INIT_DIRS, "/.dockerenv", "/etc/resolv.conf", "/etc/hosts",
                        "/etc/hostname", "/dev/console", "/etc/mtab"})
_NONDATA = (b"1", b"2", b"3", b"4", b"5", b"6")
#: a decompressed layer kept for the second pass, at most (and at most half the free space
#: of the temporary folder, which may be memory): beyond, it is decompressed again
MAX_SPILL = 8 << 30

#: a member of the merged view, and the layer's reader holding its data (None: no data)
Entry = tuple[Member, "TarReader | None"]


def _entry(path: str, kind: bytes, mode: int, uid: int, gid: int, size: int = 0, link: str = "",
           major: int = 0, minor: int = 0, data: TarReader | None = None) -> Entry:
    """A member of the merged view, as a tar reader reads one from an export: its name
    relative, a hard link's target too, the permission bits alone."""
    return Member(path.lstrip("/"), kind, mode & 0o7777, uid, gid, size,
                  link.lstrip("/") if kind == b"1" else link, major, minor), data


#: the longest path the kernel takes (linux/limits.h, with its NUL): a longer member name is
#: one the engine could never apply
PATH_MAX = 4096
#: the names of the folders one layer implies (members whose folders have no entry of their
#: own) may take this much; real layers imply a few, or list their folders
IMPLIED_BYTES = 16 << 20

class LayerStore(Protocol):
    """Where the layers are read from (`harness.source.archive`'s blobs)."""

    def open(self, name: str) -> IO[bytes]:
        """A stream of one blob, as stored (compressed or not)."""


# -- a layer as a stream: decompressed, and hashed against its diff id --------------------------

class _Raw(io.RawIOBase):
    """A readable raw stream; subclasses fill `readinto`."""

    def readable(self) -> bool:
        return True


class _Inflate(_Raw):
    """gzip (one or more members) through zlib, the output bounded by the caller's buffer."""

    def __init__(self, raw: IO[bytes], what: str) -> None:
        self._raw, self._what = raw, what
        self._z, self._input = _inflater.decompressobj(31), b""

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            while True:
                if self._z.eof:
                    rest = self._z.unused_data or self._raw.read(CHUNK)
                    if not rest.strip(b"\0"):
                        return 0  # the end of the last member (zero padding tolerated)
                    self._z, self._input = _inflater.decompressobj(31), rest
                elif not self._input:
                    self._input = self._raw.read(CHUNK)
                    if not self._input:
                        raise SourceError(f"{self._what}: gzip stream is truncated")
                data = self._z.decompress(self._input, len(view))
                self._input = self._z.unconsumed_tail
                if data:
                    view[:len(data)] = data
                    return len(data)
        except (zlib.error, _inflater.error) as exc:
            raise SourceError(f"{self._what}: damaged gzip stream ({exc})") from None

    def close(self) -> None:
        self._raw.close()
        super().close()


def _decompressed(raw: IO[bytes], what: str) -> IO[bytes]:
    """A layer's tar stream, whatever its compression (known by its magic bytes)."""
    magic = raw.peek(6)[:6] if isinstance(raw, io.BufferedReader) else b""
    reader: Any = raw
    if magic.startswith(b"\x1f\x8b"):
        reader = _Inflate(raw, what)
    elif magic.startswith(b"\x28\xb5\x2f\xfd"):
        try:
            zstd: Any = importlib.import_module("zstandard")
        except ImportError:
            raise SourceError(f"{what} is zstd-compressed; install the 'zstandard' Python "
                              "module to read it") from None
        reader = zstd.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    elif magic.startswith(b"BZh"):
        reader = bz2.BZ2File(raw)
    elif magic.startswith(b"\xfd7zXZ\x00"):
        reader = lzma.LZMAFile(raw)
    # what a compressed layer expands to is spent from the image's budget (a bomb stops)
    return raw if reader is raw else io.BufferedReader(Metered(reader, what), CHUNK)


class _Spill(_Raw):
    """A decompressed layer passed through and kept in a temporary file for a second read
    (`kept`); given up, file removed, past its size limit or on a write error."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw, self._size, self._limit = raw, 0, 0
        self._file: IO[bytes] | None = None
        try:
            folder = tempfile.gettempdir()
            self._limit = min(MAX_SPILL, shutil.disk_usage(folder).free // 2)
            self._file = tempfile.TemporaryFile(prefix="harness-layer-", dir=folder)
        except OSError:
            self._file = None

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        got = int(self._raw.readinto(view))  # type: ignore[attr-defined]
        if got and self._file is not None:
            self._size += got
            try:
                if self._size > self._limit:
                    raise OSError("over the limit")
                self._file.write(view[:got])
            except OSError:
                self.discard()
        return got

    def kept(self) -> IO[bytes] | None:
        """The whole stream as read, from its start (the caller closes it); None if given up."""
        file, self._file = self._file, None
        if file is not None:
            try:
                file.seek(0)
            except OSError:
                file.close()
                return None
        return file

    def discard(self) -> None:
        """Give up keeping (the temporary file goes with its closing)."""
        if self._file is not None:
            self._file.close()
            self._file = None


class _Hashing(_Raw):
    """A stream passed through and hashed (a layer checked against its diff id). The hash
    runs in a thread of its own, a copy of each read at a time: hashlib lets go of the GIL,
    so the layer's digest costs the walk nothing on a second core."""

    def __init__(self, raw: IO[bytes], algorithm: str) -> None:
        self._raw, self._digest = raw, hashlib.new(algorithm)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="layer-digest")
        self._pending: Future[None] | None = None

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        got = int(self._raw.readinto(view))  # type: ignore[attr-defined]
        if got:
            data = bytes(view[:got])
            self._settle()  # one read hashed at a time: memory stays at two reads
            self._pending = self._thread.submit(self._digest.update, data)
        return got

    def _settle(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def hexdigest(self) -> str:
        """The digest of everything read so far."""
        self._settle()
        return self._digest.hexdigest()

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        super().close()


# -- the merge ----------------------------------------------------------------------------------

def walk_key(path: str) -> list[bytes]:
    """The order of the engine's export walk: by path component, as bytes."""
    return path.encode("utf-8", "surrogateescape").split(b"/")


def _owner(value: int, before: int = 0) -> int:
    return value if value >= 0 else before  # lchown(-1) leaves the owner as it was


@dataclass
class _Group:
    """A hard link group of one layer; its first entry carries the content."""

    members: list[str]
    kind: bytes
    mode: int
    uid: int
    gid: int
    primary: str | None = None


@dataclass
class _LayerIndex:
    """What the first pass learns of a layer."""

    paths: set[str] = field(default_factory=set)
    nondirs: set[str] = field(default_factory=set)
    implied: set[str] = field(default_factory=set)
    whiteouts: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)
    groups: dict[str, _Group] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # link entry -> its group's first


#: receives each regular file a later layer deleted: (path, layer counted from the bottom,
#: mode, size, its data), while the merge passes it
HiddenSink = Callable[[str, int, int, int, Iterator[memoryview]], None]


class LayerMerge:
    """Layers, top first, into one view: a generator of members (`entries`)."""

    def __init__(self, blobs: LayerStore, layers: list[tuple[str, str | None]], ref: str,
                 workdir: str = "", volumes: Iterable[str] = ()) -> None:
        self._blobs, self._layers, self._ref = blobs, layers, ref
        self._workdir, self._volumes = workdir, sorted(volumes)
        self._exact: set[str] = set()    # paths upper layers hold (or white out)
        self._subtree: set[str] = set()  # paths below which upper layers hide everything
        self._cache: dict[str, bool] = {}
        self._dirs: set[str] = set()     # the folders shown
        #: the non-folders shown (a symlink's target, else None), kept only when creating the
        #: container looks paths up (a WorkingDir or a volume other than the root)
        self._others: dict[str, str | None] | None = None
        if any(clean_path(p) != "/" for p in [workdir, *self._volumes] if p):
            self._others = {}
        self._layer = ""  # the layer being read
        #: `HiddenSink` of files a later layer deleted (hidden-in-lower-layer), when wanted
        self.hidden_sink: HiddenSink | None = None
        self._number = 0  # the layer being read, counted from the bottom (1)
        self._gone: set[str] = set()        # paths upper layers white out
        self._gone_below: set[str] = set()  # paths below which upper layers deleted all

    def _stream(self, name: str) -> tuple[IO[bytes], bool]:
        """A layer's tar stream, and whether it is decompressed (else the blob as stored)."""
        raw = self._blobs.open(name)
        stream = _decompressed(raw, f"{self._ref}: layer {name}")
        return stream, stream is not raw

    def _hidden(self, path: str) -> bool:
        """Whether upper layers hide a path: shadowed, whited out, under an opaque folder."""
        if path in self._exact or path in self._subtree:
            return True
        if not self._subtree:
            return False
        chain, probe = [], parent_path(path)
        while probe not in self._cache:
            chain.append(probe)
            if probe == "/":
                break
            probe = parent_path(probe)
        hidden = self._cache.get(probe, False)
        for folder in reversed(chain):  # cached per folder: a walk-ordered layer costs O(1)
            hidden = hidden or folder in self._subtree
            self._cache[folder] = hidden
        return hidden

    def _deleted(self, path: str) -> bool:
        """Whether upper layers deleted a path (a whiteout of it or of a folder above it, an
        opaque folder or a non-folder above it), rather than shadowing it with a new copy."""
        if path in self._gone:
            return True
        probe = path
        while probe != "/":
            probe = parent_path(probe)
            if probe in self._gone_below:
                return True
        return False

    def _report_hidden(self, m: Member, paths: Iterable[str], reader: TarReader) -> None:
        """Hand a deleted regular file (any member of its group deleted) to the sink."""
        if (self.hidden_sink is not None and m.type in (b"0", b"\0", b"7")
                and any(self._deleted(p) for p in paths)):
            self.hidden_sink(clean_path(m.name), self._number, m.mode, m.size, self.data(reader))

    def _visible(self, path: str, nondir: bool) -> bool:
        # the init layer unlinks whatever is not a folder at its paths
        return not self._hidden(path) and not (nondir and path in INIT_PATHS)

    def _index(self, name: str, lowest: bool) -> tuple[_LayerIndex, IO[bytes] | None]:
        """The first pass: headers only, and the layer's tar kept when it had to be
        decompressed (the second pass reads and checks it). Member data is skipped, by
        seeking where the layer is stored uncompressed (a `docker save` archive)."""
        stream, compressed = self._stream(name)
        with stream:
            spill = _Spill(stream) if compressed else None
            try:
                # the buffered reader is held: freed, it would close the spill
                buffered = io.BufferedReader(spill, CHUNK) if spill is not None else stream
                idx = self._index_members(name, TarReader(buffered, seek=spill is None), lowest)
                if spill is not None:
                    while spill.read(CHUNK):
                        pass  # the end-of-archive padding: the second pass checks it too
            except BaseException:
                if spill is not None:
                    spill.discard()
                raise
        return idx, spill.kept() if spill is not None else None

    def _index_members(self, name: str, reader: TarReader, lowest: bool) -> _LayerIndex:
        idx, explicit = _LayerIndex(), set()
        for m in reader:
            path = clean_path(m.name)
            if path == "/":
                continue
            if len(path.encode("utf-8", "surrogateescape")) >= PATH_MAX:
                raise SourceError(f"{self._ref}: layer {name} holds a member path of "
                                  f"{len(path):,} characters, past the kernel's PATH_MAX "
                                  f"({PATH_MAX:,} bytes): the engine cannot apply it")
            parent, base = parent_path(path), path[path.rfind("/") + 1:]
            idx.implied.add(parent)
            if base.startswith(WHITEOUT) or (m.type == b"3" and not m.devmajor | m.devminor):
                if base == OPAQUE:
                    if parent != "/":  # the kernel ignores an opaque root
                        idx.opaque.add(parent)
                elif not base.startswith(WHITEOUT):
                    idx.whiteouts.add(path)  # an overlay whiteout: char device 0/0
                elif base != WHITEOUT:
                    idx.whiteouts.add(parent.rstrip("/") + "/" + base[len(WHITEOUT):])
                continue
            if path in idx.paths:
                raise SourceError(f"{self._ref}: layer {name} holds {path!r} twice "
                                  "(the engine refuses such a layer)")
            idx.paths.add(path)
            if m.type == b"5":
                explicit.add(path)
                if m.xattrs:
                    self._overlay_xattrs(name, path, m.xattrs, idx, lowest)
                continue
            idx.nondirs.add(path)
            if m.type != b"1":
                idx.groups[path] = _Group([path], m.type, 0o777 if m.type == b"2" else m.mode,
                                          _owner(m.uid), _owner(m.gid))
                continue
            root = clean_path(m.linkname)
            root = idx.links.get(root, root)
            group = idx.groups.get(root)
            if group is not None:  # else a link to nothing before it: kept as written
                idx.links[path] = root
                group.members.append(path)
                group.uid, group.gid = _owner(m.uid, group.uid), _owner(m.gid, group.gid)
                if group.kind != b"2":  # chmod through a link reaches the inode
                    group.mode = m.mode
        idx.groups = {k: g for k, g in idx.groups.items() if len(g.members) > 1}
        implied: set[str] = set()
        # each folder a layer implies is a record: a hostile layer gives every deep file a
        # chain of its own, so what it costs grows with the square of the depth
        held = 0
        for folder in idx.implied:
            while folder != "/" and folder not in explicit and folder not in implied:
                implied.add(folder)
                held += len(folder)
                if held > IMPLIED_BYTES:
                    raise SourceError(
                        f"{self._ref}: layer {name} implies folders whose names take more "
                        f"than {IMPLIED_BYTES >> 20} MiB (members without their folders' "
                        "entries, nested deep): refused")
                folder = parent_path(folder)
        idx.implied = implied - idx.paths
        idx.paths |= idx.implied
        return idx

    def _overlay_xattrs(self, name: str, path: str, xattrs: dict[str, str], idx: _LayerIndex,
                        lowest: bool) -> None:
        """A folder's xattr records as the engine's overlay mount obeys them."""
        if xattrs.get(OPAQUE_XATTR) == "y":  # exactly "y": the kernel's test
            idx.opaque.add(path)
        if REDIRECT_XATTR in xattrs and not lowest:
            raise SourceError(f"{self._ref}: layer {name}: {path} carries the xattr "
                              f"{REDIRECT_XATTR}, which the kernel follows and this reader "
                              "does not (load the image into the engine to read it)")

    def entries(self) -> Generator[Entry, None, None]:
        """The merged view's members in the engine's export order, each with the reader of
        its data (read it, through `data`, before asking for the next)."""
        for number, (name, diff_id) in enumerate(reversed(self._layers)):
            self._layer, self._number = name, len(self._layers) - number
            try:
                idx, kept = self._index(name, number == len(self._layers) - 1)
                yield from self._emit(name, diff_id, idx, kept)
            except Exception as exc:
                raise self._unreadable(name, exc) from None
            for path in idx.implied:
                if self._visible(path, False):
                    self._dirs.add(path)
                    yield _entry(path, b"5", 0o755, 0, 0)
            if number < len(self._layers) - 1:  # what it holds and hides covers lower layers
                self._exact |= idx.paths | idx.whiteouts
                self._subtree |= idx.nondirs | idx.whiteouts | idx.opaque
                if self.hidden_sink is not None:
                    self._gone |= idx.whiteouts
                    self._gone_below |= idx.nondirs | idx.whiteouts | idx.opaque
                self._cache.clear()
        for path in INIT_DIRS:
            if path not in self._dirs:
                self._dirs.add(path)
                yield _entry(path, b"5", 0o755, 0, 0)
        if self._others is not None:
            for path in sorted(INIT_PATHS.difference(INIT_DIRS, self._dirs)):
                self._others[path] = "/proc/mounts" if path == "/etc/mtab" else None
            view = RootView(self._dirs, self._others, self._ref)
            for path in view.create(self._workdir, self._volumes):
                yield _entry(path, b"5", 0o755, 0, 0)

    def data(self, reader: TarReader, head: int = 4096) -> Iterator[memoryview]:
        """A member's data from its layer's reader (damage named as the layer's)."""
        try:
            yield from reader.chunks(head)
        except Exception as exc:
            raise self._unreadable(self._layer, exc) from None

    def _unreadable(self, name: str, exc: Exception) -> Exception:
        """What a failure reading a layer is reported as: a SourceError naming the layer
        (one raised as such passes as it is; a bug in this module is not disguised)."""
        if isinstance(exc, SourceError):
            return exc
        if isinstance(exc, (TarFormatError, OSError, EOFError, ValueError, lzma.LZMAError)):
            return SourceError(f"{self._ref}: layer {name} is unreadable ({exc})")
        if type(exc).__name__ == "ZstdError":
            return SourceError(f"{self._ref}: layer {name}: damaged zstd ({exc})")
        return exc

    def _shown(self, paths: Iterable[str], kind: bytes, link: str) -> None:
        """Note what `RootView` needs of members shown."""
        if kind == b"5":
            self._dirs.update(paths)
        elif self._others is not None:
            for path in paths:
                self._others[path] = link if kind == b"2" else None

    def _emit(self, name: str, diff_id: str | None, idx: _LayerIndex,
              kept: IO[bytes] | None) -> Iterator[Entry]:
        """The second pass (of the layer's tar `kept` by the first, if any): the layer's
        members as the merge shows them, every byte checked against the diff id. A layer that
        does not match fails the stream at its end, so no snapshot is ever taken of it."""
        algorithm, _, expected = (diff_id or "sha256:").partition(":")
        if algorithm not in ("sha256", "sha512"):
            algorithm, expected = "sha256", ""
        source = kept if kept is not None else self._stream(name)[0]
        with source as stream, _Hashing(stream, algorithm) as hashing:
            # held here: a buffered reader closes its raw stream when it is freed
            buffered = io.BufferedReader(hashing, CHUNK)
            yield from self._members(TarReader(buffered), idx)
            while hashing.read(CHUNK):
                pass  # the end-of-archive padding is part of the digest
            actual = hashing.hexdigest()
        if expected and actual != expected:
            raise SourceError(f"{self._ref}: layer {name} does not match its diff id {diff_id} "
                              "(damaged or truncated)")

    def _members(self, reader: TarReader, idx: _LayerIndex) -> Iterator[Entry]:
        """What the merge shows of one layer's members."""
        for m in reader:
            path = clean_path(m.name)
            base = path[path.rfind("/") + 1:]
            if path == "/" or base.startswith(WHITEOUT) or (
                    m.type == b"3" and not m.devmajor | m.devminor):
                continue
            if path in idx.links:  # a later member of a hard link group
                first = idx.groups[idx.links[path]]
                if first.primary not in (None, path) and self._visible(path, True):
                    yield _entry(path, b"1", first.mode, first.uid, first.gid,
                                 link=first.primary or "")
                continue
            size = 0 if m.type in _NONDATA else m.size
            group = idx.groups.get(path)
            if group is not None:  # a group's first entry: its content, under the primary
                alive = [p for p in group.members if self._visible(p, True)]
                if not alive:
                    self._report_hidden(m, group.members, reader)
                    continue
                group.primary = min(alive, key=walk_key)
                self._shown(alive, group.kind, m.linkname)
                yield _entry(group.primary, m.type, group.mode, group.uid, group.gid, size,
                             m.linkname, m.devmajor, m.devminor, reader if size else None)
            elif self._visible(path, m.type != b"5"):
                self._shown((path,), m.type, m.linkname)
                yield _entry(path, m.type, 0o777 if m.type == b"2" else m.mode,
                             _owner(m.uid), _owner(m.gid), size,
                             clean_path(m.linkname) if m.type == b"1" else m.linkname,
                             m.devmajor, m.devminor, reader if size else None)
            else:
                self._report_hidden(m, (path,), reader)
                continue
            if group is not None and group.primary != path and self._visible(path, True):
                yield _entry(path, b"1", group.mode, group.uid, group.gid,
                             link=group.primary or "")


class MergedReader:
    """The merged layers as the walk reads them (a member reader): each member as a tar
    reader would read it from the engine's export, without writing that tar and reading it
    back (a third pass over every byte)."""

    def __init__(self, merge: LayerMerge) -> None:
        self._merge, self._entries = merge, merge.entries()
        self._data: TarReader | None = None

    def __iter__(self) -> Iterator[Member]:
        for member, data in self._entries:
            self._data = data
            yield member

    def chunks(self, head: int = 4096) -> Iterator[memoryview]:
        """The current member's data (once)."""
        data, self._data = self._data, None
        if data is not None:
            yield from self._merge.data(data, head)

    def close(self) -> None:
        """Stop reading (the layer files and spills are closed)."""
        self._entries.close()

    def set_hidden_sink(self, sink: HiddenSink) -> None:
        """Hand the files later layers deleted to `sink` as the merge passes them."""
        self._merge.hidden_sink = sink

