"""A `--compat-cache` file (a layer's facts, a kept verdict) is never trusted blindly: a
damaged, truncated or foreign one (marshal loads it, but not as the cache's entries) is a miss,
read again, never a crash nor a digest or ELF facts taken on faith."""

from __future__ import annotations

import marshal
import os
from pathlib import Path
from typing import Any

import pytest

from harness.snapshot import layercache
from harness.snapshot.elf import ElfCollector
from harness.snapshot.walk import WANTS_HEAD

DIGEST = "ab" * 32
#: the head of the test's file, as an entry keeps it
HEAD = b"x" * WANTS_HEAD


class Reader:
    """The walk's layer-folder reader at one file (what `serve` asks of it)."""

    def __init__(self, host: Path) -> None:
        self.host = host
        self.detached = False

    def host_path(self) -> str:
        return str(self.host)

    def host_stat(self) -> os.stat_result:
        return os.lstat(self.host)

    def detach(self) -> None:
        self.detached = True


class Elf(ElfCollector):
    """An ELF collector that wants every file and records the facts it is given."""

    def __init__(self) -> None:
        self.given: dict[str, Any] = {}

    def wants(self, path: str, head: bytes, size: int) -> bool:
        return True

    def known(self, path: str, facts: dict[str, Any]) -> None:
        self.given[path] = facts


def _file(tmp_path: Path) -> tuple[Path, str, tuple[int, int, int, int]]:
    layer = tmp_path / "overlay2" / "abc" / "diff"
    layer.mkdir(parents=True)
    host = layer / "lib.so"
    host.write_bytes(b"x" * 2048)
    st = os.lstat(host)
    return host, str(layer) + "/", (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _serve(tmp_path: Path, shard: Any, collectors: list[Any], raw: bytes | None = None
           ) -> tuple[Any, Any, Reader]:
    host, layer, _ = _file(tmp_path)
    cache = layercache.LayerCache(tmp_path / "cache")
    cache.folder.mkdir()
    cache._path(layer).write_bytes(marshal.dumps(shard) if raw is None else raw)
    reader = Reader(host)
    digest, takers = cache.serve(reader, "/lib.so", 2048, collectors, lambda t, p, s: t)
    return digest, takers, reader


def test_a_sound_entry_is_served(tmp_path: Path) -> None:
    host, layer, ident = _file(tmp_path)
    cache = layercache.LayerCache(tmp_path / "cache")
    cache.folder.mkdir()
    facts = {"type": "DYN", "soname": "lib.so"}
    cache._path(layer).write_bytes(marshal.dumps({"lib.so": (*ident, DIGEST, HEAD,
                                                             marshal.dumps(facts))}))
    elf = Elf()
    reader = Reader(host)
    assert cache.serve(reader, "/lib.so", 2048, [elf], lambda t, p, s: t) == (DIGEST, None)
    assert elf.given == {"/lib.so": facts} and reader.detached


@pytest.mark.parametrize("entry", [
    5, "text", (1, 2), [0, 0, 0, 0, DIGEST, HEAD, None],
], ids=["int", "str", "short-tuple", "list"])
def test_an_entry_of_another_shape_is_a_miss(tmp_path: Path, entry: Any) -> None:
    digest, takers, reader = _serve(tmp_path, {"lib.so": entry}, [])
    assert (digest, takers, reader.detached) == (None, None, False)


@pytest.mark.parametrize("digest", [123, "", "../" * 22, "AB" * 32, b"ab" * 32],
                         ids=["int", "empty", "path", "upper", "bytes"])
def test_a_matching_entry_with_a_bad_digest_is_a_miss(tmp_path: Path, digest: Any) -> None:
    host, layer, ident = _file(tmp_path)
    cache = layercache.LayerCache(tmp_path / "cache")
    cache.folder.mkdir()
    cache._path(layer).write_bytes(marshal.dumps({"lib.so": (*ident, digest, HEAD, None)}))
    reader = Reader(host)
    assert cache.serve(reader, "/lib.so", 2048, [], lambda t, p, s: t) == (None, None)
    assert not reader.detached


@pytest.mark.parametrize("facts", [b"", b"\xff\x00garbage", marshal.dumps([1]),
                                   marshal.dumps({"a": 1})[:-3]],
                         ids=["empty", "garbage", "not-a-dict", "truncated"])
def test_damaged_elf_facts_are_parsed_again(tmp_path: Path, facts: bytes) -> None:
    host, layer, ident = _file(tmp_path)
    cache = layercache.LayerCache(tmp_path / "cache")
    cache.folder.mkdir()
    cache._path(layer).write_bytes(marshal.dumps({"lib.so": (*ident, DIGEST, HEAD, facts)}))
    elf = Elf()
    reader = Reader(host)
    assert cache.serve(reader, "/lib.so", 2048, [elf], lambda t, p, s: t) == (None, [elf])
    assert elf.given == {} and not reader.detached


@pytest.mark.parametrize("raw", [b"", b"\x00\x01\x02", marshal.dumps({"lib.so": 1})[:-2],
                                 b"[" * 10],
                         ids=["empty", "garbage", "truncated", "brackets"])
def test_a_damaged_shard_file_is_a_miss(tmp_path: Path, raw: bytes) -> None:
    digest, takers, reader = _serve(tmp_path, None, [], raw=raw)
    assert (digest, takers, reader.detached) == (None, None, False)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "{", "\xff", "[1, 2]"],
                         ids=["nested-too-deep", "truncated", "not-ascii", "not-an-object"])
