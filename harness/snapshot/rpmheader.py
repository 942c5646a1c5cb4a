"""rpm header blobs, as rpm stores one per installed package in every database backend.

Layout (rpm's doc/manual/format.md, lib/header.c): an optional 8-byte magic
(`8e ad e8 01 00 00 00 00`, absent from database blobs), the index length `il` and data length
`dl` (big-endian uint32), `il` index entries of 16 bytes (tag, type, offset, count), then `dl`
bytes of data. The first entry is usually a region tag (61-63) whose 16-byte trailer in the data
says how many entries belong to the immutable region; entries after it ("dribbles") were added
at install time and replace region entries of the same tag, as `headerImport` does.

Every offset and count is checked against the blob before it is used: a damaged or hostile blob
raises `ParseError`, never IndexError, struct.error or an allocation sized by a bogus count.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from harness.errors import ParseError

MAGIC = b"\x8e\xad\xe8\x01\x00\x00\x00\x00"
#: rpm's own limits (lib/header_internal.h): at most 64 Ki entries, 256 MiB of data
MAX_ENTRIES = 0xFFFF
MAX_DATA = 0x0FFFFFFF

# data types
CHAR, INT8, INT16, INT32, INT64, STRING, BIN, STRING_ARRAY, I18NSTRING = range(1, 10)
_FIXED = {CHAR: 1, INT8: 1, INT16: 2, INT32: 4, INT64: 8, BIN: 1}
_INT_FORMAT = {CHAR: "B", INT8: "B", INT16: "H", INT32: "I", INT64: "Q"}
_STRINGS = (STRING, STRING_ARRAY, I18NSTRING)

# tags (rpm's include/rpm/rpmtag.h)
HEADERIMAGE, HEADERSIGNATURES, HEADERIMMUTABLE = 61, 62, 63
REGION_TAGS = (HEADERIMAGE, HEADERSIGNATURES, HEADERIMMUTABLE)
HEADERI18NTABLE = 100
SIGMD5 = 261
NAME, VERSION, RELEASE, EPOCH, SUMMARY = 1000, 1001, 1002, 1003, 1004
SIZE, VENDOR, LICENSE, ARCH = 1009, 1011, 1014, 1022
OLDFILENAMES, FILESIZES, FILESTATES, FILEMODES = 1027, 1028, 1029, 1030
FILEDIGESTS, FILELINKTOS, FILEFLAGS, FILEUSERNAME, FILEGROUPNAME = 1035, 1036, 1037, 1039, 1040
SOURCERPM, PROVIDENAME, REQUIRENAME = 1044, 1047, 1049
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
LONGFILESIZES, LONGSIZE, FILEDIGESTALGO, MODULARITYLABEL = 5008, 5009, 5011, 5096

#: FILEDIGESTALGO values (PGP hash algorithm ids); md5 when the tag is absent
DIGEST_ALGOS = {1: "md5", 2: "sha1", 3: "ripemd160", 8: "sha256", 9: "sha384", 10: "sha512",
                11: "sha224"}


class Entry(NamedTuple):
    """One index entry: where a tag's data lies in the data store."""

    tag: int
    type: int
    offset: int
    items: int  # "count" in rpm; a tuple has a count() already


def _text(raw: bytes) -> str:
    # lossless: non-UTF-8 bytes survive as surrogates, as the files aspect stores paths
    return raw.decode("utf-8", "surrogateescape")


