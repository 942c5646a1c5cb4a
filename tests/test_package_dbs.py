"""Where package databases lie in real images: locations reached through the image's
symlinks (rpm-ostree's /usr/share/rpm), several databases in one image, and the findings
the gate makes of malformed entries and empty databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.config import HarnessConfig
from harness.aspects.packages import database_findings
from harness.policy import judge
from harness.snapshot import Snapshot
from harness.snapshot.packages import PackagesCollector
from harness.snapshot.managers import load_builtin_readers

REPO = Path(__file__).resolve().parents[1]
RPMDB = REPO.parent / "shared" / "fixtures" / "rpmdb"
_STATUS = (b"Package: base-files\nStatus: install ok installed\nVersion: 12.4\n"
           b"Architecture: amd64\nMaintainer: m\n")


def collect(files: dict[str, bytes], links: dict[str, str]) -> tuple[
        dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """What the snapshot makes of these files and symlinks (file records as the walk's)."""
    load_builtin_readers()
    collector = PackagesCollector()
    records: dict[str, dict[str, Any]] = {}
    for path in [*files, *links]:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            records.setdefault("/" + "/".join(parts[:i]), {"type": "dir"})
    for path, data in files.items():
        records[path] = {"type": "file", "size": len(data)}
        if collector.wants(path, data[:4096], len(data)):
            collector.take(path, data)
    for path, target in links.items():
        records[path] = {"type": "symlink", "target": target}
    return collector.result(records)


def rpmdb(name: str) -> bytes:
    path = RPMDB / name
    if not path.is_file():
        pytest.skip(f"rpmdb fixtures not found at {RPMDB} (shared/ must sit beside the repo)")
    return path.read_bytes()


def test_rpm_ostree_layout_is_read_and_named_once() -> None:
    """/usr/share/rpm with /var/lib/rpm a symlink to it: one database, named where it is."""
    db = rpmdb("cbl-mariner2-sqlite/rpmdb.sqlite")
    records, dbs = collect({"/usr/share/rpm/rpmdb.sqlite": db},
                           {"/var/lib/rpm": "../../usr/share/rpm"})
    assert dbs == [{"manager": "rpm", "location": "/usr/share/rpm",
                    "paths": ["/usr/share/rpm/rpmdb.sqlite"], "count": 129}]
    assert len(records) == 129


def test_database_folder_reached_through_a_symlink() -> None:
    """/var/lib/dpkg -> /opt/state/dpkg: read under its own name, the folder recorded."""
    records, dbs = collect({"/opt/state/dpkg/status": _STATUS}, {"/var/lib/dpkg": "/opt/state/dpkg"})
    assert dbs == [{"manager": "dpkg", "location": "/var/lib/dpkg", "real": "/opt/state/dpkg",
                    "paths": ["/opt/state/dpkg/status"], "count": 1}]
    assert set(records) == {"base-files:amd64"}


def test_a_folder_no_location_reaches_is_not_a_database() -> None:
    """A copy of a database elsewhere (a backup, a build root) is not the image's."""
    _, dbs = collect({"/srv/backup/dpkg/status": _STATUS}, {})
    assert dbs == []


def test_several_databases_are_all_read_and_named() -> None:
    """rpm in two locations (a migration's leftover) and dpkg beside them."""
    sqlite = rpmdb("cbl-mariner2-sqlite/rpmdb.sqlite")
    bdb = rpmdb("libuuid-bdb/Packages")
    records, dbs = collect({"/usr/lib/sysimage/rpm/rpmdb.sqlite": sqlite,
                            "/var/lib/rpm/Packages": bdb, "/var/lib/dpkg/status": _STATUS}, {})
    assert [(d["manager"], d["location"], d["count"]) for d in dbs] == [
        ("dpkg", "/var/lib/dpkg", 1), ("rpm", "/usr/lib/sysimage/rpm", 129),
        ("rpm", "/var/lib/rpm", 1)]
    assert "base-files:amd64" in records and "libuuid:x86_64" in records


def _snap(dbs: list[dict[str, Any]]) -> Snapshot:
    return Snapshot(image={}, metadata={}, files={}, packages={}, package_dbs=dbs)


def test_malformed_entries_and_empty_databases_are_findings() -> None:
    """Skipped entries are review, named by file and line; an empty database is info."""
    text = _STATUS + b"\nPackage: broken\nStatus: install ok installed\nMaintainer: m\n"
    _, dbs = collect({"/var/lib/dpkg/status": text, "/lib/apk/db/installed": b""}, {})
    changes = judge(database_findings(_snap(dbs)), HarnessConfig(), "img", "x86_64")
    assert sorted((c.kind, c.subject, c.verdict) for c in changes) == sorted([
            ("package-record-malformed", "/var/lib/dpkg/status:7", "review"),
            ("package-database-empty", "/lib/apk/db", "info")])
    assert "no Version" in str([c.after for c in changes])
