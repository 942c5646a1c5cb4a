"""The ABI aspect on whole images through the engine: Debian minbase against readelf and
libc6's symbols file, intact fixtures (minbase, RPM, busybox, musl), a purged library."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import testimages
from harness.config import HarnessConfig, ImageSpec
from harness.aspects.abi import suppressions
from harness.diff.abi import baseline_records, linkage_changes
from harness.gate import SnapshotStore, check_aspect
from harness.snapshot import Snapshot
from testimages.abi import (MINBASE_PURGED, MUSL_BROKEN, MUSL_GCC, MUSL_IMAGE, PURGED_SONAME,
                            RPM_IMAGE)
from testimages.debian import MINBASE
from testimages.tiny import BASE as BUSYBOX

pytestmark = pytest.mark.docker

_READELF_SYM = re.compile(
    r"^\s*\d+:\s+[0-9a-f]+\s+(\d+|0x[0-9a-f]+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)(?:\s+\(\d+\))?$")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnapshotStore]:
    """Snapshots taken once per module; containers removed at the end."""
    snapshots = SnapshotStore(tmp_path_factory.mktemp("abi-snapshots"),
                              f"abi-image-tests-{uuid.uuid4().hex[:12]}")
    yield snapshots
    snapshots.cleanup()


@pytest.fixture(scope="module")
def minbase(store: SnapshotStore) -> Snapshot:
    """The debootstrap minbase snapshot."""
    return store.snapshot(store.find_image(ImageSpec("minbase", testimages.build(MINBASE))))


def readelf_exports(paths: list[Path]) -> dict[Path, set[tuple[str, str | None, bool]]]:
    """readelf --dyn-syms -W: defined GLOBAL/WEAK/UNIQUE symbols of DEFAULT/PROTECTED
    visibility, as (name, version, default) per file."""
    out = subprocess.run(["readelf", "--dyn-syms", "-W", *map(str, paths)], capture_output=True,
                         text=True, check=True).stdout
    result: dict[Path, set[tuple[str, str | None, bool]]] = {p: set() for p in paths}
    current = paths[0]
    for line in out.splitlines():
        if line.startswith("File: "):
            current = Path(line[6:])
            continue
        m = _READELF_SYM.match(line)
        if not m:
            continue
        _, kind, bind, vis, ndx, name = m.groups()
        if ndx == "UND" or bind not in ("GLOBAL", "WEAK", "UNIQUE") or vis not in ("DEFAULT", "PROTECTED"):
            continue
        if "@@" in name:
            base, version = name.split("@@", 1)
            result[current].add((base, version, True))
        elif "@" in name:
            base, version = name.split("@", 1)
            result[current].add((base, version, False))
        elif ndx == "ABS" and kind == "OBJECT":
            result[current].add((name, name, True))  # a version node's marker: readelf omits @@
        else:
            result[current].add((name, None, True))
    return result


def _differing_from_readelf(snap: Snapshot, root: Path) -> list[str]:
    """Shared objects of the snapshot whose exports are not those readelf lists."""
    shared = {p: o for p, o in snap.abi["objects"].items() if o.get("type") == "DYN"}
    assert len([o for o in shared.values() if o.get("soname")]) > 100
    assert not [p for p, o in snap.abi["objects"].items() if "error" in o]
    oracle = readelf_exports([root / p.lstrip("/") for p in sorted(shared)])
    return [path for path, facts in sorted(shared.items())
            if {(e[0], e[1], e[2]) for e in facts["exports"]} != oracle[root / path.lstrip("/")]]


def test_minbase_exports_equal_readelf(minbase: Snapshot) -> None:
    assert _differing_from_readelf(minbase, testimages.rootfs(MINBASE)) == []
    libc = {(e[0], e[1]) for e in minbase.abi["objects"]["/usr/lib/x86_64-linux-gnu/libc.so.6"]["exports"]}
    assert len(libc) > 2500  # the comparison is not vacuous


def test_every_symbol_of_a_table_lief_miscounts_is_read(store: SnapshotStore) -> None:
    """LIEF 0.15 counts libicui18n's dynamic symbols as 722 of the 9,483 its .dynsym holds
    (its exports then vanish from a snapshot, and a removed ICU symbol with them): the table
    is read to the size its section gives, as readelf reads it."""
    from testimages.runtimes import PHP

    snap = store.snapshot(store.find_image(ImageSpec("rt-php8.2", testimages.build(PHP))))
    assert _differing_from_readelf(snap, testimages.rootfs(PHP)) == []
    icu = next(o for o in snap.abi["objects"].values() if o.get("soname") == "libicui18n.so.72")
    assert len(icu["exports"]) > 8000


def test_minbase_has_every_libc6_symbol_with_its_version(minbase: Snapshot) -> None:
    text = (testimages.rootfs(MINBASE) / "var/lib/dpkg/info/libc6:amd64.symbols").read_text()
    by_soname = {o["soname"]: {(e[0], e[1]) for e in o["exports"]}
                 for o in minbase.abi["objects"].values() if o.get("soname")}
    checked, missing = 0, []
    library: str | None = None
    for line in text.splitlines():
        if line and line[0] not in " |*":
            library = line.split()[0]
            continue
        if not line.startswith(" ") or library is None:
            continue  # `| alternative dependency` and `* field` lines
        spec = re.sub(r"^\s*(\([^)]*\))?", "", line).split()[0]
        name, _, version = spec.partition("@")
        checked += 1
        # `@Base`: the symbols file's spelling of an unversioned symbol
        if (name, None if version == "Base" else version) not in by_soname.get(library, set()):
            missing.append(f"{library}:{spec}")
    assert checked > 2500 and missing == []


def test_minbase_links_and_its_baseline_round_trips(minbase: Snapshot, store: SnapshotStore,
                                                    tmp_path: Path) -> None:
    assert linkage_changes(minbase.abi) == []
    spec = ImageSpec("minbase", testimages.build(MINBASE))
    first = check_aspect(spec, "abi", store, tmp_path, HarnessConfig(), update=True)
    assert first.error is None and first.updated and first.changes == []
    again = check_aspect(spec, "abi", store, tmp_path, HarnessConfig())
    assert again.verdict == "pass" and again.changes == []
    text = (tmp_path / "minbase" / minbase.arch / "abi.json").read_text()
    records = baseline_records(minbase.abi, suppressions(HarnessConfig()))
    assert len(text.splitlines()) == len(records) + 2  # header line + one per record + closing
    assert '"libc.so.6:printf@GLIBC_2.2.5": {"bind": "GLOBAL", "default": true, "type": "FUNC"}' in text
    assert "GLIBC_PRIVATE" not in text


@pytest.mark.parametrize("recipe", [RPM_IMAGE, BUSYBOX, MUSL_IMAGE], ids=["rpm", "busybox", "musl"])
def test_intact_fixture_reports_no_linkage_problem(recipe: testimages.Recipe, store: SnapshotStore,
                                                   tmp_path: Path) -> None:
    if recipe is MUSL_IMAGE and MUSL_GCC is None:
        pytest.skip("musl-gcc (Debian musl-tools) is not installed")
    result = check_aspect(ImageSpec(recipe.name, testimages.build(recipe)), "abi", store, tmp_path,
                          HarnessConfig())
    assert result.error is None and result.missing_baseline
    assert result.changes == []
    snap = store.snapshot(store.find_image(ImageSpec(recipe.name, testimages.build(recipe))))
    dynamic = [p for p, o in snap.abi["objects"].items() if o.get("needed")]
    if recipe is not BUSYBOX:
        assert dynamic  # programs that need libraries were checked, and all resolved
    if recipe is RPM_IMAGE:
        assert snap.abi["objects"]["/opt/app/bin/app"]["runpath"] == ["$ORIGIN/../lib"]
        assert "/usr/lib64/foo/libfoo.so.1" in snap.abi["objects"]


@pytest.mark.skipif(MUSL_GCC is None, reason="musl-gcc (Debian musl-tools) is not installed")
def test_musl_symbol_gone_breaks(store: SnapshotStore, tmp_path: Path) -> None:
    result = check_aspect(ImageSpec("musl", testimages.build(MUSL_BROKEN)), "abi", store, tmp_path,
                          HarnessConfig())
    assert [(c.kind, c.subject, c.consumer, c.verdict) for c in result.changes] == [
        ("symbol-unresolved", "libfoo.so.1:foo_extra@FOO_2.0", "/usr/bin/musl-user", "break")]


def _needing(root: Path, objects: dict[str, Any], soname: str) -> set[str]:
    """readelf -d: every ELF file of the root whose DT_NEEDED names `soname`."""
    paths = sorted(objects)
    out = subprocess.run(["readelf", "-d", *(str(root / p.lstrip("/")) for p in paths)],
                         capture_output=True, text=True).stdout
    found, current = set(), None
    for line in out.splitlines():
        if line.startswith("File: "):
            current = "/" + str(Path(line[6:]).relative_to(root))
        elif "(NEEDED)" in line and f"[{soname}]" in line and current:
            found.add(current)
    return found


def test_purged_library_package(store: SnapshotStore, tmp_path: Path) -> None:
    tag = testimages.build(MINBASE_PURGED)
    snap = store.snapshot(store.find_image(ImageSpec("purged", tag)))
    assert not any(o.get("soname") == PURGED_SONAME for o in snap.abi["objects"].values())
    expected = _needing(testimages.rootfs(MINBASE_PURGED), snap.abi["objects"], PURGED_SONAME)
    assert len(expected) > 20 and "/usr/bin/ls" in expected
    result = check_aspect(ImageSpec("purged", tag), "abi", store, tmp_path, HarnessConfig())
    assert result.verdict == "fail"
    unresolved = [c for c in result.changes if c.kind == "needed-unresolved"]
    assert {c.subject for c in unresolved} == {PURGED_SONAME}
    assert {c.consumer for c in unresolved} == expected
    assert all(c.verdict == "break" for c in unresolved)
    assert [c for c in result.changes if c.kind == "symbol-unresolved"] == []
