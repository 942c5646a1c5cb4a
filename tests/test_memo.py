"""Bounded memos (harness.memo), the store holding the last images' snapshots only, and the
plugin running an image's tests together, which lets them be that small."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.config import ImageSpec
from harness.gate import HELD_SNAPSHOTS, SnapshotStore
from harness.memo import IdentityMemo, Memo


def test_a_memo_drops_its_oldest_entry_and_keeps_the_one_in_use() -> None:
    memo: Memo[str, int] = Memo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # now the newest
    memo.put("c", 3)
    assert memo.get("b") is None
    assert (memo.get("a"), memo.get("c"), len(memo)) == (1, 3, 2)
    memo.put("a", 4)
    assert memo.get("a") == 4 and len(memo) == 2


def test_an_identity_memo_knows_the_very_objects_not_equal_ones() -> None:
    memo: IdentityMemo[str] = IdentityMemo(2)
    files: dict[str, Any] = {"/a": {"type": "file"}}
    memo.put((files,), ("*.pyc",), "kept")
    assert memo.get((files,), ("*.pyc",)) == "kept"
    assert memo.get((dict(files),), ("*.pyc",)) is None  # equal, not the same
    assert memo.get((files,), ()) is None  # another extra
    memo.put(({},), None, "x")
    memo.put(({},), None, "y")
    assert memo.get((files,), ("*.pyc",)) is None and len(memo) == 2


def test_the_store_holds_the_last_snapshots_and_recalls_an_earlier_one(
        docker_engine: Any, tiny_images: dict[str, str], tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "cache", "test-memo")
    names = ["tiny-base", "tiny-rebuild", "tiny-additions"]
    assert len(names) > HELD_SNAPSHOTS
    try:
        snaps = {n: store.snapshot_of(ImageSpec(n, tiny_images[n])) for n in names}
        assert len(store._memo) == HELD_SNAPSHOTS
        first = store.snapshot_of(ImageSpec(names[0], tiny_images[names[0]]))
        assert first is not snaps[names[0]]  # dropped, then recalled from the cache
        assert first.files == snaps[names[0]].files and first.abi == snaps[names[0]].abi
        # the linkage of a snapshot the store no longer holds is still computed
        assert store.linkage(snaps[names[1]]) == store.linkage(
            store.snapshot_of(ImageSpec(names[1], tiny_images[names[1]])))
    finally:
        store.cleanup()


def test_an_images_tests_run_together_in_the_order_given(
        run_gate: Callable[..., Any], tiny_images: dict[str, str]) -> None:
    images = {"zeta": tiny_images["tiny-base"], "alpha": tiny_images["tiny-rebuild"]}
    run = run_gate(images, "-v", "--update-baselines")
    ran = [m.group(1) for line in run.result.outlines
           if (m := re.search(r"::test_\w+\[(\w+)\] PASSED", line))]
    assert ran, run.result.outlines
    assert ran == sorted(ran, key=["zeta", "alpha"].index), ran
