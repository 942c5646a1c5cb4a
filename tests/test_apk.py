"""The apk reader: `lib/apk/db/installed` of an Alpine-like image.

Debian has no apk-tools, so there is no `apk info` to ask: the image's database is written by
testimages/apk.py in apk's documented installed-db format, for files that really are in the
image, and the catalog it was written from is the oracle, field by field.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.config import HarnessConfig, ImageSpec
from harness.source.engine import Engine
from harness.errors import ParseError
from harness.gate import SnapshotStore, check_aspect
from harness.snapshot import Snapshot, apk, take_snapshot
from testimages import Recipe, build, rootfs
from testimages.apk import BASE, CATALOG, INSTALLED, PLANTED, installed_db

DB = "/" + INSTALLED


def expected_records() -> dict[str, dict[str, object]]:
    """The catalog in the reader's record shape."""
    return {f"{p.name}:{p.arch}": {
        "manager": "apk", "name": p.name, "arch": p.arch, "epoch": None, "version": p.version,
        "release": None, "evr": p.version, "source": p.origin or p.name, "license": p.license,
        "size": p.installed_size} for p in CATALOG}


def test_records_equal_the_catalog() -> None:
    """Every package, every field."""
    records = apk.read_database({DB: installed_db(CATALOG).encode()})
    assert {f"{r['name']}:{r['arch']}": r for r in records} == expected_records()


def test_file_lists_match_the_files_in_the_image() -> None:
    """Paths, acls (defaults where apk wrote none) and checksums of the real files."""
    root = rootfs(BASE)
    lists = apk.read_file_lists({DB: (root / INSTALLED).read_bytes()})
    assert lists.keys() == expected_records().keys()
    files = [f for fs in lists.values() for f in fs]
    for f in files:
        target = root / f["path"].lstrip("/")
        if f["digest"] is None:  # a directory
            assert target.is_dir() and f["mode"] & 0o170000 == 0o040000
            continue
        assert f["digest"] == "sha1:" + hashlib.sha1(target.read_bytes()).hexdigest()
        assert f["mode"] == target.stat().st_mode & 0o7777
    by_path = {f["path"]: f for f in files}
    assert by_path["/bin/busybox"]["mode"] == 0o755
    assert by_path["/etc/securetty"]["mode"] == 0o644  # no `a:` line: apk's default
    assert (by_path["/etc/shadow.sample"]["group"], by_path["/etc/shadow.sample"]["mode"]) == \
        ("42", 0o640)
    assert by_path["/var/empty"]["mode"] == 0o040555


def test_dependencies_are_names() -> None:
    """`D:` and `p:` entries as names, without version constraints."""
    deps = apk.read_dependencies({DB: installed_db(CATALOG).encode()})
    assert deps["busybox:x86_64"] == {"provides": ["cmd:busybox"],
                                      "requires": ["so:libc.musl-x86_64.so.1"]}
    assert deps["musl:x86_64"]["provides"] == ["so:libc.musl-x86_64.so.1"]


@pytest.mark.parametrize(("text", "match"), [
    ("P:x\nV:1\nthis is not a field\n", ":3: not an 'X:value'"),
    ("V:1.0-r0\nA:x86_64\n", "without a P field"), ("P:a\nA:x86_64\n", "without a V field"),
    ("P:a\nV:1\nR:file\n", "R line 3 before any F"), ("P:a\nV:1\nF:etc\nZ:Q1AA\n", "before any R"),
    ("P:a\nV:1\nF:etc\nR:x\nZ:Q1!!notbase64\n", "bad checksum"),
    ("P:a\nV:1\nF:etc\nR:x\na:0:0\n", "bad acl"), ("P:a\nV:1\nI:lots\n", "not a number"),
])
def test_damaged_database_names_the_file(text: str, match: str) -> None:
    """Each damage is a ParseError naming the file, never zero packages."""
    with pytest.raises(ParseError, match=match) as info:
        apk.read_database({DB: text.encode()})
    assert DB in str(info.value)


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_empty_database_is_zero_packages(text: str) -> None:
    """The rule of every manager: an existing empty database is 0 packages."""
    assert apk.read_database({DB: text.encode()}, []) == []


