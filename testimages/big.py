"""A synthetic ~4 GB image for the benchmark: a few huge files and 100,000 small ones, on
top of Debian minbase (so the naive peer's find/sha256sum/dpkg-query can run inside it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from testimages import Recipe
from testimages.debian import MINBASE

HUGE_FILES = 4
HUGE_SIZE = 1 << 30
SMALL_FILES = 100_000
PER_DIR = 1000


def _big(root: Path) -> None:
    block = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(1 << 15))  # 1 MiB
    (root / "opt/big").mkdir(parents=True)
    for n in range(HUGE_FILES):
        with open(root / f"opt/big/blob{n}", "wb") as out:
            for i in range(HUGE_SIZE // len(block)):
                # vary each block so no layer of the stack can shortcut the content
                out.write(i.to_bytes(8, "big") + block[8:])
    for d in range(SMALL_FILES // PER_DIR):
        folder = root / f"opt/small/d{d:03d}"
        folder.mkdir(parents=True)
        for f in range(PER_DIR):
            (folder / f"f{f:04d}.txt").write_bytes(f"file {d}/{f}\n".encode() * 8)


SYNTHETIC_4G = Recipe("synthetic-4g", _big, parent=MINBASE)


def _jdk(root: Path) -> None:
    from testimages.runtimes import mmdebstrap

    # a JDK with its sources, debug symbols and build tools: a real Java build image's size
    mmdebstrap(root, ("openjdk-17-jdk-headless", "openjdk-17-source", "openjdk-17-dbg",
                      "maven", "gradle"))


def _jdk_recipe() -> Recipe:
    from testimages.runtimes import DEBIAN

    return Recipe("bench-jdk17", _jdk, changes=('CMD ["jshell"]',), extra=DEBIAN)


#: a ~1 GB runtime image for the benchmark (bookworm with openjdk-17's JDK and maven)
JDK17 = _jdk_recipe()
