"""The dpkg reader against dpkg-query's own answers (`dpkg-query --admindir`), field by field:
a debootstrap Debian image, a distroless image (`status.d/`, no dpkg inside: the same stanzas
are given to dpkg-query in a `status` file), and hand-made states and damage."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from harness.engine import Engine
from harness.errors import ParseError
from harness.snapshot import Snapshot, dpkg, take_snapshot
from testimages import Recipe, build, distroless, rootfs
from testimages.debian import MINBASE

pytestmark = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="dpkg is needed")

#: dpkg's states in which a package's files are on disk (the reader lists exactly these)
PRESENT = {"installed", "unpacked", "half-configured", "triggers-awaited", "triggers-pending"}
_FORMAT = ("${Package}\t${Architecture}\t${Version}\t${source:Package}\t${Installed-Size}\t"
           "${db:Status-Status}\n")


def dpkg_query(admindir: Path) -> dict[str, dict[str, Any]]:
    """dpkg-query's list of the packages on disk, in the reader's record shape."""
    with tempfile.TemporaryDirectory() as tmp:
        # dpkg-query wants to lock the admin dir: ask it about a copy
        copy = Path(tmp) / "admin"
        copy.mkdir()
        shutil.copy2(admindir / "status", copy / "status")
        (copy / "updates").mkdir()
        out = subprocess.run(["dpkg-query", f"--admindir={copy}", "-W", "-f", _FORMAT],
                             capture_output=True, text=True, check=True).stdout
    records: dict[str, dict[str, Any]] = {}
    for line in out.splitlines():
        name, arch, version, source, size, state = line.split("\t")
        if state not in PRESENT:
            continue
        epoch, _, upstream = version.rpartition(":")
        records[f"{name}:{arch}"] = {
            "manager": "dpkg", "name": name, "arch": arch, "epoch": int(epoch) if epoch else None,
            "version": upstream, "release": None, "evr": version, "source": source,
            "license": None, "size": int(size) * 1024 if size else None}
    return records


def snapshot(engine: Engine, recipe: Recipe) -> Snapshot:
    """A recipe's image, snapshotted through the engine's export stream."""
    info = engine.resolve(build(recipe))
    with engine.export_rootfs(info.image_id, "tests") as stream:
        return take_snapshot(info, stream)


@pytest.mark.docker
def test_debootstrap_image_equals_dpkg_query(docker_engine: Engine) -> None:
    """Every package of a real Debian system, every field."""
    snap = snapshot(docker_engine, MINBASE)
    theirs = dpkg_query(rootfs(MINBASE) / "var/lib/dpkg")
    assert len(theirs) > 50
    assert snap.packages == theirs
    assert snap.package_dbs == [{"manager": "dpkg", "paths": ["/var/lib/dpkg/status"],
                                 "count": len(theirs)}]


def _distroless_admindir(root: Path, target: Path) -> Path:
    """The image's status.d stanzas as one `status` file, each marked installed."""
    status_d = root / "var/lib/dpkg/status.d"
    stanzas = []
    for path in sorted(status_d.iterdir()):
        if not path.name.endswith(".md5sums"):
            lines = path.read_text().rstrip("\n").split("\n")
            stanzas.append("\n".join(lines[:1] + ["Status: install ok installed"] + lines[1:]))
    target.mkdir()
    (target / "status").write_text("\n\n".join(stanzas) + "\n")
    return target


@pytest.mark.docker
def test_distroless_image_equals_dpkg_query(docker_engine: Engine, tmp_path: Path) -> None:
    """status.d stanzas (no Status field, .md5sums beside them), no dpkg in the image."""
    snap = snapshot(docker_engine, distroless.BASE)
    root = rootfs(distroless.BASE)
    theirs = dpkg_query(_distroless_admindir(root, tmp_path / "admin"))
    assert sorted(r["name"] for r in theirs.values()) == sorted(distroless.PACKAGES)
    assert snap.packages == theirs
    [database] = snap.package_dbs
    assert database["count"] == len(distroless.PACKAGES) and "error" not in database
    assert all(p.startswith("/var/lib/dpkg/status.d/") and not p.endswith(".md5sums")
               for p in database["paths"])
    assert "/usr/bin/dpkg" not in snap.files and "/var/lib/dpkg/status" not in snap.files


_STATES = """\
Package: kept
Status: install ok installed
Architecture: amd64
Version: 1:2.0-1
Installed-Size: 10
Source: kept-src (2.0-1)

Package: removed-keeps-config
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: half
Status: install reinstreq half-configured
Architecture: all
Version: 0.1

Package: unpacked-only
Status: install ok unpacked
Architecture: i386
Version: 3.0~rc1-2
Installed-Size: 1

Package: gone
Status: purge ok not-installed
Architecture: amd64
"""


def test_package_states_equal_dpkg_query(tmp_path: Path) -> None:
    """Only packages whose files are on disk; config-files and not-installed are not."""
    (tmp_path / "status").write_text(_STATES)
    records = dpkg.read_database({"/var/lib/dpkg/status": _STATES.encode()})
    ours = {f"{r['name']}:{r['arch']}": r for r in records}
    assert ours == dpkg_query(tmp_path)
    assert set(ours) == {"kept:amd64", "half:all", "unpacked-only:i386"}


def test_damaged_status_names_the_file() -> None:
    """Text that is no deb822 is an error naming the file, never zero packages."""
    with pytest.raises(ParseError, match="/var/lib/dpkg/status"):
        dpkg.read_database({"/var/lib/dpkg/status": b"\x00\x01garbage without a colon\n"})