def test_malformed_stanza_is_skipped_and_named() -> None:
    """One stanza without V: the others are read, the bad one named by file and line."""
    good = installed_db(CATALOG)
    text = good + "\nP:broken\nA:x86_64\n\n" + "P:odd\nV:1\nnot a field\n"
    problems: list[str] = []
    records = apk.read_database({DB: text.encode()}, problems)
    assert len(records) == len(CATALOG)
    lines = text.split("\n")
    broken, odd = lines.index("P:broken") + 1, lines.index("not a field") + 1
    assert problems == [f"{DB}:{broken}: package stanza without a V field",
                        f"{DB}:{odd}: not an 'X:value' line: 'not a field'"]
    with pytest.raises(ParseError, match="no readable package stanza"):
        apk.read_database({DB: b"P:broken\n"}, [])


def test_unknown_fields_are_kept_out_and_names_survive_any_bytes() -> None:
    """Fields newer apk versions add are ignored; non-UTF-8 bytes do not stop the reader."""
    text = b"P:caf\xe9\nV:1.0-r0\nA:x86_64\nk:100\ns:tag\nf:x\n"
    [record] = apk.read_database({DB: text})
    assert record["name"] == "caf\udce9" and record["evr"] == "1.0-r0"


def test_usr_merged_location_is_read() -> None:
    """apk-tools 3 on usr-merged systems keeps the database under /usr/lib."""
    assert apk.is_database("/usr/lib/apk/db/installed")
    assert not apk.is_database("/lib/apk/db/triggers")
    records = apk.read_database({"/usr/lib/apk/db/installed": installed_db(CATALOG).encode()})
    assert len(records) == len(CATALOG)


def test_hostile_bytes_raise_only_parse_errors() -> None:
    """Random damage: records or ParseError, nothing else."""
    data = installed_db(CATALOG).encode()
    rng = random.Random(11)
    for _ in range(500):
        bad = bytearray(data[:rng.randrange(len(data) + 1)])
        for _ in range(rng.randint(0, 4)):
            if bad:
                bad[rng.randrange(len(bad))] = rng.choice(b"\n:PVFRaZMI\xff0")
        try:
            apk.read_database({DB: bytes(bad)})
            apk.read_file_lists({DB: bytes(bad)})
        except ParseError:
            pass


@pytest.mark.docker
def test_image_snapshot_equals_the_catalog(docker_engine: Engine) -> None:
    """Through the one-pass walk of the engine's export stream."""
    info = docker_engine.find_or_pull(build(BASE))
    with docker_engine.export_rootfs(info.image_id, "tests") as stream:
        snap: Snapshot = take_snapshot(info, stream)
    assert snap.packages == expected_records()
    assert snap.package_dbs == [{"manager": "apk", "location": DB.rsplit("/", 1)[0],
                                 "paths": [DB], "count": len(CATALOG)}]


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory,
         docker_engine: Engine) -> Iterator[tuple[SnapshotStore, Path]]:
    """A store and a baselines folder holding the apk base image's packages baseline."""
    work = tmp_path_factory.mktemp("apk-gate")
    store = SnapshotStore(work / "cache", f"tests-{uuid.uuid4().hex[:12]}")
    result = check_aspect(ImageSpec("apk-e2e", build(BASE)), "packages", store,
                          work / "baselines", HarnessConfig(), update=True)
    assert result.error is None
    try:
        yield store, work / "baselines"
    finally:
        store.cleanup()


@pytest.mark.docker
@pytest.mark.parametrize("recipe", list(PLANTED), ids=[r.name for r in PLANTED])
def test_apk_ordering_decides_the_verdict(recipe: Recipe,
                                          gate: tuple[SnapshotStore, Path]) -> None:
    """`-r10` after `-r2` is an upgrade; `_rc1` after the release is a downgrade."""
    store, baselines = gate
    kind, subject, verdict = PLANTED[recipe]
    result = check_aspect(ImageSpec("apk-e2e", build(recipe)), "packages", store, baselines,
                          HarnessConfig())
    # unowned-files is a candidate-only count (files no package owns), not part of the change
    assert [(c.kind, c.subject, c.verdict) for c in result.changes
            if c.kind != "unowned-files"] == [(kind, subject, verdict)]
