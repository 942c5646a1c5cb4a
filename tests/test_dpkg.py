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

from harness.source.engine import Engine
from harness.errors import ParseError
from harness.snapshot import Snapshot, dpkg, take_snapshot
from testimages import Recipe, build, distroless, rootfs
from testimages.debian import MINBASE

pytestmark = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="dpkg is needed")

#: dpkg's states in which a package counts as installed (the reader lists exactly these)
PRESENT = {"installed", "triggers-awaited", "triggers-pending"}
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


def without_licences(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records with `license` emptied (dpkg-query knows no licences)."""
    return {k: {**r, "license": None} for k, r in records.items()}


def snapshot(engine: Engine, recipe: Recipe) -> Snapshot:
    """A recipe's image, snapshotted through the engine's export stream."""
    info = engine.find_or_pull(build(recipe))
    with engine.export_rootfs(info.image_id, "tests") as stream:
        return take_snapshot(info, stream)


@pytest.mark.docker
def test_debootstrap_image_equals_dpkg_query(docker_engine: Engine) -> None:
    """Every package of a real Debian system, every field."""
    snap = snapshot(docker_engine, MINBASE)
    theirs = dpkg_query(rootfs(MINBASE) / "var/lib/dpkg")
    assert len(theirs) > 50
    assert without_licences(snap.packages) == theirs
    # licences come from the machine-readable copyright files, SPDX names where one is meant
    assert "LGPL-2.1-or-later" in snap.packages["libsystemd0:amd64"]["license"]
    # not machine-readable: the licences it cites from /usr/share/common-licenses
    assert snap.packages["libc6:amd64"]["license"] == "LGPL-2.1-only AND GPL-2.0-only"
    assert sum(1 for r in snap.packages.values() if r["license"]) > len(theirs) // 2
    assert snap.package_dbs == [{"manager": "dpkg", "location": "/var/lib/dpkg",
                                 "paths": ["/var/lib/dpkg/status"], "count": len(theirs)}]


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
    assert without_licences(snap.packages) == theirs
    [database] = snap.package_dbs
    assert database["count"] == len(distroless.PACKAGES) and "error" not in database
    assert all(p.startswith("/var/lib/dpkg/status.d/") and not p.endswith(".md5sums")
               for p in database["paths"])
    assert "/usr/bin/dpkg" not in snap.files and "/var/lib/dpkg/status" not in snap.files
    # the md5sums beside the stanzas give the file lists the ownership checks need
    assert snap.ownership["packages_with_lists"] == len(distroless.PACKAGES)
    assert snap.ownership["missing"] == {} and snap.ownership["changed"] == {}
    assert "/usr/lib/x86_64-linux-gnu/libz.so.1" not in snap.ownership["unowned"]


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

Package: held
Status: hold ok installed
Architecture: amd64
Version: 2.0
Maintainer: m

Package: purge-wanted
Status: purge ok installed
Architecture: amd64
Version: 2.0
Maintainer: m

Package: triggered
Status: install ok triggers-pending
Architecture: amd64
Version: 2.0
Maintainer: m
Triggers-Pending: ldconfig

Package: no-status-in-status
Architecture: amd64
Version: 2.0
Maintainer: m
"""


def test_package_states_equal_dpkg_query(tmp_path: Path) -> None:
    """Only installed packages: unpacked, half-configured, config-files are not."""
    (tmp_path / "status").write_text(_STATES)
    records = dpkg.read_database({"/var/lib/dpkg/status": _STATES.encode()})
    ours = {f"{r['name']}:{r['arch']}": r for r in records}
    assert ours == dpkg_query(tmp_path)
    assert set(ours) == {"kept:amd64", "held:amd64", "purge-wanted:amd64", "triggered:amd64"}


def test_damaged_status_names_the_file() -> None:
    """Text that is no deb822 is an error naming the file, never zero packages."""
    with pytest.raises(ParseError, match="/var/lib/dpkg/status"):
        dpkg.read_database({"/var/lib/dpkg/status": b"\x00\x01garbage without a colon\n"})


def test_malformed_stanzas_are_skipped_and_named() -> None:
    """No Package, no Version, a version dpkg rejects or warns about, a bad line: each
    stanza is skipped and named by file and line; the others are read."""
    text = (b"Package: good\nStatus: install ok installed\nVersion: 1.0\nMaintainer: m\n\n"
            b"Package:\nStatus: install ok installed\nVersion: 1.0\n\n"
            b"Package: nover\nStatus: install ok installed\n\n"
            b"Package: badver\nStatus: install ok installed\nVersion: 1:5.#\n\n"
            b"Package: spaced\nStatus: install ok installed\nVersion: 1.0-\n\n"
            b"Package: odd\nthis is no field\n")
    problems: list[str] = []
    records = dpkg.read_database({dpkg.STATUS: text}, problems)
    assert [r["name"] for r in records] == ["good"]
    problems.sort(key=lambda p: int(p.split(":")[1]))
    assert [p.split(": ", 1)[0] for p in problems] == [
        f"{dpkg.STATUS}:{n}" for n in (6, 10, 13, 17, 22)]
    assert "invalid character" in problems[2] and "revision number" in problems[3]
    with pytest.raises(ParseError, match="no readable package entry"):
        dpkg.read_database({dpkg.STATUS_D + "x": text.split(b"\n\n", 1)[1]}, [])
    # without a list to report them in, the first unreadable entry is the error (apk, rpm)
    with pytest.raises(ParseError, match=f"^{dpkg.STATUS}:6: a stanza without a Package field"):
        dpkg.read_database({dpkg.STATUS: text})


def test_status_d_files_are_chosen_as_distroless_tools_choose_them() -> None:
    """Stanza files only: the control files copied beside them (md5sums, maintainer scripts)
    are no stanzas; the md5sums give the file lists."""
    base = dpkg.STATUS_D
    assert dpkg.is_database(base + "libsqlite3-0")
    for name in ("libsqlite3-0.md5sums", "libsqlite3-0.preinst", "x.postrm", ".hidden"):
        assert not dpkg.is_database(base + name), name
    assert dpkg.is_aux(base + "libsqlite3-0.md5sums")


def test_distroless_file_lists_come_from_md5sums_and_conffiles() -> None:
    """Paths with md5 digests from status.d/NAME.md5sums, conffiles from the stanza."""
    stanza = (b"Package: tzdata\nVersion: 2024a-1\nArchitecture: all\nMaintainer: m\n"
              b"Conffiles:\n /etc/timezone 0123456789abcdef0123456789abcdef\n")
    md5 = b"d41d8cd98f00b204e9800998ecf8427e  usr/share/zoneinfo/UTC\n"
    lists = dpkg.read_file_lists({dpkg.STATUS_D + "tzdata": stanza,
                                  dpkg.STATUS_D + "tzdata.md5sums": md5})
    assert lists == {"tzdata:all": [
        {"path": "/etc/timezone", "config": True,
         "digest": "md5:0123456789abcdef0123456789abcdef"},
        {"path": "/usr/share/zoneinfo/UTC", "config": False,
         "digest": "md5:d41d8cd98f00b204e9800998ecf8427e"}]}


_VCPKG = b"""Package: zlib
Version: 1.3.1
Port-Version: 0
Architecture: x64-linux
Multi-Arch: same
Abi: 5f3c2b2a
Description: A compression library
Status: install ok installed

Package: vcpkg-cmake
Version: 2024-04-23
Architecture: x64-linux
Multi-Arch: same
Abi: 0a1b
Status: install ok installed
"""


def test_a_status_file_of_another_tool_is_no_dpkg_database() -> None:
    """vcpkg writes deb822 `status` files too; none of its stanzas has dpkg's own fields."""
    with pytest.raises(ParseError, match="not a dpkg database"):
        dpkg.read_database({dpkg.STATUS: _VCPKG}, [])


@pytest.mark.docker
def test_distroless_missing_file_is_found(docker_engine: Engine) -> None:
    """A file a status.d md5sums promises, deleted from the image: package-files-missing."""
    snap = snapshot(docker_engine, SLIMMED)
    # named as the md5sums records it (bookworm keeps pre-merge paths in its lists)
    assert snap.ownership["missing"] == {"zlib1g:amd64": ["/lib/x86_64-linux-gnu/libz.so.1.2.13"]}


SLIMMED_PATH = "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"


def _slim(root: Path) -> None:
    (root / SLIMMED_PATH.lstrip("/")).unlink()


SLIMMED = Recipe("distroless-slimmed", _slim, parent=distroless.BASE)
