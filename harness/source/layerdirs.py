"""The engine's overlay2 layer folders, read in place and merged as its overlay mount shows them.

`docker export` of a created container mounts the container's layers with overlayfs (its own
writable layer, its init layer, then the image's layers, top first) and walks the mount with
Go's `filepath.Walk`: depth first, each folder's names sorted as bytes, never following a
symlink. This reader walks the same layer folders in the same order and applies the kernel's
lookup rules, so the members it yields are those of the export, attribute for attribute:

- the topmost layer holding a name wins; a folder merges the folders of the same path in the
  layers below, down to the first copy that is opaque (xattr `trusted.overlay.opaque` = "y",
  `user.overlay.opaque` on rootless engines) or a layer holding a non-folder or a whiteout there
  (a merged folder has the attributes of its topmost copy); the root merges every layer;
- a whiteout (a char device 0/0) hides its name in its layer and below; `.wh.NAME` and
  `.wh..wh..opq` (a tar layer's markers: the engine's unpacker turns them into whiteouts and
  the opaque xattr, so they appear only in hand-made folders) are read as
  `harness.source.layermerge` reads them; sockets are skipped (the engine's tar writer refuses them);
- the container init layer's rules (as `harness.source.layermerge`): its folders (/dev, /dev/pts,
  /dev/shm, /proc, /sys, /etc) appear as 0755 root when the layers have none, and no non-folder
  is shown at its paths. Given the container's own layers these rules change nothing;
- non-folders with more than one link are grouped by (st_dev, st_ino), as the engine's tar
  writer groups by inode: the first one visited carries the data, later ones are hard links to
  it. Modes are the permission bits with setuid/setgid/sticky, owners and devices from lstat.

Overlay redirects (`trusted.overlay.redirect`) are refused: the engine's layers never hold
one unless a hostile tar set that xattr, and the kernel would follow it. File data is read
with `os.readv` into one reusable 1 MiB buffer; a file that vanishes, is replaced or changes
size while read raises `SourceError` naming the path and its layer, never a short record.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SourceError
from harness.rootfs.readers import stamp
from harness.rootfs.tarstream import Member

BUFFER = 1 << 20
WHITEOUT, OPAQUE = b".wh.", b".wh..wh..opq"
#: the container init layer's folders, and every path where it leaves no non-folder of the
#: image (equal to harness.source.layermerge's INIT_DIRS and INIT_PATHS, relative and as bytes)
INIT_DIRS = (b"dev", b"dev/pts", b"dev/shm", b"proc", b"sys", b"etc")
INIT_PATHS = frozenset({*INIT_DIRS, b".dockerenv", b"etc/resolv.conf", b"etc/hosts",
                        b"etc/hostname", b"dev/console", b"etc/mtab"})
_KINDS = {stat.S_IFREG: b"0", stat.S_IFDIR: b"5", stat.S_IFLNK: b"2", stat.S_IFCHR: b"3",
          stat.S_IFBLK: b"4", stat.S_IFIFO: b"6"}
_NO_XATTRS = (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP)
#: folders whose entries the init layer's rules change (`_children`, `_member`): what lies
#: below them depends on more than their copies
_INIT_PARENTS = frozenset(path.rpartition(b"/")[0] for path in INIT_PATHS)


@dataclass
class _Entry:
    """One name of a merged folder: its winning copy, and for a folder every copy it merges."""

    layer: int
    path: bytes                               # the winning copy; b"" for an init-layer folder
    st: os.stat_result | None                 # None for an init-layer folder
    copies: list[tuple[int, bytes]] | None    # (layer, folder) top first; None: not a folder
    merging: bool = True                      # lower copies still merge into this folder
    #: each copy's identity as listed (`stamp`), in the order of `copies`
    stamps: list[bytes] | None = None


class LayerDirsReader:
    """A `MemberReader` (harness.snapshot.walk) of overlay2 layer folders, given top first."""

    #: member names are real paths below the root: no empty, `.` or `..` components
    names_are_clean = True

    def __init__(self, layers: list[Path], what: str, xattr_ns: str = "trusted") -> None:
        if not layers:
            raise SourceError(f"{what}: no layer folders to read")
        self._roots = [os.fsencode(layer) for layer in layers]
        self._what = what
        self._opaque, self._redirect = f"{xattr_ns}.overlay.opaque", f"{xattr_ns}.overlay.redirect"
        self._view = memoryview(bytearray(BUFFER))
        self._links: dict[tuple[int, int], str] = {}
        self._pending: tuple[bytes, int, int, str] | None = None  # path, size, layer, name
        #: the host path of the last regular file met (still known once its data is read),
        #: and its lstat as the listing took it
        self._current: bytes | None = None
        self._current_st: os.stat_result | None = None
        #: receives the regular files later layers deleted (harness.source.layermerge.HiddenSink)
        self._hidden_sink: Callable[[str, int, int, int, Iterator[memoryview]], None] | None = None
        #: the current member's merged entry and path below the root; whether the walk
        #: asked not to descend into it (`skip_folder`)
        self._entry: _Entry | None = None
        self._rel = b""
        self._skip = False
        #: members met so far whose record depends on more than their folder's copies: a
        #: hard link group's (the first one met carries the data), and files a later layer
        #: deleted (handed to the hidden sink as their folder is listed)
        self.irregular = 0

    def set_hidden_sink(self, sink: Callable[[str, int, int, int, Iterator[memoryview]], None]
                        ) -> None:
        """Hand the regular files later layers deleted (whited out, under an opaque folder or
        under a folder replaced by a non-folder) to `sink` as the walk passes their folder."""
        self._hidden_sink = sink

    def _error(self, action: str, name: bytes | str, layer: int, exc: OSError | None) -> SourceError:
        shown = name if isinstance(name, str) else _decode(name)
        why = f" ({exc.strerror or exc})" if exc is not None else ""
        return SourceError(f"{self._what}: /{shown} {action} in layer "
                           f"{os.fsdecode(self._roots[layer])}{why}")

    def __iter__(self) -> Iterator[Member]:
        self._links.clear()
        stack = [iter(self._children(b"", list(enumerate(self._roots))))]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
                continue
            rel, entry = item
            member = self._member(rel, entry)
            self._entry, self._rel, self._skip = entry, rel, False
            if member is not None:
                yield member
            if entry.copies is not None and not self._skip:
                stack.append(iter(self._children(rel, entry.copies)))

    def folder_key(self) -> tuple[bytes, tuple[tuple[bytes, bool], ...], bool] | None:
        """For the current member, a folder: what decides everything below it, as a key
        equal for every reader of the same copies (each copy's host folder, and whether a
        lower layer lies below it, as `_children` asks), hence for every image holding the
        folder from the same layers; None when its entries depend on more (the init
        layer's folders and their parents). Layer folders never change once made: an
        entry's stamps (`stamps`) tell when one did anyway."""
        entry = self._entry
        if entry is None or not entry.copies or self._rel in _INIT_PARENTS:
            return None
        last = len(self._roots) - 1
        return (self._rel, tuple((folder, layer < last) for layer, folder in entry.copies),
                self._hidden_sink is not None)

    def stamps(self) -> tuple[bytes, ...] | None:
        """The current member's layer folders and identities as listed, flat: (layer, stamp,
        layer, stamp...), each copy of a folder's (stamped before it was listed), a
        non-folder's winning copy's; None for an init-layer folder. A copy's host path is
        its layer folder, "/", and the member's name (as bytes)."""
        entry = self._entry
        if entry is None or entry.st is None:
            return None
        roots = self._roots
        if entry.copies is None:
            return roots[entry.layer], stamp(entry.st)
        return tuple(part for (layer, _), st in zip(entry.copies, entry.stamps or ())
                     for part in (roots[layer], st))

    def skip_folder(self) -> None:
        """Do not descend into the current member, a folder (the caller has its entries)."""
        self._skip = True

    def _children(self, rel: bytes, copies: list[tuple[int, bytes]]) -> list[tuple[bytes, _Entry]]:
        """A merged folder's entries, sorted by name, each with its path below the root."""
        found: dict[bytes, _Entry] = {}
        hidden: set[bytes] = set()  # whited out by an upper copy
        for layer, folder in copies:
            try:
                with os.scandir(folder) as listing:
                    items = list(listing)
            except OSError as exc:
                raise self._error("cannot be listed", rel, layer, exc) from None
            opaque, whiteouts = False, set()
            for item in items:
                name = item.name
                if name.startswith(WHITEOUT):
                    if name == OPAQUE:
                        opaque = True
                    elif name != WHITEOUT:
                        whiteouts.add(name[len(WHITEOUT):])
                    continue
                try:
                    entry = found.get(name)
                    is_dir = item.is_dir(follow_symlinks=False)
                    if self._hidden_sink is not None and (
                            name in hidden or entry is not None and entry.copies is None
                            and is_dir):
                        self._deleted(_join(rel, name), layer, item.path)
                    if entry is None and name not in hidden:
                        st = item.stat(follow_symlinks=False)
                        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                            hidden.add(name)  # a whiteout
                        elif is_dir:
                            found[name] = _Entry(layer, item.path, st, [(layer, item.path)],
                                                 stamps=[stamp(st)])
                        else:
                            found[name] = _Entry(layer, item.path, st, None)
                    elif entry is not None and entry.copies is not None and entry.merging:
                        if is_dir:
                            entry.copies.append((layer, item.path))
                            assert entry.stamps is not None
                            entry.stamps.append(stamp(item.stat(follow_symlinks=False)))
                        else:  # a non-folder or a whiteout below a folder ends its merge
                            entry.merging = False
                except OSError as exc:
                    raise self._error("cannot be read", _join(rel, name), layer, exc) from None
            hidden |= whiteouts
            for name in whiteouts:
                if name in found:
                    found[name].merging = False
            # the kernel ignores the root's marks: the root merges every layer
            if rel and (layer + 1 < len(self._roots) and self._is_opaque(folder, rel, layer)
                        or opaque):
                if self._hidden_sink is not None:
                    below = copies[copies.index((layer, folder)) + 1:]
                    for lower, lower_folder in below:
                        self._deleted(rel, lower, lower_folder, own=False)
                break
        for path in INIT_DIRS:
            parent, _, name = path.rpartition(b"/")
            entry = found.get(name)
            if parent == rel and (entry is None or entry.copies is None):
                found[name] = _Entry(0, b"", None, [])  # 0755 root, as the init layer
        return [(_join(rel, name), found[name]) for name in sorted(found)]

    def _deleted(self, rel: bytes, layer: int, path: bytes, own: bool = True) -> None:
        """Hand the regular files at `path` (with `own`; else only below it) in a layer to
        the hidden sink: a later layer deleted them. Symlinks are never followed."""
        assert self._hidden_sink is not None
        self.irregular += 1
        stack = [(rel, path, own)]
        while stack:
            here, host, itself = stack.pop()
            try:
                st = os.lstat(host)
                if stat.S_ISDIR(st.st_mode):
                    with os.scandir(host) as listing:
                        names = sorted(item.name for item in listing)
                    stack += [(_join(here, n), host + b"/" + n, True) for n in reversed(names)
                              if not n.startswith(WHITEOUT)]
                    continue
            except OSError as exc:
                raise self._error("cannot be read", here, layer, exc) from None
            if itself and stat.S_ISREG(st.st_mode):
                pending = (host, st.st_size, layer, _decode(here))
                self._hidden_sink("/" + _decode(here), len(self._roots) - layer,
                                  stat.S_IMODE(st.st_mode), st.st_size,
                                  self._read(pending, memoryview(bytearray(min(BUFFER, max(
                                      st.st_size, 1) + 1)))))

    def _is_opaque(self, folder: bytes, rel: bytes, layer: int) -> bool:
        """Whether a folder's copy hides the layers below it (a redirect is refused)."""
        try:
            names = os.listxattr(folder, follow_symlinks=False)
            if self._redirect in names:
                raise self._error("is an overlay redirect, which this reader does not follow "
                                  "(use --compat-read=export)", rel, layer, None)
            return self._opaque in names and os.getxattr(
                folder, self._opaque, follow_symlinks=False) == b"y"
        except OSError as exc:
            if exc.errno in _NO_XATTRS:
                return False
            raise self._error("cannot be read", rel, layer, exc) from None

    def _member(self, rel: bytes, e: _Entry) -> Member | None:
        """The member of one merged entry; None when the export shows none."""
        self._current = None
        name, st = _decode(rel), e.st
        if st is None:
            return Member(name, b"5", 0o755, 0, 0, 0, "", 0, 0)
        kind = _KINDS.get(stat.S_IFMT(st.st_mode))
        if kind is None or (kind != b"5" and rel in INIT_PATHS):
            return None  # a socket; a non-folder the init layer replaces
        mode, link, size, major, minor = stat.S_IMODE(st.st_mode), "", 0, 0, 0
        if kind == b"2":
            mode = 0o777
            try:
                link = _decode(os.readlink(e.path))
            except OSError as exc:
                raise self._error("cannot be read", rel, e.layer, exc) from None
        elif kind in (b"3", b"4"):
            major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        if kind != b"5" and st.st_nlink > 1:
            self.irregular += 1
            first = self._links.setdefault((st.st_dev, st.st_ino), name)
            if first != name:
                return Member(name, b"1", mode, st.st_uid, st.st_gid, 0, first, 0, 0)
        if kind == b"0":
            size = st.st_size
            self._pending = (e.path, size, e.layer, name)
            self._current, self._current_st = e.path, st
        return Member(name, kind, mode, st.st_uid, st.st_gid, size, link, major, minor)

    def chunks(self, head: int = 4096) -> Iterator[memoryview]:
        """The current regular file's data, in views of one buffer valid until the next step;
        the first view holds the whole file or at least min(`head`, 1 MiB) bytes."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[1]:
            yield from self._read(pending, self._view)

    def peek(self, head: int) -> bytes:
        """The current regular file's first `head` bytes, leaving it to `chunks` or `detach`."""
        if self._pending is None or not self._pending[1]:
            return b""
        path, size, layer, name = self._pending
        fd = self._open(path, layer, name)
        try:
            return os.pread(fd, min(head, size), 0)
        except OSError as exc:
            raise self._error("cannot be read", name, layer, exc) from None
        finally:
            os.close(fd)

    def host_path(self) -> str | None:
        """The current regular file's path on the host (also while or after its data is
        read), when it is UTF-8; else None."""
        if self._current is None:
            return None
        try:
            return self._current.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def host_stat(self) -> os.stat_result | None:
        """The current regular file's lstat, taken as its folder was listed (its member's
        attributes come from it): its identity, without another system call."""
        return self._current_st if self._current is not None else None

    def detach(self) -> Callable[[], str]:
        """Consume the current regular file: a function hashing it (sha256 hex) with its own
        buffer, callable from another thread while the walk goes on."""
        pending, self._pending = self._pending, None

        def digest() -> str:
            hashed = hashlib.sha256()
            if pending is not None and pending[1]:
                for view in self._read(pending, memoryview(bytearray(BUFFER))):
                    hashed.update(view)
            return hashed.hexdigest()
        return digest

    def _open(self, path: bytes, layer: int, name: str) -> int:
        # O_NONBLOCK: something swapped in for the file (a fifo) must not hang the read
        try:
            return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
                           | os.O_NONBLOCK)
        except OSError as exc:
            raise self._error("vanished or cannot be opened", name, layer, exc) from None

    def _read(self, pending: tuple[bytes, int, int, str], buffer: memoryview
              ) -> Iterator[memoryview]:
        """A file's data in views of `buffer`; SourceError when it changes while read.

        Every read asks for one byte more than the file should still hold: a regular file
        returns less only at its end, so the last read proves the size without an fstat (two
        fewer system calls per file, which a tree of small files feels)."""
        path, size, layer, name = pending
        fd = self._open(path, layer, name)
        try:
            left = size
            while True:
                want = min(left + 1, len(buffer))
                got = os.readv(fd, [buffer[:want]])
                if got > left:
                    raise self._error("grew while read", name, layer, None)
                if got == 0 and left:
                    raise self._error(f"shrank while read (ends at {size - left} of {size} "
                                      "bytes)", name, layer, None)
                if got:
                    left -= got
                    yield buffer[:got]
                if got < want:  # a short read: the end of the file
                    if left:
                        continue  # or a read cut short: the next one tells
                    return
        except OSError as exc:
            raise self._error("cannot be read", name, layer, exc) from None
        finally:
            os.close(fd)


def _join(rel: bytes, name: bytes) -> bytes:
    return rel + b"/" + name if rel else name


def _decode(raw: bytes) -> str:
    # as the tar reader decodes names: lossless for non-UTF-8 bytes (os.fsencode undoes it)
    return raw.decode("utf-8", "surrogateescape")
