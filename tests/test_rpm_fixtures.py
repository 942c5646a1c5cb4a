"""The rpm reader on real databases of all three backends (../shared/fixtures/rpmdb), field by
field against rpm's own answers: Debian's rpm reads the sqlite file, and the Berkeley DB file
with `_db_backend bdb_ro`; no rpm here reads ndb, so that one is checked against its expected
list. Each fixture's expected.csv is checked too."""

from __future__ import annotations

import csv
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from harness.snapshot import rpmheader as tags
from harness.errors import ParseError
from harness.snapshot import rpm
from testimages.rpm import oracle_dependencies, oracle_files, oracle_packages

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "rpmdb"
#: folder -> (database file, path in an image, rpm's backend name for the oracle)
DATABASES = {
    "cbl-mariner2-sqlite": ("rpmdb.sqlite", "/var/lib/rpm/rpmdb.sqlite", "sqlite"),
    "libuuid-bdb": ("Packages", "/var/lib/rpm/Packages", "bdb_ro"),
    "sle15-bci-ndb": ("Packages.db", "/usr/lib/sysimage/rpm/Packages.db", None),
}
COUNTS = {"cbl-mariner2-sqlite": 129, "libuuid-bdb": 1, "sle15-bci-ndb": 35}
needs_rpm = pytest.mark.skipif(shutil.which("rpm") is None, reason="Debian's rpm is not installed")


def fixture_dir(folder: str) -> Path:
    """A fixture folder, or skip saying where it was looked for."""
    path = FIXTURES / folder
    if not path.is_dir():
        pytest.skip(f"rpmdb fixtures not found at {FIXTURES} (shared/ must sit beside the repo)")
    return path


def image_files(folder: str) -> dict[str, bytes]:
    """The fixture as the snapshot hands it to the reader: {path in image: bytes}."""
    name, image_path, _backend = DATABASES[folder]
    return {image_path: (fixture_dir(folder) / name).read_bytes()}


