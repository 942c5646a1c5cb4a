"""A real upgrade across glibc 2.34's moves: Debian bullseye minbase (glibc 2.31, baseline)
against bookworm minbase (glibc 2.36, candidate). libpthread/libdl/librt/libutil/libresolv/
libanl became stubs that keep their version nodes while libc.so.6 defines their symbols: ld.so
still runs bullseye's programs (checked here by running them in the bookworm image), and the
gate reports those symbols as moved, not removed; every other ABI change stays as it was."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import testimages
from harness.config import HarnessConfig, ImageSpec
from harness.diff.abi import split_symbol_key
from harness.outcome.result import AspectResult
from harness.gate import SnapshotStore, check_aspect
from testimages.abi import BULLSEYE
from testimages.debian import MINBASE

pytestmark = pytest.mark.docker

MOVED_FROM = ("libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "libresolv.so.2",
              "libanl.so.1")
#: bullseye programs that bind moved symbols through the old libraries
OLD_PROGRAMS = (("usr/bin/sort", "--version"), ("usr/bin/timeout", "--version"),
                ("usr/bin/flock", "--version"), ("usr/bin/bash", "--version"))


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AspectResult, dict[str, dict[str, Any]]]]:
    store = SnapshotStore(tmp_path_factory.mktemp("upgrade-snapshots"), f"abi-upgrade-{uuid.uuid4().hex[:12]}")
    baselines = tmp_path_factory.mktemp("upgrade-baselines")
    try:
        config = HarnessConfig()
        first = check_aspect(ImageSpec("debian", testimages.build(BULLSEYE)), "abi", store, baselines,
                             config, update=True)
        assert first.error is None and first.updated
        result = check_aspect(ImageSpec("debian", testimages.build(MINBASE)), "abi", store, baselines, config)
        assert result.error is None and not result.missing_baseline
        accepted = tmp_path_factory.mktemp("upgrade-candidate")
        check_aspect(ImageSpec("debian", testimages.build(MINBASE)), "abi", store, accepted, config,
                     update=True)
        old = json.loads(next(baselines.rglob("abi.json")).read_text())["records"]
        new = json.loads(next(accepted.rglob("abi.json")).read_text())["records"]
        yield result, {"old": old, "new": new}
    finally:
        store.cleanup()


def test_bullseye_programs_run_on_bookworm() -> None:
    """The oracle: ld.so binds their libpthread/libdl/librt references to libc.so.6."""
    old_root = testimages.rootfs(BULLSEYE)
    tag = testimages.build(MINBASE)
    for program, arg in OLD_PROGRAMS:
        needed = subprocess.run(["readelf", "-d", str(old_root / program)], capture_output=True,
                                text=True, check=True).stdout
        assert any(lib in needed for lib in MOVED_FROM), program
        proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "-e", "LD_BIND_NOW=1",
                               "-v", f"{old_root / program}:/opt/old:ro", tag, "/opt/old", arg],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (program, proc.stderr)


def test_glibc_moves_are_no_break(upgrade: tuple[AspectResult, dict[str, dict[str, Any]]]) -> None:
    result, _ = upgrade
    subjects = {(c.kind, c.subject): c for c in result.changes}
    for key in ("libpthread.so.0:pthread_create@GLIBC_2.2.5", "libdl.so.2:dlopen@GLIBC_2.2.5",
                "librt.so.1:shm_open@GLIBC_2.2.5", "libutil.so.1:openpty@GLIBC_2.2.5",
                "libresolv.so.2:__dn_expand@GLIBC_2.2.5"):
        change = subjects[("symbol-moved", key)]
        assert change.verdict == "info" and change.after["provider"] == "libc.so.6"
    assert not [c.subject for c in result.changes if c.verdict == "break"
                and split_symbol_key(c.subject)[0] in MOVED_FROM]


def test_other_abi_changes_are_reported_as_before(upgrade: tuple[AspectResult, dict[str, dict[str, Any]]]) -> None:
    """Each symbol of the baseline missing from a library of the candidate is reported once,
    as moved (provider in the NEEDED closure) or removed; the rest of the upgrade still
    fails: real removals, dropped libraries and soname bumps."""
    result, records = upgrade
    old, new = records["old"], records["new"]
    gone = {k for k in old.keys() - new.keys() if ":" in k and split_symbol_key(k)[0] in new}
    moved = {c.subject for c in result.changes if c.kind == "symbol-moved"}
    removed = {c.subject for c in result.changes if c.kind == "symbol-removed"}
    assert not moved & removed
    assert moved | removed == gone
    assert len(moved) > 300 and {split_symbol_key(k)[0] for k in moved} <= {*MOVED_FROM, "libm.so.6"}
    kinds = {(c.kind, c.subject, c.verdict) for c in result.changes}
    assert {("library-removed", "libssl.so.1.1", "break"), ("soname-changed", "libffi.so.7", "break"),
            ("symbol-removed", "libc.so.6:malloc_get_state@GLIBC_2.2.5", "break"),
            ("symbol-removed", "ld-linux-x86-64.so.2:malloc@GLIBC_2.2.5", "break")} <= kinds
    assert result.verdict == "fail"