def test_a_damaged_verdict_memo_is_a_miss(tmp_path: Path, text: str) -> None:
    """The verdicts kept in `--compat-cache` (harness.gate): a damaged one is judged again,
    never an error of the aspect."""
    from harness.gate import SnapshotStore

    store = SnapshotStore(tmp_path / "cache", "damaged-memo")
    try:
        folder = store.cache_dir / "verdicts"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "k.json").write_text(text, encoding="latin-1")
        assert store.recall_verdict("k") is None
    finally:
        store.cleanup()


@pytest.mark.parametrize("entry", [
    lambda ident: (*ident, DIGEST, None),                      # the shape before heads were kept
    lambda ident: (*ident, DIGEST, HEAD[:-1], None),           # a head shorter than the file's
    lambda ident: (*ident, DIGEST, HEAD + b"x", None),         # longer than WANTS_HEAD
    lambda ident: (*ident, DIGEST, HEAD.decode(), None),       # not bytes
], ids=["old-shape", "short-head", "long-head", "str-head"])
def test_an_entry_of_the_old_shape_or_with_a_bad_head_is_a_miss(tmp_path: Path, entry: Any
                                                                 ) -> None:
    host, layer, ident = _file(tmp_path)
    cache = layercache.LayerCache(tmp_path / "cache")
    cache.folder.mkdir()
    cache._path(layer).write_bytes(marshal.dumps({"lib.so": entry(ident)}))
    reader = Reader(host)
    assert cache.serve(reader, "/lib.so", 2048, [], lambda t, p, s: t) == (None, None)
    assert not reader.detached


def test_facts_served_twice_are_decoded_once_into_dicts_of_their_own(tmp_path: Path) -> None:
    """Two snapshots serving one object (a family's members, their base's libc) get equal
    facts, each in a dict of its own: what the ELF collector adds to one (an image's
    search_missing) is not in the other."""
    host, layer, ident = _file(tmp_path)
    facts = {"type": "DYN", "soname": "lib.so", "needed": ["libc.so.6"]}
    folder = tmp_path / "cache"
    folder.mkdir()
    given = []
    for _ in range(2):
        cache = layercache.LayerCache(folder)
        cache._path(layer).write_bytes(marshal.dumps({"lib.so": (*ident, DIGEST, HEAD,
                                                                 marshal.dumps(facts))}))
        elf = Elf()
        assert cache.serve(Reader(host), "/lib.so", 2048, [elf], lambda t, p, s: t)[0] == DIGEST
        given.append(elf.given["/lib.so"])
    assert given[0] == given[1] == facts and given[0] is not given[1]
    given[0]["search_missing"] = ["/opt/lib"]
    assert "search_missing" not in given[1]
