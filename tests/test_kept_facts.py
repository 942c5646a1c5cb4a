"""A kept snapshot names the facts the layer cache keeps by content digest instead of holding
them (harness.snapshot `Snapshot.keep`): most of an image's ELF facts are its large
libraries', which the cache keeps anyway. A recall puts them back, from its process's
memory or the cache's files, and gives the snapshot taken; a reference the cache cannot
serve (removed, damaged, or not a digest at all) makes the snapshot be taken again."""

from __future__ import annotations

import marshal
import os
from pathlib import Path
from typing import Any

import pytest

from harness.config import ImageSpec
from harness.gate import SnapshotStore
from harness.snapshot import Snapshot, _unframed, layercache
from harness.snapshot.elf import KEPT_MIN, kept_facts_path
from testimages import family

FIELDS = ("image", "metadata", "packages", "package_dbs", "accounts", "abi", "secrets",
          "ownership", "hidden", "errors")


def _same(a: Snapshot, b: Snapshot) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in FIELDS) and dict(a.files) == dict(b.files)


def _references(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        head, _ = _unframed(f, os.fstat(f.fileno()).st_size)
    return {p: facts for p, facts in head["abi"]["objects"].items() if "@facts" in facts}


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any
         ) -> tuple[SnapshotStore, Snapshot, Path]:
    store = SnapshotStore(tmp_path_factory.mktemp("kept"), "test-kept")
    try:
        info = store.find_image(ImageSpec("base", family.build_base()))
        snap = store.snapshot(info)
    finally:
        store.cleanup()
    return store, snap, store._cache_path(info)


def test_the_large_objects_facts_are_kept_by_digest_and_recalled(
        kept: tuple[SnapshotStore, Snapshot, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    store, snap, path = kept
    refs = _references(path)
    objects = snap.abi["objects"]
    large = {p for p, facts in objects.items()
             if (snap.files[p].get("size") or 0) >= KEPT_MIN and "error" not in facts}
    assert refs and set(refs) <= large and len(refs) >= len(large) * 0.9
    assert all(set(ref) <= {"@facts", "search_missing"} for ref in refs.values())
    recalled = Snapshot.recall(path, store._layer_folder())
    assert recalled is not None and _same(recalled, snap)
    # a new process: nothing decoded yet, read from the cache's files
    monkeypatch.setattr(layercache, "_decoded", {})
    recalled = Snapshot.recall(path, store._layer_folder())
    assert recalled is not None and _same(recalled, snap)
    assert Snapshot.recall(path) is None  # references, and no cache to read them in


def test_a_reference_the_cache_cannot_serve_makes_the_snapshot_be_taken_again(
        kept: tuple[SnapshotStore, Snapshot, Path], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    store, snap, path = kept
    folder = store._layer_folder()
    digest = next(iter(_references(path).values()))["@facts"]
    where = Path(kept_facts_path(str(folder / "objects"), digest))
    saved = where.read_bytes()
    monkeypatch.setattr(layercache, "_decoded", {})
    try:
        where.write_bytes(b"\x00damaged")
        assert Snapshot.recall(path, folder) is None
        where.unlink()
        assert Snapshot.recall(path, folder) is None
        assert not layercache.holds_facts(folder, digest)
        # the gate takes it again (and keeps the facts again)
        again = SnapshotStore(store.cache_dir, "test-kept-again")
        try:
            retaken = again.snapshot_of(ImageSpec("base", family.build_base()))
        finally:
            again.cleanup()
        assert _same(retaken, snap)
    finally:
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_bytes(saved)


@pytest.mark.parametrize("digest", ["../../../etc/passwd", "ab" * 32 + "/x", 7, "AB" * 32])
def test_a_reference_that_is_not_a_digest_is_never_read(
        kept: tuple[SnapshotStore, Snapshot, Path], tmp_path: Path, digest: Any) -> None:
    """The cache is the gate's own, but a damaged or planted file must not name a path."""
    store, snap, path = kept
    with path.open("rb") as f:
        left = os.fstat(f.fileno()).st_size
        head, left = _unframed(f, left)
        rest = f.read()
    victim = next(iter(_references(path)))
    head["abi"]["objects"][victim] = {"@facts": digest}
    planted = tmp_path / "planted.snapshot"
    data = marshal.dumps(head)
    planted.write_bytes(len(data).to_bytes(8, "little") + data + rest)
    assert Snapshot.recall(planted, store._layer_folder()) is None
