"""An RPM-based image made with Debian's rpm (rpmbuild, `rpm --root R --initdb`, `rpm --root R
-i`; Debian's rpm writes sqlite): the snapshot's package list equals rpm's own, field by field,
and each planted package change gives its kind, subject and verdict through the gate."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config import HarnessConfig, ImageSpec
from harness.source.engine import Engine
from harness.gate import SnapshotStore, check_aspect
from harness.snapshot import Snapshot, rpm, take_snapshot
from testimages import Recipe, build, rootfs
from testimages.rpm import (
    BASE,
    MIXED,
    OSTREE,
    DBPATH,
    PLANTED,
    oracle_dependencies,
    oracle_files,
    oracle_packages,
)

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(any(shutil.which(t) is None for t in ("rpm", "rpmbuild", "gpg")),
                                 reason="Debian's rpm, rpmbuild and gpg are needed")]


@pytest.fixture(scope="module")
def base_snapshot(docker_engine: Engine) -> Snapshot:
    """The base image's snapshot, taken from the engine's export stream."""
    info = docker_engine.find_or_pull(build(BASE))
    with docker_engine.export_rootfs(info.image_id, "tests") as stream:
        return take_snapshot(info, stream)


def db_dir(recipe: Recipe) -> Path:
    """The rpm database folder in a recipe's root folder."""
    return rootfs(recipe) / DBPATH.lstrip("/")


def db_files(recipe: Recipe) -> dict[str, bytes]:
    """The database files as the walk hands them to the reader."""
    return {f"{DBPATH}/{p.name}": p.read_bytes() for p in db_dir(recipe).iterdir()
            if rpm.is_database(f"{DBPATH}/{p.name}")}


def test_snapshot_packages_equal_rpm_qa(base_snapshot: Snapshot) -> None:
    """Every package rpm lists, with every field equal, and nothing else. Several versions of
    one name and arch (here two imported keys) are one record: the newest, naming the others."""
    theirs: dict[str, list[dict[str, object]]] = {}
    for listed in oracle_packages(db_dir(BASE)):
        theirs.setdefault(f"{listed['name']}:{listed['arch']}", []).append(listed)
    ours = base_snapshot.packages
    assert ours.keys() == theirs.keys()
    # multilib, noarch, an epoch and imported keys (no arch) are all there
    assert {"libdemo:x86_64", "libdemo:i686", "demo-data:noarch", "tool:x86_64"} <= ours.keys()
    assert len(theirs["gpg-pubkey:"]) == 2
    for key, group in theirs.items():
        record = ours[key]
        evrs = [record["evr"], *record.get("other_evrs", ())]
        assert sorted(evrs) == sorted(str(r["evr"]) for r in group), key
        newest = next(r for r in group if r["evr"] == record["evr"])
        assert {k: record[k] for k in newest} == newest, key
    assert ours["tool:x86_64"]["evr"] == "3:0.5-2"
    [database] = base_snapshot.package_dbs
    # rpm leaves an empty write-ahead log beside the database; it is collected too
    assert database == {"manager": "rpm", "count": len(ours), "location": DBPATH,
                        "paths": [f"{DBPATH}/rpmdb.sqlite", f"{DBPATH}/rpmdb.sqlite-wal"]}


def test_file_lists_and_dependencies_equal_rpm() -> None:
    """Per-file data and provides/requires names, as rpm itself reports them."""
    files = db_files(BASE)
    ours = rpm.read_file_lists(files)
    theirs = oracle_files(db_dir(BASE))
    for key, listed in theirs.items():
        mine = [{**f, "digest": f["digest"] and f["digest"].split(":", 1)[1]} for f in ours[key]]
        assert mine == listed, key
    hello = {f["path"]: f for f in ours["hello-rpm:x86_64"]}
    assert hello["/usr/bin/hello"]["link"] == "hello-rpm"
    assert hello["/usr/bin/hello-rpm"]["mode"] == 0o100755
    assert hello["/usr/bin/hello-rpm"]["digest"].startswith("sha256:")
    assert {f["path"]: f["mode"] for f in ours["demo-data:noarch"]}["/usr/share/demo"] == 0o40755
    deps = rpm.read_dependencies(files)
    assert {k: v for k, v in deps.items() if v["provides"] or v["requires"]} == \
        oracle_dependencies(db_dir(BASE))
    assert "libdemo" in deps["hello-rpm:x86_64"]["requires"]


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory,
         docker_engine: Engine) -> Iterator[tuple[SnapshotStore, Path]]:
    """A snapshot store and a baselines folder holding the base image's packages baseline."""
    work = tmp_path_factory.mktemp("rpm-gate")
    store = SnapshotStore(work / "cache", f"tests-{uuid.uuid4().hex[:12]}")
    baselines = work / "baselines"
    result = check_aspect(ImageSpec("rpm-e2e", build(BASE)), "packages", store, baselines,
                          HarnessConfig(), update=True)
    assert result.error is None and result.updated
    try:
        yield store, baselines
    finally:
        store.cleanup()


