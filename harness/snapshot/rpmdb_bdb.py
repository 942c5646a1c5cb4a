"""rpm's Berkeley DB `Packages` file (rpm < 4.16: CentOS 7/8, RHEL 8, older SUSE).

A Berkeley DB hash database: page 0 is the hash metadata page, then pages of fixed size. The
records live on hash pages (type 2 or 13) as key/data pairs; the key is rpm's 4-byte header
instance number, the data the header blob, usually too big for the page and so stored on a
chain of overflow pages (type 7) that the hash page points to. Byte order is that of the
machine that wrote the file, told by the metadata magic.

Hash pages are found by scanning every page rather than walking buckets: freed pages are
retyped as invalid by Berkeley DB, so a scan sees exactly the live records.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from harness.errors import ParseError

HASH_MAGIC = 0x061561
BTREE_MAGIC = 0x053162
P_HASH_UNSORTED, P_OVERFLOW, P_HASHMETA, P_HASH = 2, 7, 8, 13
H_KEYDATA, H_OFFPAGE = 1, 3
PAGE_HEADER = 26  # lsn 8, pgno 4, prev 4, next 4, entries 2, hf_offset 2, level 1, type 1
DBMETA_CHKSUM = 0x01


def is_bdb(data: bytes) -> bool:
    """True when the bytes start with a Berkeley DB metadata page of any access method."""
    if len(data) < 16:
        return False
    magic = data[12:16]
    return any(struct.unpack(f"{order}I", magic)[0] in (HASH_MAGIC, BTREE_MAGIC)
               for order in "<>")


class _Pages:
    """The file as pages of one size, in the file's byte order."""

    def __init__(self, data: bytes, origin: str) -> None:
        self.data, self.origin = data, origin
        if len(data) < 512:
            raise ParseError(f"{origin}: {len(data)} bytes is too short for a Berkeley DB file")
        order = next((o for o in "<>" if struct.unpack_from(f"{o}I", data, 12)[0] == HASH_MAGIC),
                     None)
        if order is None:
            if is_bdb(data):
                raise ParseError(f"{origin}: a Berkeley DB file, but not a hash database")
            raise ParseError(f"{origin}: not a Berkeley DB hash database (unknown format)")
        self.order = order
        pagesize, = struct.unpack_from(f"{order}I", data, 20)
        encrypt, ptype, metaflags = data[24], data[25], data[26]
        if pagesize < 512 or pagesize > 65536 or pagesize & (pagesize - 1):
            raise ParseError(f"{origin}: bad Berkeley DB page size {pagesize}")
        if ptype != P_HASHMETA:
            raise ParseError(f"{origin}: page 0 is not a hash metadata page (type {ptype})")
        if encrypt or metaflags & DBMETA_CHKSUM:
            # page layouts differ with these; rpm never enables them
            raise ParseError(f"{origin}: encrypted or checksummed Berkeley DB is not supported")
        self.pagesize = pagesize
        last_pgno, = struct.unpack_from(f"{order}I", data, 32)
        self.npages = last_pgno + 1
        if len(data) < self.npages * pagesize:
            raise ParseError(f"{origin}: truncated: {len(data)} bytes hold fewer than the "
                             f"{self.npages} pages of {pagesize} bytes the metadata counts")

    def header(self, pgno: int) -> tuple[int, int, int, int]:
        """(next page, entry count, hf_offset, page type) of a page."""
        base = pgno * self.pagesize
        nxt, entries, hf_offset = struct.unpack_from(f"{self.order}IHH", self.data, base + 16)
        return nxt, entries, hf_offset, self.data[base + 25]

    def offsets(self, pgno: int, entries: int) -> list[int]:
        """The item offsets (`inp[]`) of a hash page, each checked to lie on the page."""
        if PAGE_HEADER + 2 * entries > self.pagesize:
            raise ParseError(f"{self.origin}: page {pgno} claims {entries} items")
        base = pgno * self.pagesize
        inp = list(struct.unpack_from(f"{self.order}{entries}H", self.data, base + PAGE_HEADER))
        if any(not PAGE_HEADER + 2 * entries <= off < self.pagesize for off in inp):
            raise ParseError(f"{self.origin}: page {pgno} has an item offset off the page")
        return inp

    def item(self, pgno: int, inp: list[int], index: int) -> bytes:
        """Item `index` of a hash page resolved to its bytes (inline or overflow chain)."""
        base = pgno * self.pagesize
        off = inp[index]
        # items are packed downward from the page end: each ends where the previous begins
        end = self.pagesize if index == 0 else inp[index - 1]
        if end <= off:
            raise ParseError(f"{self.origin}: page {pgno} item {index} has no length")
        kind = self.data[base + off]
        if kind == H_KEYDATA:
            return self.data[base + off + 1:base + end]
        if kind == H_OFFPAGE:
            if off + 12 > end:
                raise ParseError(f"{self.origin}: page {pgno} item {index} is cut short")
            first, total = struct.unpack_from(f"{self.order}II", self.data, base + off + 4)
            return self.overflow(first, total)
        raise ParseError(f"{self.origin}: page {pgno} item {index} has unsupported type {kind}")

    def overflow(self, pgno: int, total: int) -> bytes:
        """Follow a chain of overflow pages holding `total` bytes."""
        parts: list[bytes] = []
        got = 0
        seen: set[int] = set()
        while pgno:
            if pgno >= self.npages or pgno in seen:
                raise ParseError(f"{self.origin}: overflow chain reaches bad page {pgno}")
            seen.add(pgno)
            nxt, _entries, length, ptype = self.header(pgno)
            if ptype != P_OVERFLOW or PAGE_HEADER + length > self.pagesize:
                raise ParseError(f"{self.origin}: page {pgno} is not a sound overflow page")
            start = pgno * self.pagesize + PAGE_HEADER
            parts.append(self.data[start:start + length])
            got += length
            if got > total:
                break
            pgno = nxt
        if got != total:
            raise ParseError(f"{self.origin}: overflow record holds {got} bytes, expected {total}")
        return b"".join(parts)


def iter_blobs(data: bytes, origin: str) -> Iterator[tuple[int, bytes]]:
    """(header instance number, header blob) for every package in a `Packages` file."""
    pages = _Pages(data, origin)
    for pgno in range(1, pages.npages):
        _nxt, entries, _hf, ptype = pages.header(pgno)
        if ptype not in (P_HASH, P_HASH_UNSORTED):
            continue
        if entries % 2:
            raise ParseError(f"{origin}: hash page {pgno} has an odd number of items")
        inp = pages.offsets(pgno, entries)
        for index in range(0, entries, 2):
            key = pages.item(pgno, inp, index)
            if len(key) != 4:
                raise ParseError(f"{origin}: page {pgno} has a {len(key)}-byte key, not an "
                                 "rpm header number")
            number, = struct.unpack(f"{pages.order}I", key)
            if number == 0:
                continue  # rpm's record of the next free instance number, not a package
            yield number, pages.item(pgno, inp, index + 1)
