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
    from harness.source.layerdirs import LayerDirsReader
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

        take_path_hashing = collector.take_path_hashing

        def spy_take_path_hashing(path: str, host_path: str, head: bytes, size: int) -> Any:
            digest = take_path_hashing(path, host_path, head, size)
            if digest is not None:  # read there, hashed and parsed, the walk never reads it
                by_path.append(path)
            return digest

        collector.take, collector.take_path = spy_take, spy_take_path  # type: ignore[method-assign]
        collector.take_path_hashing = spy_take_path_hashing  # type: ignore[method-assign]
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


def _crash_on_marker(datas: list[bytes | str], kept_in: str | None = None) -> bytes:
    """The parser, except that it dies (as LIEF would on a segfault) on a marked object."""
    import marshal
    import os

    if any(isinstance(d, bytes) and b"CRASH" in d for d in datas):
        os._exit(139)
    return marshal.dumps([[{"size": len(d)}, None] for d in datas])


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

    from harness.snapshot.elfheader import declares_dynamic

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


def _objects_of(root: Any) -> list[str]:
    import os

    from harness.snapshot.elf import ELF_MAGIC

    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.islink(path) and os.path.isfile(path):
                with open(path, "rb") as f:
                    if f.read(4) == ELF_MAGIC:
                        found.append(path)
    return sorted(found)


def test_symbol_tables_read_raw_equal_lief_reading_them(tmp_path: Any) -> None:
    """The dynamic symbol table is read straight from the object (a LIEF object per symbol
    cost more than the rest of the parse): the same facts as LIEF's reading, for every object
    of Debian minbase and for a 32-bit library with a version script."""
    import subprocess

    import testimages
    from harness.snapshot import elfparse
    from testimages.debian import MINBASE

    (tmp_path / "v.c").write_text("int foo(void){return 1;}\nint bar = 2;\n"
                                  "extern int ext(void);\nint baz(void){return ext();}\n")
    (tmp_path / "v.map").write_text("V1 { global: foo; bar; baz; local: *; };\n")
    lib32 = tmp_path / "lib32.so"
    subprocess.run(["gcc", "-m32", "-nostdlib", "-shared", "-fPIC",
                    f"-Wl,--version-script={tmp_path / 'v.map'}", str(tmp_path / "v.c"), "-o",
                    str(lib32)], check=True)
    paths = [*_objects_of(testimages.rootfs(MINBASE)), str(lib32)]
    assert len(paths) > 600
    for path in paths:
        assert elfparse.read_object_at(path) == elfparse.read_object_at(path, elfparse._full_config()), path
    facts = elfparse.read_object_at(str(lib32))
    assert facts["arch"] == "i686" and facts["imports"] == [["ext", None, None, False]]
    assert [e[:3] for e in facts["exports"] if e[0] != "V1"] == [
        ["bar", "V1", True], ["baz", "V1", True], ["foo", "V1", True]]


def test_a_table_without_section_headers_is_left_to_lief(monkeypatch: Any) -> None:
    """No SHT_DYNSYM section says how long the table is: LIEF reads it (from the hash
    tables), with the same symbols."""
    import glob

    from harness.snapshot import elfparse

    libc = open(glob.glob("/usr/lib/*-linux-gnu/libc.so.6")[0], "rb").read()
    headless = bytearray(libc)
    headless[0x28:0x30] = bytes(8)  # e_shoff
    headless[0x3C:0x40] = bytes(4)  # e_shnum, e_shstrndx
    read_by_lief: list[int] = []
    lief_table = elfparse._lief_table
    monkeypatch.setattr(elfparse, "_lief_table",
                        lambda binary: read_by_lief.append(1) or lief_table(binary))
    intact = elfparse.read_object(libc)
    assert read_by_lief == []
    assert elfparse.read_object(bytes(headless)) == intact and read_by_lief == [1]
    assert len(intact["exports"]) > 2500


def test_the_parser_worker_hashes_the_objects_it_reads(tmp_path: Any, monkeypatch: Any) -> None:
    """Objects of layer folders are hashed by the worker that parses them, and the walk does
    not read them; where the worker gives no digest the walk hashes the file itself."""
    import glob
    import hashlib
    import shutil

    from harness.source.layerdirs import LayerDirsReader
    from harness.snapshot import elf
    from harness.snapshot.walk import PATH_MIN

    layer = tmp_path / "layer"
    (layer / "lib").mkdir(parents=True)
    libc = glob.glob("/usr/lib/*-linux-gnu/libc.so.6")[0]
    shutil.copy(libc, layer / "lib/libc.so.6")
    (layer / "lib/data").write_bytes(b"\x7fELF" + bytes(PATH_MIN))  # not a readable object
    (layer / "lib/text").write_bytes(b"text" * PATH_MIN)
    expected = {f"/lib/{name}": hashlib.sha256((layer / "lib" / name).read_bytes()).hexdigest()
                for name in ("libc.so.6", "data", "text")}

    def snapshot() -> list[str]:
        """The files the walk read itself."""
        reader = LayerDirsReader([layer], "img")
        read: list[str] = []
        chunks, detach = reader.chunks, reader.detach

        def spy_chunks(head: int = 4096) -> Any:
            read.append(reader.host_path() or "")
            return chunks(head)

        def spy_detach() -> Any:
            name, digest = reader.host_path() or "", detach()
            return lambda: read.append(name) or digest()

        reader.chunks, reader.detach = spy_chunks, spy_detach  # type: ignore[method-assign]
        collector = ElfCollector(workers=1)
        files = walk(reader, [collector])
        assert collector.result(files, {})["objects"]["/lib/libc.so.6"]["soname"] == "libc.so.6"
        assert {p: r["sha256"] for p, r in files.items() if r["type"] == "file"} == expected
        return sorted(p.rsplit("/", 1)[1] for p in read)

    assert snapshot() == ["text"]  # both ELF files were hashed by the worker
    monkeypatch.setattr(elf, "_host_file_digest", lambda path, size: None)
    # the fork-started worker carries the patch: the walk hashes the objects itself
    assert snapshot() == ["data", "libc.so.6", "text"]


def test_a_process_that_parsed_and_froze_its_objects_exits_quietly_and_frozen() -> None:
    """The gate freezes what it keeps and never walks it again at exit (harness.gcpause):
    LIEF's bindings, which would report each of their objects still alive as a leak, are
    told not to, so nothing is unfrozen for them (a family's run imports LIEF without
    parsing, for the children it forks)."""
    import subprocess
    import sys

    code = ("import atexit, gc\n"
            "from harness import gcpause\n"
            "from harness.snapshot import elfparse\n"
            "facts = elfparse.read_object(open('/bin/true', 'rb').read())\n"
            "assert 'error' not in facts, facts\n"
            # registered first, run last: after the harness's own exit handlers
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
            "gcpause.settle()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert "leaked" not in done.stderr and "nanobind" not in done.stderr, done.stderr
    assert done.stdout.strip() == "frozen True"