def test_baseline_stays_small_and_base_passes(gate: tuple[SnapshotStore, Path]) -> None:
    """One short line per package; the base judged against itself changes nothing."""
    store, baselines = gate
    [path] = list(baselines.glob("rpm-e2e/*/packages.json"))
    lines = path.read_text().splitlines()
    assert max(len(line) for line in lines) < 400
    result = check_aspect(ImageSpec("rpm-e2e", build(BASE)), "packages", store, baselines,
                          HarnessConfig())
    # only the candidate-only count of files no package owns (the busybox tooling) remains
    assert (result.error, result.verdict) == (None, "pass")
    assert [(c.kind, c.after["sample"]) for c in result.changes] == [
        ("unowned-files", ["/bin/busybox", "/etc/group", "/etc/os-release", "/etc/passwd"])]


@pytest.mark.parametrize("recipe", list(PLANTED), ids=[r.name for r in PLANTED])
def test_planted_change_is_judged(recipe: Recipe, gate: tuple[SnapshotStore, Path]) -> None:
    """Upgrade, removal, downgrade, epoch up/down, arch and licence change: right kind,
    subject and verdict; anything else the change brings along is info."""
    store, baselines = gate
    kind, subject, verdict = PLANTED[recipe]
    result = check_aspect(ImageSpec("rpm-e2e", build(recipe)), "packages", store, baselines,
                          HarnessConfig())
    assert result.error is None
    planted = [c for c in result.changes if (c.kind, c.subject) == (kind, subject)]
    assert [c.verdict for c in planted] == [verdict], result.changes
    others = [c for c in result.changes if c not in planted]
    assert all(c.verdict == "info" for c in others), others
    assert result.verdict == ("fail" if verdict == "break" else "pass")


def test_multilib_downgrade_names_the_arch(gate: tuple[SnapshotStore, Path]) -> None:
    """Only the x86_64 libdemo went down; the i686 one of the same name is untouched."""
    store, baselines = gate
    downgraded = next(r for r, planted in PLANTED.items() if planted[0] == "package-downgraded")
    result = check_aspect(ImageSpec("rpm-e2e", build(downgraded)), "packages", store, baselines,
                          HarnessConfig())
    [change] = [c for c in result.changes if c.kind != "unowned-files"]
    assert (change.before, change.after) == ("2.0-1 x86_64", "1.9-1 x86_64")


def _snapshot(engine: Engine, recipe: Recipe) -> Snapshot:
    info = engine.find_or_pull(build(recipe))
    with engine.export_rootfs(info.image_id, "tests") as stream:
        return take_snapshot(info, stream)


def test_rpm_ostree_layout_is_read(docker_engine: Engine, base_snapshot: Snapshot) -> None:
    """/usr/share/rpm with /var/lib/rpm a symlink to it: the same packages and file checks."""
    snap = _snapshot(docker_engine, OSTREE)
    assert snap.files["/var/lib/rpm"]["type"] == "symlink"
    assert snap.packages == base_snapshot.packages
    [database] = snap.package_dbs
    assert database["location"] == "/usr/share/rpm" and database["count"] == len(snap.packages)
    assert snap.ownership["packages_with_lists"] == base_snapshot.ownership["packages_with_lists"]
    assert snap.ownership["missing"] == base_snapshot.ownership["missing"]


def test_every_database_of_an_image_is_read_and_named(docker_engine: Engine,
                                                      base_snapshot: Snapshot) -> None:
    """dpkg beside rpm, and rpm in two locations: three databases, each named."""
    snap = _snapshot(docker_engine, MIXED)
    named = [(d["manager"], d["location"], d.get("count")) for d in snap.package_dbs]
    count = len(base_snapshot.packages)
    assert named == [("dpkg", "/var/lib/dpkg", 1), ("rpm", "/usr/lib/sysimage/rpm", count),
                     ("rpm", "/var/lib/rpm", count)]
    assert snap.packages["tzdata:all"]["manager"] == "dpkg"
    assert {k: v for k, v in snap.packages.items() if v["manager"] == "rpm"} == base_snapshot.packages
