"""Writing a tar stream in parts: member headers (ustar, PAX records for long names, GNU
base-256 for numbers that do not fit) and a readable stream over a generator of byte parts.

`harness.layermerge` writes the merged layers of an image this way;
`harness.snapshot.tarstream` reads them back.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any


def number(value: int, width: int) -> bytes:
    """An octal tar field, or GNU base-256 when the value does not fit."""
    if 0 <= value < 1 << (3 * (width - 1)):
        return ("%0*o" % (width - 1, value)).encode() + b"\0"
    return bytes([0x80 if value >= 0 else 0xFF]) + (value % (1 << (8 * (width - 1)))).to_bytes(
        width - 1, "big")


def pax_record(key: bytes, value: bytes) -> bytes:
    """One PAX extended header record: its length counts its own digits."""
    body = b" " + key + b"=" + value + b"\n"
    n = len(body)
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def block(name: bytes, kind: bytes, mode: int, uid: int, gid: int, size: int, link: bytes,
          major: int, minor: int) -> bytes:
    """A 512-byte ustar header; names and link targets over 100 bytes are cut here (`header`
    puts the whole of them in a PAX record before it)."""
    head = bytearray(512)
    head[0:min(len(name), 100)] = name[:100]
    for start, width, value in ((100, 8, mode & 0o7777), (108, 8, uid), (116, 8, gid),
                                (124, 12, size), (136, 12, 0), (329, 8, major), (337, 8, minor)):
        head[start:start + width] = number(value, width)
    head[148:156] = b" " * 8
    head[156:157] = kind
    head[157:157 + min(len(link), 100)] = link[:100]
    head[257:265] = b"ustar\x0000"
    head[148:156] = b"%06o\0 " % sum(head)
    return bytes(head)


def header(path: str, kind: bytes, mode: int, uid: int, gid: int, size: int = 0,
           link: str = "", major: int = 0, minor: int = 0) -> bytes:
    """A member's header; names over 100 bytes go in a PAX record before it."""
    name = path.lstrip("/").encode("utf-8", "surrogateescape")
    target = link.encode("utf-8", "surrogateescape")
    target = target.lstrip(b"/") if kind == b"1" else target
    pax = (pax_record(b"path", name) if len(name) > 100 else b"") + (
        pax_record(b"linkpath", target) if len(target) > 100 else b"")
    out = b""
    if pax:
        out = (block(b"././@PaxHeader", b"x", 0o644, 0, 0, len(pax), b"", 0, 0) + pax
               + bytes(-len(pax) % 512))
    return out + block(name, kind, mode, uid, gid, size, target, major, minor)


def link_header(path: str, target: str, mode: int, uid: int, gid: int) -> bytes:
    """A hard link member (to `target`, an earlier member) with its group's owner and mode."""
    return header(path, b"1", mode, uid, gid, link=target)


class PartsReader(io.RawIOBase):
    """A readable stream over a generator of byte parts; each read fills the buffer."""

    def __init__(self, parts: Iterator[bytes | memoryview]) -> None:
        self._parts, self._pending = parts, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view, filled = memoryview(buffer).cast("B"), 0
        while filled < len(view):
            if not self._pending:
                part = next(self._parts, None)
                if part is None:
                    break
                self._pending = memoryview(part).cast("B")
            n = min(len(view) - filled, len(self._pending))
            view[filled:filled + n] = self._pending[:n]
            self._pending = self._pending[n:]
            filled += n
        return filled
