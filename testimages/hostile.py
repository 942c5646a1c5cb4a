"""Hostile images and tar streams: what a careless or malicious base image may hold.

- `HOSTILE`: one imported image with non-UTF-8 names, absolute, escaping and looping
  symlinks, a loader configuration that includes itself, ELF-looking garbage, garbage package
  databases of all three managers and account files, deep (but importable) folders;
- `SPARSE`: a 10 GiB sparse file (imported as a PAX sparse tar, so no 10 GiB stream goes
  through the CLI; the engine still stores the zeros while the image exists);
- streams made on the fly, never stored: a million files, 2,000-level folders, names and
  links that climb out of the root.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from testimages import CACHE, Recipe, _image_exists, rootfs, run, tiny

SPARSE_GIB = int(os.environ.get("HARNESS_SPARSE_GIB", "10"))
#: sha256 of SPARSE_GIB GiB of zeros ending in b"tail" (checked with sha256sum for 10 GiB)
SPARSE_SHA256 = {10: "259e8391db7dbdf1ee60102d42c56e579f14fedc9d43d1b17001639e63abb1f7"}
NON_UTF8 = os.fsdecode(b"caf\xe9-\xff\xfe.conf")


def _garbage(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _hostile(root: Path) -> None:
    for d in ("bin", "etc", "usr/bin", "usr/lib", "var/lib/dpkg", "var/lib/rpm", "lib/apk/db",
              os.fsdecode(b"opt/\xff\xfe-dir")):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", root / "bin/busybox")  # one real (static) ELF
    os.symlink("busybox", root / "bin/sh")
    (root / NON_UTF8).write_bytes(b"not utf-8 named\n")
    (root / "etc" / NON_UTF8).write_bytes(b"x")
    # symlinks: absolute, climbing out of the root, looping, a folder loop
    for link, target in {"etc/abs-shadow": "/etc/shadow", "etc/escape": "../../../../../../etc/passwd",
                         "etc/loop-a": "loop-b", "etc/loop-b": "loop-a", "etc/self": "self",
                         "usr/lib/cycle": ".", "usr/lib/libloop.so.1": "libloop.so.1",
                         "usr/lib/libgone.so.1": "/nonexistent/libgone.so.1"}.items():
        os.symlink(target, root / link)
    (root / "etc/ld.so.conf").write_text("include /etc/ld.so.conf\ninclude /etc/ld.so.conf.d/*\n"
                                         "/usr/lib/cycle\n")
    (root / "etc/ld.so.conf.d").mkdir()
    (root / "etc/ld.so.conf.d/self.conf").write_text("include /etc/ld.so.conf\n")
    # ELF-looking garbage: the magic then noise, a truncated header, absurd counts
    (root / "usr/lib/libgarbage.so.1").write_bytes(b"\x7fELF\x02\x01\x01" + _garbage(1, 65536))
    (root / "usr/bin/truncated").write_bytes(Path("/bin/busybox").read_bytes()[:100])
    head = bytearray(Path("/bin/busybox").read_bytes()[:4096])
    head[56:58] = b"\xff\xff"  # e_phnum: 65535 program headers
    head[60:62] = b"\xff\xff"  # e_shnum
    head[32:40] = (2 ** 63).to_bytes(8, "little")  # e_phoff far away
    (root / "usr/bin/absurd").write_bytes(bytes(head))
    os.chmod(root / "usr/bin/absurd", 0o4755)
    # package databases of every manager, all garbage; account files too
    (root / "var/lib/dpkg/status").write_bytes(_garbage(2, 4096))
    (root / "var/lib/rpm/rpmdb.sqlite").write_bytes(b"SQLite format 3\x00" + _garbage(3, 8192))
    (root / "lib/apk/db/installed").write_bytes(b"P:x\nV:\xff\nF:\nR:\na:1:2:3:4:5\n\x00\n" * 50)
    (root / "etc/passwd").write_bytes(b"root:x:0:0::/root:/bin/sh\n" + _garbage(4, 512))
    (root / "etc/shadow").write_bytes(_garbage(5, 300))
    (root / "etc/group").write_bytes(b"::::::\n\xff\n")
    deep = root / "deep"
    for _ in range(200):  # the engine's limit is PATH_MAX below its own storage folder
        deep = deep / "d"
    deep.mkdir(parents=True)
    (deep / "leaf").write_text("deep\n")
    os.mkfifo(root / "etc/fifo")
    os.chown(root / "etc/abs-shadow", 4294967294, 4294967294, follow_symlinks=False)


HOSTILE = Recipe("hostile", _hostile, changes=('CMD ["/bin/sh"]',))


def _hardlinked(root: Path) -> None:
    # the content sits at a path no reader looks at, visited first (/bin, /usr before /etc,
    # /var); the paths the readers want are later members of the group
    (root / "etc/shadow").unlink()
    (root / "bin/.shadow-data").write_text("root::19000:0:99999:7:::\n")
    os.link(root / "bin/.shadow-data", root / "etc/shadow")
    status = root / "var/lib/dpkg/status"
    os.rename(status, root / "usr/.dpkg-data")
    os.link(root / "usr/.dpkg-data", status)


#: the tiny dpkg image with /etc/shadow (an empty root password) and the dpkg status behind
#: hard links whose first member lies elsewhere
HARDLINKED = Recipe("hostile-hardlinked", _hardlinked, parent=tiny.BASE)


def _sparse(root: Path) -> None:
    (root / "data").mkdir()
    with open(root / "data/sparse.img", "wb") as out:
        out.truncate(SPARSE_GIB << 30)
        out.seek((SPARSE_GIB << 30) - 4)
        out.write(b"tail")


SPARSE = Recipe("hostile-sparse", _sparse, extra=(str(SPARSE_GIB),))


def build_sparse() -> str:
    """The sparse image, imported from a PAX sparse tar (holes are not streamed)."""
    tag = SPARSE.tag
    if _image_exists(tag):
        return tag
    root = rootfs(SPARSE)
    with FileLock(str(CACHE / f"{SPARSE.name}-{SPARSE.digest}.import.lock")):
        if not _image_exists(tag):
            tar = subprocess.Popen(["tar", "-S", "--format=pax", "--sparse-version=1.0", "-C",
                                    str(root), "--numeric-owner", "-cf", "-", "."],
                                   stdout=subprocess.PIPE)
            try:
                run(["docker", "import", "-", tag], stdin=tar.stdout)
            finally:
                assert tar.stdout is not None
                tar.stdout.close()
                tar.wait()
    return tag


# -- tar streams made on the fly ----------------------------------------------------------------

def _octal(value: int, width: int) -> bytes:
    return ("%0*o" % (width - 1, value)).encode() + b"\0"


def ustar(name: bytes, kind: bytes = b"0", size: int = 0, mode: int = 0o644,
          link: bytes = b"") -> bytes:
    """One ustar header block (names up to 100 bytes), fast enough for a million."""
    head = bytearray(512)
    head[0:len(name)] = name
    head[100:108] = _octal(mode, 8)
    head[108:116] = _octal(0, 8)
    head[116:124] = _octal(0, 8)
    head[124:136] = _octal(size, 12)
    head[136:148] = _octal(0, 12)
    head[148:156] = b" " * 8
    head[156:157] = kind
    head[157:157 + len(link)] = link
    head[257:265] = b"ustar\x0000"
    head[148:156] = ("%06o\0 " % sum(head)).encode()
    return bytes(head)


def million_files(count: int = 1_000_000, per_dir: int = 1000) -> Iterator[bytes]:
    """A tar of `count` small files in folders of `per_dir`, as parts (never stored)."""
    for n in range(count):
        if n % per_dir == 0:
            yield ustar(b"many/%05d" % (n // per_dir), b"5", mode=0o755)
        data = b"%d\n" % n
        yield ustar(b"many/%05d/f%07d" % (n // per_dir, n), size=len(data)) + data + bytes(
            512 - len(data))
    yield bytes(1024)


class PartsStream(io.RawIOBase):
    """A readable stream over an iterator of byte parts."""

    def __init__(self, parts: Iterator[bytes]) -> None:
        self._parts = parts
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            if not self._pending:
                self._pending = next(self._parts, b"")
                if not self._pending:
                    break
            n = min(len(view) - filled, len(self._pending))
            view[filled:filled + n] = self._pending[:n]
            self._pending = self._pending[n:]
            filled += n
        return filled


def tar_of(entries: list[tuple[str, bytes, dict[str, Any]]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar of (name, type, attributes); `data` among the attributes is the content."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for name, kind, attrs in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            attrs = dict(attrs)
            data = attrs.pop("data", None)
            for key, value in attrs.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def deep_tar(levels: int = 2000) -> bytes:
    """Folders `levels` deep (a PAX path of 2 * levels bytes), a file at the bottom."""
    entries: list[tuple[str, bytes, dict[str, Any]]] = [("deep", tarfile.DIRTYPE, {"mode": 0o755})]
    path = "deep"
    for _ in range(levels):
        path += "/d"
        entries.append((path, tarfile.DIRTYPE, {"mode": 0o755}))
    entries.append((path + "/leaf", tarfile.REGTYPE, {"data": b"deep\n"}))
    return tar_of(entries)


def climbing_tar() -> bytes:
    """Names and links that climb out of the root, absolute names, looping symlinks."""
    R, S, L = tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
    return tar_of([
        ("../../etc/passwd", R, {"data": b"root::0:0::/:/bin/sh\n"}),
        ("/etc/absolute", R, {"data": b"abs\n"}),
        ("a/../../../b", R, {"data": b"b\n"}),
        ("./././c", R, {"data": b"c\n"}),
        ("etc/abs-link", S, {"linkname": "/etc/shadow"}),
        ("etc/escape", S, {"linkname": "../../../../etc/shadow"}),
        ("etc/loop-a", S, {"linkname": "loop-b"}),
        ("etc/loop-b", S, {"linkname": "loop-a"}),
        ("hard-escape", L, {"linkname": "../../b"}),
    ])
