"""Facts per layer folder (harness.snapshot.layercache): a family of images built on one base
gives, through the layer cache, cold or warm, byte-identical baselines to each image read
alone through its export; the cache is really used; a file changed in place is read again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import testimages
from harness.config import ImageSpec
from harness.gate import SnapshotStore
from harness.source.layerdirs import LayerDirsReader
from harness.snapshot import layercache, subtrees
from harness.snapshot.walk import walk
from testimages import family, layered, tiny
from conftest import Heads, write_baselines as update_baselines


def write_baselines(ref: str, root: Path, cache: Path, read: str) -> dict[str, bytes]:
    """conftest's, which must write something."""
    found = update_baselines(ref, root, cache, read)
    assert found, f"{ref}: no baseline written"
    return found


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Image paths the cache served (their files not read)."""
    paths: list[str] = []
    serve = layercache.LayerCache.serve

    def counting(self: layercache.LayerCache, reader: Any, path: str, *args: Any
                 ) -> tuple[str | None, list[Any] | None]:
        known = serve(self, reader, path, *args)
        if known[0] is not None:
            paths.append(path)
        return known
    monkeypatch.setattr(layercache.LayerCache, "serve", counting)
    return paths


@pytest.mark.docker
def test_a_family_gives_the_baselines_of_each_image_alone(docker_engine: Any, tmp_path: Path,
                                                         served: list[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    images = {"base": family.build_base(), "busybox": family.build_member("busybox"),
              "rt-perl": family.build_member("rt-perl"), "libs": family.build_member("libs"),
              # whiteouts, an opaque folder, modes changed in a later layer, hard links
              "layered": layered.build_layered(testimages.build(tiny.BASE))}
    alone = {name: write_baselines(ref, tmp_path / "export" / name,
                                   tmp_path / f"cache-{name}", "export")
             for name, ref in images.items()}
    shared = tmp_path / "family-cache"
    replayed: list[bytes] = []
    replay = subtrees.Recorder.replay

    def counting(self: subtrees.Recorder, key: Any, *args: Any) -> bool:
        done = replay(self, key, *args)
        replayed.extend([key[0]] if done else [])
        return done
    monkeypatch.setattr(subtrees.Recorder, "replay", counting)
    for name, ref in images.items():  # one cache: each member finds the base's layer known
        assert write_baselines(ref, tmp_path / "cold" / name, shared, "layers") == alone[name], name
    assert any(p.startswith("/usr/lib/x86_64-linux-gnu/libc.so") for p in served), \
        "members found the base's libc known"
    # and, in this process, the base's folders they hold unchanged replayed, not listed
    assert b"usr/share/zoneinfo" in replayed or b"usr/share" in replayed, replayed
    # a later CI run keeping the cache: no snapshot of any image, the layers' facts only
    warm = tmp_path / "warm-cache"
    warm.mkdir()
    for folder in shared.glob("layers-*"):
        shutil.copytree(folder, warm / folder.name)
    for name, ref in images.items():
        served.clear()
        assert write_baselines(ref, tmp_path / "warm" / name, warm, "layers") == alone[name], name
        assert served, f"{name}: nothing served from the kept layer cache"


def test_a_file_changed_in_place_is_read_again(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    layer = tmp_path / "overlay2" / "abc" / "diff"
    (layer / "etc").mkdir(parents=True)
    target = layer / "etc" / "data"
    target.write_bytes(b"one\n" * 1024)
    folder = tmp_path / "cache"

    def snapshot() -> dict[str, dict[str, Any]]:
        with layercache.using(folder) as cache:
            files = walk(LayerDirsReader([layer], "test"), [])
            cache.learn(files, {})
            cache.save()
        return files

    first = snapshot()
    assert snapshot()["/etc/data"]["sha256"] == first["/etc/data"]["sha256"]
    served: list[str] = []
    serve = layercache.LayerCache.serve

    def counting(self: layercache.LayerCache, *args: Any) -> tuple[str | None, list[Any] | None]:
        known = serve(self, *args)
        served.extend(["hit"] if known[0] is not None else [])
        return known
    monkeypatch.setattr(layercache.LayerCache, "serve", counting)
    assert snapshot()["/etc/data"]["sha256"] == first["/etc/data"]["sha256"] and served
    served.clear()
    target.write_bytes(b"two, longer\n" * 1024)
    changed = snapshot()["/etc/data"]
    assert changed["size"] == 12 * 1024 and not served
    assert changed["sha256"] == hashlib.sha256(b"two, longer\n" * 1024).hexdigest()


@pytest.mark.docker
@pytest.mark.parametrize("here", [False, True], ids=["workers", "parsing-here"])
def test_an_object_met_again_is_not_parsed_again(docker_engine: Any, tmp_path: Path,
                                                 here: bool) -> None:
    """ELF facts are kept by content digest too: an object in a layer the cache does not know
    (here: the layer shards dropped, the objects kept) is served by its sha256, not parsed.
    The kept facts are marked, and the mark comes back. So too when the objects are parsed
    in the snapshot's own process (`parsing_here`, as a snapshot taken ahead parses them)."""
    import contextlib

    from harness.snapshot.elf import parsing_here

    ref, libc = family.build_base(), "/usr/lib/x86_64-linux-gnu/libc.so.6"

    def snapshot(cache: Path) -> Any:
        store = SnapshotStore(cache, f"layercache-test-{os.getpid()}", read="layers")
        try:
            with parsing_here() if here else contextlib.nullcontext():
                return store.snapshot(store.find_image(ImageSpec("img", ref)))
        finally:
            store.cleanup()

    first = snapshot(tmp_path / "c1")
    digest = first.files[libc]["sha256"]
    kept = list((tmp_path / "c1").glob(f"layers-*/objects/{digest[:2]}/{digest}"))
    assert len(kept) == 1, "libc's facts kept by its digest"
    again = tmp_path / "c2"
    for objects in (tmp_path / "c1").glob("layers-*/objects"):
        shutil.copytree(objects, again / objects.parent.name / "objects")
    target = next(again.glob(f"layers-*/objects/{digest[:2]}/{digest}"))
    import marshal
    facts = marshal.loads(target.read_bytes())
    assert facts == {k: v for k, v in first.abi["objects"][libc].items() if k != "search_missing"}
    target.write_bytes(marshal.dumps({**facts, "soname": "marked.so.6"}))
    second = snapshot(again)
    assert second.abi["objects"][libc]["soname"] == "marked.so.6"
    assert second.files[libc]["sha256"] == digest