class RpmHeader:
    """A parsed header: tag lookups decode lazily from the validated data store."""

    def __init__(self, blob: bytes, origin: str) -> None:
        self.origin = origin
        if blob[:8] == MAGIC:
            blob = blob[8:]
        if len(blob) < 8:
            raise ParseError(f"{origin}: header blob of {len(blob)} bytes is truncated")
        il, dl = struct.unpack_from(">II", blob)
        if not 1 <= il <= MAX_ENTRIES or dl > MAX_DATA:
            raise ParseError(f"{origin}: header claims {il} entries and {dl} data bytes")
        need = 8 + 16 * il + dl
        if len(blob) != need:
            raise ParseError(f"{origin}: header blob is {len(blob)} bytes, its index says {need}"
                             + (" (truncated)" if len(blob) < need else ""))
        self._data = blob[8 + 16 * il:]
        raw = list(map(Entry._make, struct.iter_unpack(">IIiI", blob[8:8 + 16 * il])))
        for entry in raw:
            self._check(entry)
        self._entries = self._merge(raw)

    def _check(self, e: Entry) -> None:
        """Bounds of one entry; strings are bounded again when decoded."""
        dl = len(self._data)
        if not 0 <= e.type <= I18NSTRING:
            raise ParseError(f"{self.origin}: tag {e.tag} has unknown data type {e.type}")
        if not 0 <= e.offset <= dl:
            raise ParseError(f"{self.origin}: tag {e.tag} points outside the data ({e.offset})")
        size = _FIXED.get(e.type)
        room = dl - e.offset
        if (size is not None and e.items * size > room) or (e.type in _STRINGS and e.items > room):
            raise ParseError(f"{self.origin}: tag {e.tag} overruns the data ({e.items} items)")

    def _merge(self, raw: list[Entry]) -> dict[int, Entry]:
        """Tag -> entry, dribble entries replacing region ones (`hdrblobImport`)."""
        first = raw[0]
        region = 0
        if first.tag < HEADERI18NTABLE:  # a region tag opens a v4 header
            if first.type != BIN or first.items != 16:
                raise ParseError(f"{self.origin}: region tag {first.tag} is malformed")
            region = self._region_size(first, len(raw))
        entries: dict[int, Entry] = {}
        for index, entry in enumerate(raw):
            if index == 0 and region:
                continue
            entries[entry.tag] = entry
            if index >= region and entry.tag == BASENAMES:
                entries.pop(OLDFILENAMES, None)
        return entries

    def _region_size(self, first: Entry, il: int) -> int:
        """How many index entries the region covers, from its trailer (`hdrblobVerifyRegion`)."""
        if first.offset == 0:
            return il
        if first.offset + 16 > len(self._data):
            raise ParseError(f"{self.origin}: region trailer lies outside the data")
        tag, typ, offset, count = struct.unpack_from(">IIiI", self._data, first.offset)
        ril = -offset // 16 if offset < 0 and offset % 16 == 0 else 0
        # some old packages name HEADERIMAGE in the trailer of another region: rpm allows it
        if tag not in REGION_TAGS or typ != BIN or count != 16 or not 1 <= ril <= il:
            raise ParseError(f"{self.origin}: region trailer of tag {first.tag} is malformed")
        return ril

    # --- typed access --------------------------------------------------------------------

    def has(self, tag: int) -> bool:
        """True when the header carries the tag."""
        return tag in self._entries

    def strings(self, tag: int) -> list[str]:
        """A string-typed tag as a list (empty when absent); I18N strings give every locale."""
        return [_text(raw) for raw in self._raw_strings(tag)]

    def _raw_strings(self, tag: int) -> list[bytes]:
        entry = self._entries.get(tag)
        if entry is None:
            return []
        if entry.type not in _STRINGS:
            raise ParseError(f"{self.origin}: tag {tag} is not a string (type {entry.type})")
        count = 1 if entry.type == STRING else entry.items
        out: list[bytes] = []
        pos = entry.offset
        for _ in range(count):
            end = self._data.find(b"\0", pos)
            if end < 0:
                raise ParseError(f"{self.origin}: string of tag {tag} runs off the data")
            out.append(self._data[pos:end])
            pos = end + 1
        return out

    def string(self, tag: int) -> str | None:
        """The first string of a tag (the C locale's for I18N strings), None when absent."""
        values = self.strings(tag)
        return values[0] if values else None

    def integers(self, tag: int) -> list[int]:
        """An integer-typed tag as a list of unsigned ints (empty when absent)."""
        entry = self._entries.get(tag)
        if entry is None:
            return []
        fmt = _INT_FORMAT.get(entry.type)
        if fmt is None:
            raise ParseError(f"{self.origin}: tag {tag} is not an integer (type {entry.type})")
        return list(struct.unpack_from(f">{entry.items}{fmt}", self._data, entry.offset))

    def integer(self, tag: int) -> int | None:
        """The first integer of a tag, None when absent or empty."""
        values = self.integers(tag)
        return values[0] if values else None

    def binary(self, tag: int) -> bytes | None:
        """A BIN tag's bytes, None when absent."""
        entry = self._entries.get(tag)
        if entry is None:
            return None
        if entry.type != BIN:
            raise ParseError(f"{self.origin}: tag {tag} is not binary (type {entry.type})")
        return self._data[entry.offset:entry.offset + entry.items]

    # --- derived views -------------------------------------------------------------------

    def paths(self) -> list[str]:
        """Every file path the package owns (DIRNAMES[DIRINDEXES[i]] + BASENAMES[i])."""
        basenames = self.strings(BASENAMES)
        if not basenames:
            return self.strings(OLDFILENAMES)
        dirnames = self.strings(DIRNAMES)
        indexes = self.integers(DIRINDEXES)
        if len(indexes) != len(basenames):
            raise ParseError(f"{self.origin}: {len(basenames)} basenames but "
                             f"{len(indexes)} directory indexes")
        if any(i >= len(dirnames) for i in indexes):
            raise ParseError(f"{self.origin}: a directory index points past the directory list")
        return [dirnames[i] + base for i, base in zip(indexes, basenames)]

    def files(self) -> list[dict[str, Any]]:
        """Per file: path, mode (st_mode), size, digest, user, group, link target, flags."""
        paths = self.paths()
        n = len(paths)
        sizes = self.integers(LONGFILESIZES) or self.integers(FILESIZES)
        columns: dict[str, list[Any]] = {
            "mode": self.integers(FILEMODES), "size": sizes, "digest": self.strings(FILEDIGESTS),
            "user": self.strings(FILEUSERNAME), "group": self.strings(FILEGROUPNAME),
            "link": self.strings(FILELINKTOS), "flags": self.integers(FILEFLAGS),
            "state": self.integers(FILESTATES)}
        for name, values in columns.items():
            if values and len(values) != n:
                raise ParseError(f"{self.origin}: {n} files but {len(values)} file {name}s")
        algo = DIGEST_ALGOS.get(self.integer(FILEDIGESTALGO) or 1, "unknown")
        out: list[dict[str, Any]] = []
        for i, path in enumerate(paths):
            record: dict[str, Any] = {"path": path}
            for name, values in columns.items():
                value = values[i] if values else None
                record[name] = value if value != "" else None
            if record["digest"]:
                record["digest"] = f"{algo}:{record['digest']}"
            out.append(record)
        return out
