"""The ELF collector's choices of what to read: separate debug info is known by its header
alone and never held in memory."""

from __future__ import annotations

import io
import tarfile

from harness.snapshot.elf import ElfCollector
from harness.snapshot.walk import walk


def _tar(entries: dict[str, bytes]) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out


def test_debug_info_is_recorded_from_its_header_and_not_taken() -> None:
    # an x86_64 ELF64 header, then 64 KiB of what would be DWARF
    header = b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x03\x00\x3e\x00" + bytes(44)
    debug = header + bytes(64 << 10)
    collector = ElfCollector(workers=0)
    taken: list[str] = []
    original = collector.take
    collector.take = lambda path, data: (taken.append(path), original(path, data))  # type: ignore[method-assign]
    files = walk(_tar({"usr/lib/debug/.build-id/ab/cdef.debug": debug}), [collector])
    assert "/usr/lib/debug/.build-id/ab/cdef.debug" in files
    assert taken == []
    result = collector.result(files, {})
    assert result["objects"] == {"/usr/lib/debug/.build-id/ab/cdef.debug": {"arch": "x86_64",
                                                                            "type": "DEBUG"}}