def _layer(tmp_path: Path) -> Path:
    """One layer folder: a small file, a large one, a private key, an empty file."""
    layer = tmp_path / "overlay2" / "abc" / "diff"
    (layer / "etc").mkdir(parents=True)
    (layer / "etc" / "small").write_bytes(b"tiny\n")
    (layer / "etc" / "large").write_bytes(bytes(range(256)) * 512)
    (layer / "etc" / "key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + b"A" * 2000)
    (layer / "etc" / "empty").write_bytes(b"")
    return layer


def _snapshot(layer: Path, folder: Path, collectors: list[Any]) -> dict[str, dict[str, Any]]:
    with layercache.using(folder) as cache:
        files = walk(LayerDirsReader([layer], "test"), collectors)
        cache.learn(files, {})
        cache.save()
    return files


def test_a_known_file_is_not_opened_and_wants_sees_its_kept_head(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second walk over a known layer opens no file, and the collectors are shown the
    same heads, of at most WANTS_HEAD bytes, as the walk that read the files."""
    from harness.snapshot.secrets import SecretsCollector
    from harness.snapshot.walk import WANTS_HEAD

    layer, folder = _layer(tmp_path), tmp_path / "cache"
    cold, cold_secrets = Heads(), SecretsCollector()
    first = _snapshot(layer, folder, [cold, cold_secrets])
    assert cold.seen["/etc/large"] == (bytes(range(256)) * 512)[:WANTS_HEAD]
    assert cold.seen["/etc/small"] == b"tiny\n" and cold.seen["/etc/empty"] == b""
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(os.fsdecode(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(os, "open", counting_open)
    warm, warm_secrets = Heads(), SecretsCollector()
    assert _snapshot(layer, folder, [warm, warm_secrets]) == first
    assert not [p for p in opened if p.startswith(str(layer))], opened
    assert warm.seen == cold.seen
    assert warm_secrets.result() == cold_secrets.result() == {"/etc/key.pem": "private-key"}


def test_the_collectors_decide_on_the_head_the_cache_keeps(tmp_path: Path) -> None:
    """A known file is decided on its entry's head, not on its bytes: a head marked in the
    cache is what the collectors see (here the secrets collector finds a key in it)."""
    import marshal

    from harness.snapshot.secrets import SecretsCollector

    layer, folder = _layer(tmp_path), tmp_path / "cache"
    _snapshot(layer, folder, [])
    (shard,) = folder.glob("*.layer")
    entries = marshal.loads(shard.read_bytes())
    ino, size, mtime, ctime, digest, head, facts = entries["etc/large"]
    marked = (b"-----BEGIN RSA PRIVATE KEY-----" + head)[:len(head)]
    entries["etc/large"] = (ino, size, mtime, ctime, digest, marked, facts)
    shard.write_bytes(marshal.dumps(entries))
    secrets = SecretsCollector()
    _snapshot(layer, folder, [secrets])
    assert secrets.result() == {"/etc/key.pem": "private-key", "/etc/large": "private-key"}


def test_small_files_are_kept_within_a_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    """At most MAX_SMALL entries of small files are learnt, and a shard holding more than a
    cache may hold (written under a larger bound) has them read again, with the same
    snapshot."""
    import marshal

    layer, folder = tmp_path / "overlay2" / "abc" / "diff", tmp_path / "cache"
    layer.mkdir(parents=True)
    for i in range(6):
        (layer / f"f{i}").write_bytes(b"%d\n" % i)
    monkeypatch.setattr(layercache, "MAX_SMALL", 4)
    first = _snapshot(layer, folder, [])
    (shard,) = folder.glob("*.layer")
    assert len(marshal.loads(shard.read_bytes())) == 4
    monkeypatch.setattr(layercache, "MAX_SMALL", 3)
    served: list[str] = []
    serve = layercache.LayerCache.serve

    def counting(self: layercache.LayerCache, reader: Any, path: str, *args: Any
                 ) -> tuple[str | None, list[Any] | None]:
        known = serve(self, reader, path, *args)
        served.extend([path] if known[0] is not None else [])
        return known
    monkeypatch.setattr(layercache.LayerCache, "serve", counting)
    assert _snapshot(layer, folder, []) == first and served == []


def test_a_snapshot_notes_at_most_max_learnt_larger_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_LEARNT larger files a snapshot notes none (each note holds the file's head
    until it is learnt): the rest are read as without a cache, the snapshot the same, and the
    next snapshot learns the next ones."""
    import marshal

    layer, folder = tmp_path / "overlay2" / "abc" / "diff", tmp_path / "cache"
    layer.mkdir(parents=True)
    for i in range(7):
        (layer / f"f{i}").write_bytes(bytes([65 + i]) * 2048)
    monkeypatch.setattr(layercache, "MAX_LEARNT", 3)
    noted: list[int] = []
    learn = layercache.LayerCache.learn

    def counting(self: layercache.LayerCache, *args: Any) -> None:
        noted.append(len(self._misses))
        learn(self, *args)
    monkeypatch.setattr(layercache.LayerCache, "learn", counting)
    first = _snapshot(layer, folder, [])
    (shard,) = folder.glob("*.layer")
    assert noted == [3] and len(marshal.loads(shard.read_bytes())) == 3
    assert _snapshot(layer, folder, []) == first
    assert noted == [3, 3] and len(marshal.loads(shard.read_bytes())) == 6


def test_a_shard_is_read_once_while_its_file_is_unchanged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A later snapshot of the process (or a child it forks) finds a shard it read or wrote
    loaded; one rewritten since is read again; one past `MAX_LOADED` entries is not kept."""
    import marshal

    monkeypatch.setattr(layercache, "_loaded", {})
    layer, folder = _layer(tmp_path), tmp_path / "cache"
    first = _snapshot(layer, folder, [])
    reads: list[int] = []
    loads = marshal.loads

    def counting(data: bytes) -> Any:
        reads.append(len(data))
        return loads(data)
    monkeypatch.setattr(layercache.marshal, "loads", counting)
    assert _snapshot(layer, folder, []) == first and not reads  # kept as written
    (shard,) = folder.glob("*.layer")
    entries = loads(shard.read_bytes())
    shard.write_bytes(marshal.dumps(entries))  # the same entries, another file
    assert _snapshot(layer, folder, []) == first and len(reads) == 1
    monkeypatch.setattr(layercache, "MAX_LOADED", 1)
    layercache._loaded.clear()
    for _ in range(2):
        assert _snapshot(layer, folder, []) == first
    assert len(reads) == 3 and not layercache._loaded
