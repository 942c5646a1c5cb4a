"""Compression bombs: image layers a few megabytes large that expand to tens of gibibytes.

A layer is a tar of files of zeros (`FILE` bytes each, under the ustar size field's 8 GiB),
compressed once per `PIECE` of zeros and that piece's stream repeated: gzip and bzip2 both
read concatenated members as one stream, as `docker load` does. Building one takes seconds;
its diff id (the sha256 of the whole expanded tar) takes a minute to compute, so the known
ones are kept in `KNOWN_DIFF_IDS`, each checkable with `diff_id`.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
from collections.abc import Iterator
from pathlib import Path

from testimages import layered
from testimages.hostile import ustar

GIB = 1 << 30
FILE = 4 * GIB
PIECE = 64 << 20

#: expanded size -> sha256 of the bomb tar (computed with `diff_id`, which hashes every byte)
KNOWN_DIFF_IDS: dict[int, str] = {
    20 * GIB: "sha256:38264258448c3fdf93d39f48e4cc72cd1aff6ba15e3590dacb1535a93818d2d0",
    64 * GIB: "sha256:e8c90f3985d3c177077fa0b7f86ddad8701153beb2745bdd470e4375471c9d8e",
}


#: a file of the layer: its path, the bytes it starts with, its size (zeros fill the rest)
File = tuple[str, bytes, int]


def zero_files(expanded: int) -> list[File]:
    """Files of zeros adding up to `expanded` bytes."""
    count, rest = divmod(expanded, FILE)
    sizes = [FILE] * count + ([rest] if rest else [])
    return [(f"bomb/zeros{i:03d}", b"", size) for i, size in enumerate(sizes)]


def parts(files: list[File]) -> Iterator[tuple[bytes, int]]:
    """The tar as (bytes, zeros after them) pairs; the end-of-archive blocks last."""
    for name, start, size in files:
        yield ustar(name.encode(), size=size) + start, size - len(start) + (-size % 512)
    yield b"", 1024


def diff_id(files: list[File]) -> str:
    """The sha256 of the expanded tar, computed (a minute per 30 GiB)."""
    digest, zeros = hashlib.sha256(), bytes(PIECE)
    for head, n in parts(files):
        digest.update(head)
        while n:
            step = min(n, PIECE)
            digest.update(zeros[:step])
            n -= step
    return "sha256:" + digest.hexdigest()


def compressed(files: list[File], kind: str) -> bytes:
    """The layer, gzip or bzip2: one member per header, one repeated per zero piece."""
    pack = (lambda d: gzip.compress(d, 9, mtime=0)) if kind == "gzip" else (lambda d: bz2.compress(d, 9))
    piece = pack(bytes(PIECE))
    out: list[bytes] = []
    for head, n in parts(files):
        if head:
            out.append(pack(head))
        whole, rest = divmod(n, PIECE)
        out += [piece] * whole
        if rest:
            out.append(pack(bytes(rest)))
    return b"".join(out)


def archive(out: Path, files: list[File], kind: str, tag: str) -> Path:
    """A `docker save`-style archive whose one layer holds these files, compressed, its
    diff id correct (known, else computed)."""
    known = KNOWN_DIFF_IDS.get(sum(f[2] for f in files)) if all(
        not start and name.startswith("bomb/") for name, start, _ in files) else None
    layer = compressed(files, kind)
    return layered.docker_archive(out, [layer], tag, diff_ids=[known or diff_id(files)])
