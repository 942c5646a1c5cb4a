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


def test_the_memory_a_child_held_counts_for_the_next_one(monkeypatch: Any) -> None:
    """A child judging a member can hold more than the run's process ever did: the most
    a child that ended held counts as the next image's need too."""
    import resource

    from harness import gate

    usage = resource.getrusage

    def children_held(kib: int) -> Any:
        def getrusage(who: int) -> Any:
            real = usage(who)
            if who != resource.RUSAGE_CHILDREN:
                return real
            return type("Usage", (), {"ru_maxrss": kib})()
        return getrusage

    with open("/proc/meminfo", "rb") as f:
        available = next(int(line.split()[1]) for line in f if line.startswith(b"MemAvailable:"))
    monkeypatch.setattr(resource, "getrusage", children_held(1024))
    assert gate._room_for_a_child()
    monkeypatch.setattr(resource, "getrusage", children_held(available // 2 + 1))
    assert not gate._room_for_a_child()


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


def _recorded_as(spec: ImageSpec, ref: str, root: Path, cache: Path, config: Any) -> None:
    """Baselines of the image `ref` names, recorded under the spec's name."""
    from harness.aspects import REGISTRY
    from harness.gate import check_aspect

    store = SnapshotStore(cache, "test-ahead-record")
    try:
        for aspect in REGISTRY:
            check_aspect(ImageSpec(spec.name, ref), aspect.name, store, root, config, update=True)
    finally:
        store.cleanup()


def _recorded_pair(tiny_images: dict[str, str], tmp_path: Path, changed: bool
                   ) -> tuple[ImageSpec, ImageSpec, Path, Any]:
    """tiny-base and tiny-additions with their baselines recorded (the second's from the
    first image when `changed`: it is then judged with changes); and the baselines' root
    and the config."""
    from harness.config import HarnessConfig

    first, second = _specs(tiny_images, "tiny-base", "tiny-additions")
    root, config = tmp_path / "baselines", HarnessConfig()
    for spec in (first, second):
        _recorded_as(spec, first.ref if changed else spec.ref, root, tmp_path / "record", config)
    return first, second, root, config


def _judged_here(spec: ImageSpec, root: Path, config: Any, cache: Path) -> list[dict[str, Any]]:
    """Every aspect of the image judged by a store of its own, without a plan."""
    from harness.aspects import REGISTRY
    from harness.gate import check_aspect

    store = SnapshotStore(cache, "test-ahead-here")
    try:
        return [check_aspect(spec, a.name, store, root, config).to_dict() for a in REGISTRY]
    finally:
        store.cleanup()


def test_the_child_that_took_an_image_judges_it_and_the_run_recalls_its_verdicts(
        docker_engine: Any, tiny_images: dict[str, str], tmp_path: Path) -> None:
    """`plan_run`: the child taking an image ahead also judges it, with the snapshot in hand;
    the run's process recalls those verdicts (never loading the snapshot), and they are
    the judgements it makes itself: here of an image with changes."""
    from harness.aspects import REGISTRY
    from harness.gate import check_aspect, plan_run

    first, second, root, config = _recorded_pair(tiny_images, tmp_path, changed=True)
    expected = _judged_here(second, root, config, tmp_path / "here")
    assert any(result["changes"] for result in expected)
    store = SnapshotStore(tmp_path / "cache", "test-ahead-judged")
    try:
        plan_run(store, [first, second], root, config, update=False)
        store.snapshot_of(first)  # the child begins; asked at once, its verdicts are awaited
        got = [check_aspect(second, a.name, store, root, config).to_dict() for a in REGISTRY]
        assert got == expected
        assert store._memo.get(store.find_image(second).key) is None  # recalled, not loaded
        assert len(list((tmp_path / "cache" / "verdicts").glob("*.json"))) == len(REGISTRY)
    finally:
        store.cleanup()


def test_the_child_judges_only_the_aspects_the_run_asks_for(
        docker_engine: Any, tiny_images: dict[str, str], tmp_path: Path) -> None:
    """A run under `-k files` asks one aspect: the child judges that one; another aspect,
    asked all the same, is judged in the run's process."""
    from harness.gate import check_aspect, plan_run

    first, second, root, config = _recorded_pair(tiny_images, tmp_path, changed=False)
    store = SnapshotStore(tmp_path / "cache", "test-ahead-asked")
    try:
        plan_run(store, [first, second], root, config, update=False,
                 aspects={first.name: [], second.name: ["files"]})
        store.snapshot_of(first)
        store.settle(second)
        assert len(list((tmp_path / "cache" / "verdicts").glob("*.json"))) == 1
        assert check_aspect(second, "files", store, root, config).verdict == "pass"
        assert store._memo.get(store.find_image(second).key) is None
        assert check_aspect(second, "abi", store, root, config).verdict == "pass"
        assert store._memo.get(store.find_image(second).key) is not None  # judged here
    finally:
        store.cleanup()


def test_a_child_that_ends_first_makes_room_for_the_next_planned_image(
        tmp_path: Path, monkeypatch: Any) -> None:
    """`AHEAD` children run at once: one that ends while the run waits for an earlier one
    is replaced by the next planned image's at once, not when the earlier one ends."""
    import time

    from harness import gate
    from harness.rootfs.image import ImageInfo

    log = tmp_path / "log"
    naps = {"slow": 3.0}

    def taken(store: SnapshotStore, spec: ImageSpec, parent: int) -> list[Any]:
        with log.open("a") as f:
            f.write(f"{spec.name} start {time.monotonic()}\n")
        time.sleep(naps.get(spec.name, 0.0))
        with log.open("a") as f:
            f.write(f"{spec.name} end {time.monotonic()}\n")
        return []

    monkeypatch.setattr(gate, "_taken_ahead", taken)
    specs = [ImageSpec(name, f"harness-test/{name}:planned")
             for name in ("first", "slow", "quick", "next")]
    store = SnapshotStore(tmp_path / "cache", "test-ahead-fill")
    store._found = {spec.ref: ImageInfo(spec.ref, f"sha256:{n}", "x86_64", "linux", None, {})
                    for n, spec in enumerate(specs)}
    try:
        store.plan(specs, lambda spec: True)
        store._take_next_ahead(store._found[specs[0].ref])
        assert list(store._ahead) == [spec.ref for spec in specs[1:1 + gate.AHEAD]]
        store.settle(specs[1])
        assert specs[1].ref not in store._ahead and specs[3].ref in store._ahead
        store.settle(specs[3])
        when = {" ".join(line.split()[:2]): float(line.split()[2])
                for line in log.read_text().splitlines()}
        assert when["next start"] < when["slow end"]
    finally:
        store.cleanup()


def test_the_aspects_asked_are_those_of_the_collected_compat_tests() -> None:
    """The plugin's hint to the children (`_asked_aspects`): per image, the aspects of its
    collected `test_ASPECT` compat tests, in their order; an image with only other tests
    is asked none; an image with no collected test is not planned at all."""
    from types import SimpleNamespace

    from harness.plugin import _asked_aspects

    a, b, c = ImageSpec("a", "a:1"), ImageSpec("b", "b:1"), ImageSpec("c", "c:1")

    def item(spec: ImageSpec | None, name: str, fixtures: tuple[str, ...] = ("compat_check",)
             ) -> Any:
        return SimpleNamespace(callspec=SimpleNamespace(params={"_harness_image": spec}),
                               originalname=name, fixturenames=fixtures)

    items = [item(b, "test_abi"), item(a, "test_files"), item(a, "test_abi"),
             item(a, "test_files"), item(b, "test_probes", ("image_families",)),
             item(b, "test_unknown"), item(None, "test_files"), SimpleNamespace()]
    assert _asked_aspects(items, [a, b, c]) == {"a": ["files", "abi"], "b": ["abi"]}
    assert _asked_aspects([item(c, "test_probes", ("image_families",))], [a, b, c]) == {"c": []}


def test_a_child_that_dies_while_judging_leaves_the_rest_to_the_run(
        docker_engine: Any, tiny_images: dict[str, str], tmp_path: Path,
        monkeypatch: Any) -> None:
    """A child that kept the snapshot and one verdict, then died: the run recalls that
    verdict and judges the other aspects itself, from the kept snapshot, as it would have."""
    import os

    from harness import gate
    from harness.aspects import REGISTRY
    from harness.config import HarnessConfig

    first, second, root, config = _recorded_pair(tiny_images, tmp_path, changed=True)
    expected = _judged_here(second, root, config, tmp_path / "here")
    judge = gate._judge_asked

    def dies(spec: ImageSpec, store: SnapshotStore, root: Path, config: HarnessConfig,
             asked: Any) -> None:
        judge(spec, store, root, config, lambda spec: [REGISTRY[0].name])
        os._exit(3)

    monkeypatch.setattr(gate, "_judge_asked", dies)
    store = SnapshotStore(tmp_path / "cache", "test-ahead-dies")
    try:
        gate.plan_run(store, [first, second], root, config, update=False)
        store.snapshot_of(first)
        store.settle(second)
        assert len(list((tmp_path / "cache" / "verdicts").glob("*.json"))) == 1
        assert store._cache_path(store.find_image(second)).exists()
        got = [gate.check_aspect(second, a.name, store, root, config).to_dict()
               for a in REGISTRY]
        assert got == expected
        assert store._memo.get(store.find_image(second).key) is not None  # judged here
    finally:
        store.cleanup()