def by_key(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records keyed as the registry keys them, asserting that no key repeats."""
    keyed = {f"{r['name']}:{r['arch']}": r for r in records}
    assert len(keyed) == len(records)
    return keyed


def expected_rows(folder: str) -> dict[str, dict[str, str]]:
    """expected.csv keyed `name:arch`."""
    with open(fixture_dir(folder) / "expected.csv", newline="") as handle:
        return {f"{row['name']}:{row['arch']}": row for row in csv.DictReader(handle)}


@pytest.mark.parametrize("folder", sorted(DATABASES))
def test_records_match_expected_csv(folder: str) -> None:
    """Every column of expected.csv, for every package, and nothing more."""
    records = by_key(rpm.read_database(image_files(folder)))
    expected = expected_rows(folder)
    assert len(records) == len(expected) == COUNTS[folder]
    assert records.keys() == expected.keys()
    for key, row in expected.items():
        got = records[key]
        want = {"epoch": int(row["epoch"]) if row["epoch"] else None, "version": row["version"],
                "release": row["release"], "sourcerpm": row["sourcerpm"],
                "size": int(row["size"]), "license": row["license"], "vendor": row["vendor"]}
        assert {k: got[k] for k in want} == want, key
        assert got["manager"] == "rpm"
        assert got["evr"] == (f"{got['epoch']}:" if got["epoch"] is not None else "") + \
            f"{row['version']}-{row['release']}"
        assert got["source"] == row["sourcerpm"].removesuffix(".src.rpm").rsplit("-", 2)[0]


def test_ndb_extra_columns_match_expected_csv() -> None:
    """The ndb list's extra columns (summary, modularity label, sigmd5) from the headers."""
    expected = expected_rows("sle15-bci-ndb")
    headers = rpm.read_headers(image_files("sle15-bci-ndb"))
    assert len(headers) == len(expected)
    for h in headers:
        row = expected[f"{h.string(tags.NAME)}:{h.string(tags.ARCH)}"]
        assert h.string(tags.SUMMARY) == row["summary"]
        assert (h.string(tags.MODULARITYLABEL) or "") == row["modularitylabel"]
        assert (h.binary(tags.SIGMD5) or b"").hex() == row["sigmd5"]


@needs_rpm
@pytest.mark.parametrize("folder", ["cbl-mariner2-sqlite", "libuuid-bdb"])
def test_records_match_rpm(folder: str) -> None:
    """The package list equals `rpm -qa`'s, field by field."""
    name, _path, backend = DATABASES[folder]
    ours = by_key(rpm.read_database(image_files(folder)))
    theirs = by_key(oracle_packages(fixture_dir(folder), backend))
    assert ours.keys() == theirs.keys()
    for key, record in theirs.items():
        assert {k: ours[key][k] for k in record} == record, key


@needs_rpm
@pytest.mark.parametrize("folder", ["cbl-mariner2-sqlite", "libuuid-bdb"])
def test_file_lists_match_rpm(folder: str) -> None:
    """Per file: path, mode, size, digest, user, group, link target, flags, state."""
    _name, _path, backend = DATABASES[folder]
    ours = rpm.read_file_lists(image_files(folder))
    theirs = oracle_files(fixture_dir(folder), backend)
    assert ours.keys() >= theirs.keys()
    assert all(not ours[k] for k in ours.keys() - theirs.keys())  # packages owning no file
    for key, files in theirs.items():
        mine = [{**f, "digest": f["digest"] and f["digest"].split(":", 1)[1]} for f in ours[key]]
        assert mine == files, key
    assert sum(map(len, theirs.values())) > 0


@needs_rpm
@pytest.mark.parametrize("folder", ["cbl-mariner2-sqlite", "libuuid-bdb"])
def test_dependencies_match_rpm(folder: str) -> None:
    """Provides and requires names, in rpm's order."""
    _name, _path, backend = DATABASES[folder]
    ours = rpm.read_dependencies(image_files(folder))
    theirs = oracle_dependencies(fixture_dir(folder), backend)
    assert {k: v for k, v in ours.items() if v["provides"] or v["requires"]} == theirs


def test_ndb_file_lists_are_consistent() -> None:
    """No oracle reads ndb: its file lists must at least be whole and well-formed."""
    lists = rpm.read_file_lists(image_files("sle15-bci-ndb"))
    assert len(lists) == COUNTS["sle15-bci-ndb"]
    files = [f for fs in lists.values() for f in fs]
    assert len(files) > 1000
    assert all(f["path"].startswith("/") and isinstance(f["mode"], int) for f in files)
    glibc = {f["path"]: f for f in lists["glibc:x86_64"]}
    assert "/lib64/libc.so.6" in glibc


@pytest.mark.parametrize("location", ["/usr/lib/sysimage/rpm/", "/var/lib/rpm/"])
def test_database_is_found_at_both_locations(location: str) -> None:
    """rpm >= 4.16 keeps its database in /usr/lib/sysimage/rpm, older ones in /var/lib/rpm."""
    data = next(iter(image_files("cbl-mariner2-sqlite").values()))
    assert rpm.is_database(location + "rpmdb.sqlite")
    assert len(rpm.read_database({location + "rpmdb.sqlite": data})) == 129
    assert not rpm.is_database(location + "rpmdb.sqlite-shm")
    assert not rpm.is_database(location + "Name")


def test_newest_backend_wins_when_several_are_present() -> None:
    """A leftover Berkeley DB beside the sqlite database of a migrated image is not read."""
    files = {**image_files("cbl-mariner2-sqlite"), **image_files("libuuid-bdb")}
    assert rpm.select_database(files) == ("sqlite", "/var/lib/rpm/rpmdb.sqlite")
    assert len(rpm.read_database(files)) == 129


@needs_rpm
def test_uncheckpointed_wal_is_replayed(tmp_path: Path) -> None:
    """Transactions still in rpmdb.sqlite-wal count: rpm reads them, and so must we."""
    db = tmp_path / "rpmdb.sqlite"
    shutil.copy(fixture_dir("cbl-mariner2-sqlite") / "rpmdb.sqlite", db)
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA wal_autocheckpoint=0")
        con.execute("DELETE FROM Packages WHERE hnum = (SELECT max(hnum) FROM Packages)")
        con.commit()
        # copy while the connection is open: closing it would checkpoint the WAL away
        main, wal = db.read_bytes(), (tmp_path / "rpmdb.sqlite-wal").read_bytes()
        snapshot = tmp_path / "snapshot"
        snapshot.mkdir()
        (snapshot / "rpmdb.sqlite").write_bytes(main)
        (snapshot / "rpmdb.sqlite-wal").write_bytes(wal)
    finally:
        con.close()
    assert wal
    files = {"/var/lib/rpm/rpmdb.sqlite": main, "/var/lib/rpm/rpmdb.sqlite-wal": wal}
    ours = by_key(rpm.read_database(files))
    theirs = by_key(oracle_packages(snapshot))
    assert len(ours) == len(theirs) == 128
    assert ours.keys() == theirs.keys()
    assert len(rpm.read_database({"/var/lib/rpm/rpmdb.sqlite": main})) == 129


def test_wal_without_database_is_an_error() -> None:
    """A WAL alone says a database was there: an error, not zero packages."""
    with pytest.raises(ParseError, match="rpmdb.sqlite-wal"):
        rpm.read_database({"/var/lib/rpm/rpmdb.sqlite-wal": b"x"})


def _record(name: str, arch: str, epoch: int | None, version: str, release: str) -> dict[str, Any]:
    return {"name": name, "arch": arch, "epoch": epoch, "version": version, "release": release,
            "evr": (f"{epoch}:" if epoch is not None else "") + f"{version}-{release}"}


def test_install_only_packages_become_one_record_naming_the_others() -> None:
    """Several kernels of one arch: the newest by rpm's order stands, the rest are listed."""
    records = [_record("kernel-core", "x86_64", None, "5.14.0", "70.el9"),
               _record("kernel-core", "x86_64", None, "5.14.0", "362.el9"),
               _record("kernel-core", "x86_64", None, "5.14.0", "284.el9"),
               _record("bash", "x86_64", None, "5.1.8", "6.el9")]
    merged = {f"{r['name']}:{r['arch']}": r for r in rpm.merge_instances(records)}
    assert merged["kernel-core:x86_64"]["evr"] == "5.14.0-362.el9"
    assert merged["kernel-core:x86_64"]["other_evrs"] == ["5.14.0-70.el9", "5.14.0-284.el9"]
    assert "other_evrs" not in merged["bash:x86_64"]


@pytest.mark.parametrize(("sourcerpm", "name"), [
    ("util-linux-2.32.1-42.el8_8.src.rpm", "util-linux"), ("bash-5.1-1.nosrc.rpm", "bash"),
    ("odd.src.rpm", "odd"), (None, None), ("", None),
])
def test_source_name(sourcerpm: str | None, name: str | None) -> None:
    """The source package's name, from rpm's NAME-VERSION-RELEASE.src.rpm."""
    assert rpm.source_name(sourcerpm) == name
