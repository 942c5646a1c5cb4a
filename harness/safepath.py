"""Strings that become parts of paths on this machine, and files written there.

An image chooses its own Architecture, and a run chooses names and families: each is checked
here before it joins a path under `--baselines`, `--compat-cache` or `--sbom`, and every such
path is resolved and must stay inside its folder (a `..` part or a symlink planted in the
folder cannot lead out of it). Files are written through a temp file created exclusively in
the target's own folder (never through an existing file or symlink), then renamed over it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError, SourceError

#: an architecture as baselines name it, after `uname -m` normalisation (x86_64, aarch64)
_ARCH = re.compile(r"[a-z0-9_]+\Z")
#: control characters, and the separators a file name must not hold
_UNSAFE_PART = re.compile(r"[\x00-\x1f\x7f/\\]")


class UnsafePath(HarnessError):
    """A name would leave its folder, or a path under a folder resolves outside it."""


def check_arch(arch: str, image: str) -> str:
    """The (normalised) architecture, or a `SourceError` naming the image: only
    `[a-z0-9_]+` may become a baseline folder."""
    if not isinstance(arch, str) or not _ARCH.match(arch):
        raise SourceError(f"image {image!r}: its architecture {arch!r} is not a plain "
                          "architecture name ([a-z0-9_]+ after normalisation)")
    return arch


def check_part(value: str, what: str) -> str:
    """One path component (an image name, a family, an aspect): no separator, no control
    character, not `.` or `..`, not hidden."""
    if (not isinstance(value, str) or not value or value.startswith(".")
            or _UNSAFE_PART.search(value)):
        raise UnsafePath(f"{what} {value!r} cannot name a file or folder")
    return value


def inside(root: Path, *parts: str) -> Path:
    """`root/part/...`, each part checked, resolved (symlinks followed) and refused unless it
    stays inside `root` as resolved."""
    for part in parts:
        check_part(part, "path component")
    base = root.resolve()
    path = base.joinpath(*parts)
    resolved = path.resolve()
    if resolved != base and base not in resolved.parents:
        raise UnsafePath(f"{path} resolves to {resolved}, outside {base}")
    return path


def replace_file(path: Path, data: bytes | Iterable[bytes], mode: int | None = None,
                 sync: bool = False) -> None:
    """Write `path` atomically: a temp file created exclusively (O_EXCL, never through a
    symlink) beside it, filled (with `data`, or each of its parts in turn), renamed over it.
    `mode` defaults to 0666 less the umask (a normal file, not mkstemp's 0600); `sync` makes
    the bytes and the rename durable. Raises OSError; no temp file is left behind."""
    folder = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            if mode is None:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            os.fchmod(out.fileno(), mode)
            if isinstance(data, bytes):
                out.write(data)
            else:
                for part in data:
                    out.write(part)
            out.flush()
            if sync:
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


#: a file's identity as a stat sees it: (inode, size, mtime ns, ctime ns). A file replaced
#: by rename has another inode; one written in place moves its mtime and ctime; a folder's
#: move whenever a name in it is added, removed or renamed
Identity = tuple[int, int, int, int]


def identity(st: os.stat_result) -> Identity:
    """The identity of a stat result (`Identity`): what the caches here trust a file by."""
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
