"""rpm's ndb `Packages.db` (SUSE; rpm's lib/backend/ndb/rpmpkg.c), all little-endian.

The file starts with pages of 16-byte slots; the first two slots hold the file header
(`RpmP`, version 0, generation, slot page count, next package index). Each other slot is
(`Slot`, package index, block offset, block count), index 0 marking a free slot. A slot points
at a blob in 16-byte blocks: a 16-byte head (`BlbS`, package index, generation, length), the
header blob, padding, and a 12-byte tail (adler32 of everything before it, length, `BlbE`).
The checksum is verified, so a damaged blob is an error rather than a wrong package.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from harness.errors import ParseError

HEADER_MAGIC = b"RpmP"
SLOT_MAGIC = b"Slot"
BLOB_MAGIC = b"BlbS"
TAIL_MAGIC = b"BlbE"
PAGE_SIZE = 4096
SLOT_SIZE = 16
BLOCK_SIZE = 16
HEAD_SIZE = 16
TAIL_SIZE = 12
FIRST_SLOT = 2  # the file header occupies the first two slots


def is_ndb(data: bytes) -> bool:
    """True when the bytes start with an ndb package file header."""
    return data[:4] == HEADER_MAGIC


def iter_blobs(data: bytes, origin: str) -> Iterator[tuple[int, bytes]]:
    """(package index, header blob) for every package in a `Packages.db` file."""
    if len(data) < 32 or not is_ndb(data):
        raise ParseError(f"{origin}: not an rpm ndb package file (unknown format or truncated)")
    version, _generation, slot_pages = struct.unpack_from("<III", data, 4)
    if version != 0:
        raise ParseError(f"{origin}: unsupported ndb version {version}")
    slot_end = slot_pages * PAGE_SIZE
    if slot_pages == 0 or slot_end > len(data):
        raise ParseError(f"{origin}: truncated: {slot_pages} slot pages do not fit in "
                         f"{len(data)} bytes")
    for offset in range(FIRST_SLOT * SLOT_SIZE, slot_end, SLOT_SIZE):
        magic, index, block, blocks = struct.unpack_from("<4sIII", data, offset)
        if magic != SLOT_MAGIC:
            raise ParseError(f"{origin}: damaged slot at byte {offset}")
        if index == 0:
            continue
        yield index, _blob(data, origin, index, block, blocks, slot_end)


def _blob(data: bytes, origin: str, index: int, block: int, blocks: int, slot_end: int) -> bytes:
    start, end = block * BLOCK_SIZE, (block + blocks) * BLOCK_SIZE
    where = f"{origin}: package {index} (blocks {block}+{blocks})"
    if start < slot_end or end > len(data) or end - start < HEAD_SIZE + TAIL_SIZE:
        raise ParseError(f"{where}: blob lies outside the file's data (truncated?)")
    magic, head_index, _generation, length = struct.unpack_from("<4sIII", data, start)
    if magic != BLOB_MAGIC or head_index != index:
        raise ParseError(f"{where}: blob head does not match its slot")
    if HEAD_SIZE + length + TAIL_SIZE > end - start:
        raise ParseError(f"{where}: blob of {length} bytes overruns its blocks")
    tail = end - TAIL_SIZE
    checksum, tail_length, tail_magic = struct.unpack_from("<II4s", data, tail)
    if tail_magic != TAIL_MAGIC or tail_length != length:
        raise ParseError(f"{where}: blob tail is damaged")
    if zlib.adler32(data[start:tail]) != checksum:
        raise ParseError(f"{where}: blob checksum mismatch")
    return data[start + HEAD_SIZE:start + HEAD_SIZE + length]
