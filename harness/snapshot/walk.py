"""ONE streaming pass over an image's filesystem tar stream.

The stream is read member by member and never unpacked to disk: every regular file is hashed
in chunks, and only files a content collector asks for (package databases, ELF objects,
/etc/shadow) are held in memory, one at a time. Memory therefore grows with the largest such
file, not with the image.
"""

from __future__ import annotations

import hashlib
import stat
import tarfile
from collections.abc import Iterable
from typing import IO, Any, Protocol

from harness.errors import SourceError

CHUNK = 1 << 20
TAR_BUFFER = 1 << 14

#: Entries the engine's init layer adds to every container; they are not part of the image.
ENGINE_INIT_PATHS = frozenset({
    "/.dockerenv", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab",
    "/dev/console", "/dev/pts", "/dev/shm",
})

_TYPES = {
    tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
    tarfile.GNUTYPE_SPARSE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "file", tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


class ContentCollector(Protocol):
    """Something that needs the bytes of some files (a package database, an ELF object)."""

    def wants(self, path: str, head: bytes, size: int) -> bool:
        """Decide from the path, the first bytes and the size whether to take this file."""

    def take(self, path: str, data: bytes) -> None:
        """Receive the whole content of a file this collector wanted."""


def normalize_path(name: str) -> str:
    """Tar member name -> absolute image path (`./usr/bin/ls` -> `/usr/bin/ls`)."""
    while name.startswith("./"):
        name = name[2:]
    name = name.strip("/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        # Never resolve `..`: a hostile tar must not move an entry elsewhere in the record.
        return "/" + "/".join(parts)
    return "/" + "/".join(parts)


def mode_string(mode: int) -> str:
    """Permission bits incl. setuid/setgid/sticky as four octal digits (`4755`)."""
    return format(stat.S_IMODE(mode), "04o")


def walk(stream: IO[bytes], collectors: Iterable[ContentCollector]) -> dict[str, dict[str, Any]]:
    """Read a filesystem tar stream once; return a file record per absolute path.

    Collectors see the content of the files they want as the pass goes by.
    """
    collectors = list(collectors)
    files: dict[str, dict[str, Any]] = {}
    try:
        # a small stream buffer: tarfile re-slices its whole buffer on every 512-byte read
        tar = tarfile.open(fileobj=stream, mode="r|", bufsize=TAR_BUFFER)
    except tarfile.TarError as exc:
        raise SourceError(f"filesystem stream is not a tar archive: {exc}") from exc
    try:
        for member in tar:
            path = normalize_path(member.name)
            if path == "/" or path in ENGINE_INIT_PATHS:
                continue
            record: dict[str, Any] = {
                "type": _TYPES.get(member.type, "other"),
                "mode": mode_string(member.mode),
                "uid": member.uid,
                "gid": member.gid,
            }
            if member.issym():
                record["target"] = member.linkname
            elif member.islnk():
                target = normalize_path(member.linkname)
                record["link"] = target
                first = files.get(target, {})
                record["size"] = first.get("size", 0)
                if "sha256" in first:
                    record["sha256"] = first["sha256"]
            elif member.isreg():
                record["size"] = member.size
                record["sha256"] = _hash_and_collect(tar, member, path, collectors)
            elif member.ischr() or member.isblk():
                record["dev"] = f"{member.devmajor},{member.devminor}"
            files[path] = record
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SourceError(f"filesystem stream ended early or is damaged: {exc}") from exc
    finally:
        tar.close()
    return files


def _hash_and_collect(tar: tarfile.TarFile, member: tarfile.TarInfo, path: str,
                      collectors: list[ContentCollector]) -> str:
    fileobj = tar.extractfile(member)
    digest = hashlib.sha256()
    if fileobj is None:
        return digest.hexdigest()
    head = fileobj.read(CHUNK)
    digest.update(head)
    takers = [c for c in collectors if c.wants(path, head, member.size)]
    parts = [head] if takers else None
    while chunk := fileobj.read(CHUNK):
        digest.update(chunk)
        if parts is not None:
            parts.append(chunk)
    if parts is not None:
        data = b"".join(parts)
        for collector in takers:
            collector.take(path, data)
    return digest.hexdigest()
