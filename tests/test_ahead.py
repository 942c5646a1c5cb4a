"""The next planned image's snapshot taken ahead in a forked child (SnapshotStore.plan):
the same snapshot as taken in the run's own process, never taken when not wanted, and
stopped with its containers when the run ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import ImageSpec
from harness.gate import SnapshotStore
from harness.source.engine import RUN_LABEL


def _specs(tiny_images: dict[str, str], *names: str) -> list[ImageSpec]:
    return [ImageSpec(n, tiny_images[n]) for n in names]


def test_the_next_image_is_taken_ahead_and_is_the_snapshot_taken_here(
        docker_engine: Any, tiny_images: dict[str, str], tmp_path: Path) -> None:
    first, second = _specs(tiny_images, "tiny-base", "tiny-additions")
    store = SnapshotStore(tmp_path / "ahead", "test-ahead")
    here = SnapshotStore(tmp_path / "here", "test-ahead-here")
    try:
        store.plan([first, second], lambda spec: True)
        store.snapshot_of(first)
        child = store._ahead[second.ref]
        assert child._pid, "no child was forked"
        # the child took it, and gives its linkage findings (none in this image)
        assert child.result() == []
        upcoming = store.find_image(second)
        assert store._cache_path(upcoming).exists()
        ahead = store.snapshot_of(second)
        assert not store._ahead  # reaped once its snapshot was had
        taken = here.snapshot_of(second)
        assert (ahead.files, ahead.packages, ahead.abi, ahead.metadata) == (
            taken.files, taken.packages, taken.abi, taken.metadata)
        assert store.linkage(ahead) == here.linkage(taken)
    finally:
        store.cleanup()
        here.cleanup()


def test_an_image_whose_judgements_are_known_is_not_taken_ahead(
        docker_engine: Any, tiny_images: dict[str, str], tmp_path: Path) -> None:
    first, second = _specs(tiny_images, "tiny-base", "tiny-additions")
    store = SnapshotStore(tmp_path / "cache", "test-ahead-unwanted")
    try:
        store.plan([first, second], lambda spec: spec.name != "tiny-additions")
        store.snapshot_of(first)
        assert store._ahead[second.ref].result() is False  # found, not wanted, left
        assert not store._cache_path(store.find_image(second)).exists()
    finally:
        store.cleanup()


def test_the_end_of_the_run_stops_the_child_and_removes_its_container(
        docker_engine: Any, tiny_images: dict[str, str], tmp_path: Path) -> None:
    first, second = _specs(tiny_images, "tiny-base", "tiny-additions")
    run_id = "test-ahead-cleanup"
    store = SnapshotStore(tmp_path / "cache", run_id)
    store.plan([first, second], lambda spec: True)
    store.snapshot_of(first)
    children = list(store._ahead.values())
    assert children
    store.cleanup()
    assert not store._ahead and all(not c._pid for c in children)
    left = docker_engine._client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    assert left == []


def test_the_take_ahead_never_runs_in_the_runs_own_process(tmp_path: Path) -> None:
    import os
    import signal

    from harness.gate import _taken_ahead

    store = SnapshotStore(tmp_path / "cache", "test-ahead-parent")
    handler = signal.getsignal(signal.SIGINT)
    assert _taken_ahead(store, None, os.getpid()) is False  # type: ignore[arg-type]
    assert signal.getsignal(signal.SIGINT) is handler and not (tmp_path / "cache").exists()


def test_no_snapshot_is_taken_ahead_without_the_memory_for_it(
        docker_engine: Any, tiny_images: dict[str, str], tmp_path: Path,
        monkeypatch: Any) -> None:
    from harness import gate

    assert gate._room_for_a_child()  # this machine has it
    monkeypatch.setattr(gate, "_room_for_a_child", lambda: False)
    first, second = _specs(tiny_images, "tiny-base", "tiny-additions")
    store = SnapshotStore(tmp_path / "cache", "test-ahead-memory")
    try:
        store.plan([first, second], lambda spec: True)
        store.snapshot_of(first)
        assert not store._ahead
    finally:
        store.cleanup()


def test_an_image_that_cannot_be_found_is_looked_for_in_the_child(
        docker_engine: Any, tiny_images: dict[str, str], tmp_path: Path) -> None:
    """A planned image the engine lacks is looked for (pulled) in its child, never in the
    run's process, and left to its own tests to report; the one after it is still taken
    ahead, and once when planned under two names."""
    first, second = _specs(tiny_images, "tiny-base", "tiny-additions")
    missing = ImageSpec("missing", "harness-test/no-such-image:absent")
    again = ImageSpec("again", second.ref)
    for n, plan in enumerate([[first, missing, second], [first, second, again]]):
        store = SnapshotStore(tmp_path / f"cache{n}", f"test-ahead-missing{n}")
        try:
            store.plan(plan, lambda spec: True)
            store.snapshot_of(first)
            assert list(store._ahead) == [spec.ref for spec in plan[1:] if spec is not again]
            # taken (its linkage findings given) or not (False)
            assert {ref: child.result() for ref, child in store._ahead.items()} == {
                spec.ref: [] if spec is second else False for spec in plan[1:] if spec is not again}
            assert missing.ref not in store._found
            assert store._cache_path(store.find_image(second)).exists()
        finally:
            store.cleanup()


def test_a_child_stuck_past_the_images_time_is_stopped_and_the_snapshot_taken_here(
        docker_engine: Any, tiny_images: dict[str, str], tmp_path: Path,
        monkeypatch: Any) -> None:
    import time

    from harness import gate
    from harness.limits import Limits

    monkeypatch.setattr(gate, "_taken_ahead", lambda *args: time.sleep(600))
    first, second = _specs(tiny_images, "tiny-base", "tiny-additions")
    store = SnapshotStore(tmp_path / "cache", "test-ahead-stuck", limits=Limits(image_seconds=3.0))
    try:
        store.plan([first, second], lambda spec: True)
        store.snapshot_of(first)
        child = store._ahead[second.ref]
        assert child._pid
        started = time.monotonic()
        snap = store.snapshot_of(second)
        assert 3.0 <= time.monotonic() - started < 60 and snap.files
        assert not child._pid  # stopped and reaped
    finally:
        store.cleanup()


def test_a_planned_run_takes_ahead_only_images_whose_judgements_are_not_all_known(
        docker_engine: Any, tiny_images: dict[str, str], tmp_path: Path) -> None:
    """`plan_run`: once every aspect of an image was judged with the cache kept, a later run
    takes no snapshot of it ahead; an image with a judgement unknown is taken."""
    from harness.aspects import REGISTRY
    from harness.config import HarnessConfig
    from harness.gate import check_aspect, plan_run

    first, second, third = _specs(tiny_images, "tiny-base", "tiny-additions", "tiny-rebuild")
    root, cache, config = tmp_path / "baselines", tmp_path / "cache", HarnessConfig()
    earlier = SnapshotStore(cache, "test-ahead-plan-0")
    try:
        for spec in (first, second, third):
            for aspect in REGISTRY:
                check_aspect(spec, aspect.name, earlier, root, config, update=True)
        for aspect in REGISTRY:  # judged: its judgements are kept; the third's are not
            check_aspect(second, aspect.name, earlier, root, config)
    finally:
        earlier.cleanup()
    for snapshot in cache.glob("*.snapshot"):
        snapshot.unlink()
    store = SnapshotStore(cache, "test-ahead-plan-1")
    try:
        plan_run(store, [first, second, third], root, config, update=False)
        store.snapshot_of(first)
        assert store._ahead[second.ref].result() is False  # every judgement known: left
        assert store._ahead[third.ref].result() == []  # taken, its linkage findings given
        assert store._cache_path(store.find_image(third)).exists()
        assert not store._cache_path(store.find_image(second)).exists()
    finally:
        store.cleanup()


def test_a_childs_engine_connection_is_its_own_and_asks_nothing_known(
        docker_engine: Any, tiny_images: dict[str, str], monkeypatch: Any) -> None:
    """A forked child must not share the parent's socket; it keeps the API version and the
    facts the parent asked (no /version, /_ping nor /info round trip per child)."""
    import docker

    image = docker_engine.find_or_pull(tiny_images["tiny-base"]).image_id
    docker_engine.layer_dirs(image)  # asks /info once
    asked: list[str] = []
    monkeypatch.setattr(docker.api.client.APIClient, "_retrieve_server_version",
                        lambda self: asked.append("version") or "1.41")
    child = docker_engine.for_child()
    assert not asked
    assert child.client.api is not docker_engine.client.api
    assert child.client.api.api_version == docker_engine.client.api.api_version
    assert child._remaps == docker_engine._remaps is not None
    assert child.find_or_pull(tiny_images["tiny-base"]).image_id == image
    child.client.close()


def test_a_run_of_one_image_notes_nothing_for_later_walks(
        docker_engine: Any, tiny_images: dict[str, str], tmp_path: Path,
        monkeypatch: Any) -> None:
    """What a walk met is noted for a later walk of the run to replay
    (harness.snapshot.subtrees); a run planned for one image has none, and notes nothing."""
    from harness.snapshot import subtrees

    for name in ("_segments", "_alone"):
        monkeypatch.setattr(subtrees, name, {})
    monkeypatch.setattr(subtrees, "_kept", [])
    first, second = _specs(tiny_images, "tiny-base", "tiny-additions")
    alone = SnapshotStore(tmp_path / "alone", "test-alone")
    try:
        alone.plan([first], lambda spec: True)
        alone.snapshot_of(first)
    finally:
        alone.cleanup()
    assert subtrees._kept == []
    several = SnapshotStore(tmp_path / "several", "test-several")
    try:
        several.plan([first, second], lambda spec: True)
        several.snapshot_of(first)
    finally:
        several.cleanup()
    assert len(subtrees._kept) == 1 and subtrees._kept[0][0].paths
    assert subtrees._noting == [True]
