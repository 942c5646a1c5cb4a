"""A lean forward-only reader of tar streams (ustar, GNU long names, PAX), for the one pass.

Python's `tarfile` in stream mode re-slices its whole buffer on every 512-byte read and costs
more per member than the engine's export does; this reader parses headers with slices of one
reusable buffer and hands file data out as memoryviews that are hashed without copying.
Malformed input raises `TarFormatError`, never an IndexError or a silent truncation.
As the engine's Go reader, a PAX global header applies to no member; a member's own
`SCHILY.xattr.NAME` records are its `xattrs` (what the engine writes to disk when it applies
a layer).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

BLOCK = 512
BUFFER = 1 << 20
#: GNU/PAX long names and PAX records larger than this are not names: refuse them.
MAX_META = 1 << 20
_XATTR = "SCHILY.xattr."


class TarFormatError(ValueError):
    """The stream is not a well-formed tar archive."""


@dataclass
class Member:
    """One archive entry, as the walk needs it."""

    name: str
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int
    linkname: str
    devmajor: int
    devminor: int
    #: the member's `SCHILY.xattr.` PAX records, by xattr name; None when it has none
    xattrs: dict[str, str] | None = None


def _decode(raw: bytes) -> str:
    # tar names are bytes; surrogateescape keeps non-UTF-8 names lossless (os.fsencode undoes it)
    return raw.decode("utf-8", "surrogateescape")


def _cstr(field: bytes) -> bytes:
    end = field.find(b"\0")
    return field if end < 0 else field[:end]


def _number(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:  # GNU base-256: 0x80 positive, 0xff negative
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0xFF:
            value -= 1 << (8 * (len(field) - 1))
        return value
    text = _cstr(field).strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarFormatError(f"bad {what} field in a tar header (not a number)") from None


def _parse_pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos:pos + 1] == b"\0":
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise TarFormatError("truncated PAX record")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarFormatError("bad PAX record length (not a number)") from None
        if length <= space - pos or pos + length > len(data):
            raise TarFormatError("PAX record length out of range")
        record = data[space + 1:pos + length - 1]  # drop the trailing newline
        key, eq, value = record.partition(b"=")
        if not eq:
            raise TarFormatError("PAX record without '='")
        records[key.decode("utf-8", "replace")] = _decode(value)
        pos += length
    return records


class TarReader:
    """Iterate members of a tar stream; read each member's data before asking for the next."""

    def __init__(self, stream: IO[bytes], seek: bool = False) -> None:
        self._stream = stream
        #: skip member data by seeking, where the stream can: a pass that wants the headers
        #: alone then reads none of the data
        self._seek = seek and stream.seekable()
        self._size = 0
        if self._seek:  # a seek past the end fails nothing: the size tells
            here = stream.tell()
            self._size = stream.seek(0, io.SEEK_END)
            stream.seek(here)
        self._buf = bytearray(BUFFER)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._eof = False
        self._remaining = 0  # data bytes of the current member not yet consumed
        self._padding = 0

    def _fill(self, need: int) -> bool:
        """Make `need` bytes available at _start; False at a clean end of stream."""
        if self._end - self._start >= need:
            return True
        if self._start:
            n = self._end - self._start
            self._buf[:n] = self._buf[self._start:self._end]
            self._start, self._end = 0, n
        while self._end < need and not self._eof:
            got = self._stream.readinto(self._view[self._end:])  # type: ignore[attr-defined]
            if not got:
                self._eof = True
            else:
                self._end += got
        return self._end - self._start >= need

    def _take(self, n: int) -> bytes:
        if not self._fill(n):
            raise TarFormatError("tar stream ends inside a header or record")
        data = bytes(self._view[self._start:self._start + n])
        self._start += n
        return data

    def _skip(self, n: int) -> None:
        buffered = self._end - self._start
        if self._seek and n > buffered:
            want = n - buffered
            self._start = self._end = 0
            if self._stream.tell() + want > self._size:
                raise TarFormatError("tar stream ends inside a member's data")
            self._stream.seek(want, io.SEEK_CUR)
            return
        while n > 0:
            if self._start == self._end and not self._fill(1):
                raise TarFormatError("tar stream ends inside a member's data")
            step = min(n, self._end - self._start)
            self._start += step
            n -= step

    def _read_meta(self, size: int) -> bytes:
        if size > MAX_META:
            raise TarFormatError(f"a {size}-byte long-name/PAX entry is not a name")
        data = self._take(size)
        self._skip(-size % BLOCK)
        return data

    def chunks(self, head: int = 4096) -> Iterator[memoryview]:
        """The current member's data, as views valid until the next iteration step; the
        first view holds at least `head` bytes (or the whole member), for content sniffing."""
        if self._remaining > 0 and not self._fill(min(head, self._remaining)):
            raise TarFormatError("tar stream ends inside a member's data")
        while self._remaining > 0:
            if self._start == self._end and not self._fill(1):
                raise TarFormatError("tar stream ends inside a member's data")
            step = min(self._remaining, self._end - self._start)
            view = self._view[self._start:self._start + step]
            self._start += step
            self._remaining -= step
            yield view
        self._skip(self._padding)
        self._padding = 0

    def __iter__(self) -> Iterator[Member]:
        while True:
            if self._remaining or self._padding:
                self._skip(self._remaining + self._padding)
                self._remaining = self._padding = 0
            long_name: str | None = None
            long_link: str | None = None
            pax: dict[str, str] = {}
            while True:
                if not self._fill(BLOCK):
                    if self._end == self._start:
                        return  # a stream without end-of-archive blocks: accept, as tar does
                    raise TarFormatError("tar stream ends inside a header")
                header = self._take(BLOCK)
                if header.count(0) == BLOCK:
                    return  # end-of-archive marker
                self._check(header)
                kind = header[156:157]
                size = _number(header[124:136], "size")
                if size < 0:
                    raise TarFormatError("negative member size")
                if kind == b"L":
                    long_name = _decode(_cstr(self._read_meta(size)))
                elif kind == b"K":
                    long_link = _decode(_cstr(self._read_meta(size)))
                elif kind == b"x":
                    pax.update(_parse_pax(self._read_meta(size)))
                elif kind == b"g":
                    _parse_pax(self._read_meta(size))  # checked, then ignored as Go does
                else:
                    break
            member = self._member(header, kind, size, long_name, long_link, pax)
            data_size = member.size if kind not in (b"1", b"2", b"3", b"4", b"5", b"6") else 0
            self._remaining = data_size
            self._padding = -data_size % BLOCK
            yield member

    @staticmethod
    def _check(header: bytes) -> None:
        stored = _number(header[148:156], "checksum")
        unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
        if stored != unsigned:
            signed = sum(b - 256 if b > 127 else b for b in header[:148] + header[156:]) + 256
            if stored != signed:
                raise TarFormatError("tar header checksum mismatch (not a tar stream, or damaged)")

    @staticmethod
    def _member(header: bytes, kind: bytes, size: int, long_name: str | None,
                long_link: str | None, pax: dict[str, str]) -> Member:
        name = _decode(_cstr(header[0:100]))
        if header[257:263] == b"ustar\0":  # POSIX ustar: the prefix field extends the name
            prefix = _cstr(header[345:500])
            if prefix:
                name = _decode(prefix) + "/" + name
        name = pax.get("path", long_name if long_name is not None else name)
        linkname = pax.get("linkpath", long_link if long_link is not None else _decode(_cstr(header[157:257])))

        def num(key: str, field: bytes, what: str) -> int:
            if key in pax:
                try:
                    return int(pax[key])
                except ValueError:
                    raise TarFormatError(f"bad PAX {key} (not a number)") from None
            return _number(field, what)

        xattrs = {key[len(_XATTR):]: value for key, value in pax.items()
                  if key.startswith(_XATTR)} if pax else None
        return Member(
            name=name, type=kind, mode=_number(header[100:108], "mode"),
            uid=num("uid", header[108:116], "uid"), gid=num("gid", header[116:124], "gid"),
            size=num("size", header[124:136], "size") if "size" in pax else size,
            linkname=linkname, devmajor=_number(header[329:337], "devmajor"),
            devminor=_number(header[337:345], "devminor"), xattrs=xattrs or None)
