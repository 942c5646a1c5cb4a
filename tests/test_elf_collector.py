"""The ELF collector's choices of what to read: separate debug info is known by its header
alone and never held in memory."""

from __future__ import annotations

import io
import tarfile
from typing import Any

from harness.snapshot.elf import ElfCollector
from testimages.hostile import tar_of
from harness.snapshot.walk import walk


def _tar(entries: dict[str, bytes]) -> io.BytesIO:
    return io.BytesIO(tar_of([(name, tarfile.REGTYPE, {"data": data})
                              for name, data in entries.items()]))


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


def test_objects_read_by_host_path_give_the_same_facts() -> None:
    """Large objects of layer folders are parsed from their host path: same facts as bytes."""
    import os

    import testimages
    from harness.snapshot import elfparse
    from harness.snapshot.elf import ELF_MAGIC
    from testimages.debian import MINBASE

    root = testimages.rootfs(MINBASE)
    compared = 0
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            if data.startswith(ELF_MAGIC):
                assert elfparse.read_object_at(path) == elfparse.read_object(data), path
                compared += 1
    assert compared > 100


def test_the_walk_hands_objects_on_the_host_over_by_path(tmp_path: Any) -> None:
    """A layer folder's ELF objects reach the collector as host paths, large (never held in
    memory) and small (no copy to send to the parser) alike; an object whose host name is
    not UTF-8, every object of a tar stream, and the loader's configuration, as bytes."""
    import os
    import shutil

    import testimages
    from harness.layerdirs import LayerDirsReader
    from harness.snapshot.walk import PATH_MIN
    from testimages.debian import MINBASE

    root = testimages.rootfs(MINBASE)
    libc = next(root.glob("usr/lib/*/libc.so.6"))
    pthread = next(root.glob("usr/lib/*/libpthread.so.0"))
    layer = tmp_path / "layer"
    (layer / "lib").mkdir(parents=True)
    shutil.copy(libc, layer / "lib/libc.so.6")
    shutil.copy(pthread, layer / "lib/libpthread.so.0")
    shutil.copy(pthread, os.path.join(os.fsencode(layer / "lib"), b"lib\xff.so"))
    (layer / "etc/ld.so.conf.d").mkdir(parents=True)
    (layer / "etc/ld.so.conf.d/extra.conf").write_text("/opt/lib\n")
    assert (layer / "lib/libc.so.6").stat().st_size >= PATH_MIN > (layer / "lib/libpthread.so.0").stat().st_size

    def spy() -> tuple[ElfCollector, list[str], list[str]]:
        collector = ElfCollector(workers=0)
        by_path: list[str] = []
        by_bytes: list[str] = []
        take, take_path = collector.take, collector.take_path

        def spy_take(path: str, data: bytes) -> None:
            by_bytes.append(path)
            take(path, data)

        def spy_take_path(path: str, host_path: str, head: bytes) -> bool:
            taken = take_path(path, host_path, head)
            if taken:
                by_path.append(path)
            return taken

        collector.take, collector.take_path = spy_take, spy_take_path  # type: ignore[method-assign]
        return collector, by_path, by_bytes

    collector, by_path, by_bytes = spy()
    files = walk(LayerDirsReader([layer], "img"), [collector])
    assert sorted(by_path) == ["/lib/libc.so.6", "/lib/libpthread.so.0"]
    # the loader's configuration is text for the collector itself, never an object to parse
    assert by_bytes == ["/etc/ld.so.conf.d/extra.conf", "/lib/lib\udcff.so"]
    result = collector.result(files, {})
    assert result["loader_config"] == {"/etc/ld.so.conf.d/extra.conf": "/opt/lib\n"}
    objects = result["objects"]
    assert "/etc/ld.so.conf.d/extra.conf" not in objects
    assert objects["/lib/libc.so.6"]["soname"] == "libc.so.6"
    assert objects["/lib/libc.so.6"]["exports"]
    assert objects["/lib/libpthread.so.0"] == objects["/lib/lib\udcff.so"]
    assert objects["/lib/libpthread.so.0"]["soname"] == "libpthread.so.0"

    collector, by_path, by_bytes = spy()
    walk(_tar({"lib/libpthread.so.0": pthread.read_bytes()}), [collector])
    assert by_path == [] and by_bytes == ["/lib/libpthread.so.0"]


def _crash_on_marker(datas: list[bytes | str]) -> list[dict[str, Any]]:
    """The parser, except that it dies (as LIEF would on a segfault) on a marked object."""
    import os

    if any(isinstance(d, bytes) and b"CRASH" in d for d in datas):
        os._exit(139)
    return [{"size": len(d)} for d in datas]


def test_a_parser_crash_names_its_object_and_the_rest_are_parsed(monkeypatch: Any) -> None:
    """A worker that dies fails every batch its pool held: each object of those is parsed
    again alone, so only the object that kills the parser is recorded as such (a
    multiprocessing.Pool would have waited for the dead worker forever)."""
    from harness.snapshot import elf

    monkeypatch.setattr(elf, "_parse_batch", _crash_on_marker)
    monkeypatch.setattr(elf, "BATCH_OBJECTS", 4)
    collector = ElfCollector(workers=1)
    names = [f"/lib/lib{i}.so" for i in range(12)]
    for i, name in enumerate(names):
        collector.take(name, elf.ELF_MAGIC + (b"CRASH" if i == 5 else b"fine") + bytes(i))
    objects = collector.result({}, {})["objects"]
    assert objects.pop("/lib/lib5.so") == {"error": "the parser crashed on this object"}
    assert objects == {name: {"size": 8 + i} for i, name in enumerate(names) if i != 5}
    assert collector._pool is None  # shut down, no worker left behind


def test_parsing_stops_after_repeated_crashes(monkeypatch: Any) -> None:
    """Each crash costs a new worker: past MAX_CRASHES the rest are recorded unparsed."""
    from harness.snapshot import elf

    monkeypatch.setattr(elf, "_parse_batch", _crash_on_marker)
    monkeypatch.setattr(elf, "MAX_CRASHES", 2)
    collector = ElfCollector(workers=1)
    for i in range(4):
        collector.take(f"/lib/bad{i}.so", elf.ELF_MAGIC + b"CRASH")
    errors = [facts["error"] for facts in collector.result({}, {})["objects"].values()]
    assert errors == ["the parser crashed on this object"] * 2 + [
        "not parsed: the parser crashed 2 times on this image"] * 2


def test_program_headers_say_whether_an_object_is_dynamic() -> None:
    """Read from the raw table, whatever LIEF keeps of a truncated file's segments."""
    import glob

    from harness.snapshot.elf import declares_dynamic

    libc = open(glob.glob("/usr/lib/*-linux-gnu/libc.so.6")[0], "rb").read()
    whole = lambda offset, size: libc[offset:offset + size]  # noqa: E731
    assert declares_dynamic(libc, whole)
    cut = libc[:3000]  # the table itself is at the start: a truncated file still lists it
    assert declares_dynamic(cut, lambda offset, size: cut[offset:offset + size])
    no_table = libc[:64]
    assert not declares_dynamic(no_table, lambda offset, size: no_table[offset:offset + size])
    far = bytearray(libc[:64])
    far[32:40] = (1 << 63).to_bytes(8, "little")  # e_phoff past any file
    assert not declares_dynamic(bytes(far), whole)
