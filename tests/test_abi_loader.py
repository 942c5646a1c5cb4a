"""ABI verdicts as the dynamic loader sees them: for each case (a symbol moved into a NEEDED
library, versioning added or removed, a plugin without a soname losing a symbol), the real
ld.so runs a consumer built against the old side in the new image, and the gate's verdict must
agree with it (or differ only as docs/compat-rules.md says: a plugin outside the loader's path is
review)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import testimages
from harness.config import HarnessConfig, ImageSpec
from harness.gate import SnapshotStore, check_aspect
from testimages.abi import LOADER_CASES, LoaderCase, case_expect, case_recipe, triplet

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnapshotStore]:
    snapshots = SnapshotStore(tmp_path_factory.mktemp("abi-loader-snapshots"),
                              f"abi-loader-tests-{uuid.uuid4().hex[:12]}")
    yield snapshots
    snapshots.cleanup()


def loader_runs(tag: str) -> tuple[bool, str]:
    """Whether the consumer built against the old side runs (exit 0) in image `tag`."""
    name = f"abi-loader-{uuid.uuid4().hex[:12]}"
    proc = subprocess.run(["docker", "run", "--rm", "--name", name, "--network", "none",
                           "-e", "LD_BIND_NOW=1", tag, "/usr/bin/foo-user"],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("case", LOADER_CASES, ids=lambda c: c.name)
def test_gate_agrees_with_the_loader(case: LoaderCase, store: SnapshotStore, tmp_path: Path) -> None:
    old_tag = testimages.build(case_recipe(case, "old"))
    new_tag = testimages.build(case_recipe(case, "new"))
    assert loader_runs(old_tag)[0]  # the consumer works against the library it was built for
    runs, stderr = loader_runs(new_tag)
    assert runs == case.loads, stderr
    config = HarnessConfig()
    first = check_aspect(ImageSpec("loader", old_tag), "abi", store, tmp_path, config, update=True)
    assert first.error is None and first.verdict == "pass" and first.changes == []
    result = check_aspect(ImageSpec("loader", new_tag), "abi", store, tmp_path, config)
    assert result.error is None and not result.missing_baseline
    diffs = {(c.kind, c.subject, c.verdict) for c in result.changes
             if c.kind not in ("symbol-unresolved", "needed-unresolved")}
    assert diffs == case_expect(case)
    breaks = any(v == "break" for _, _, v in diffs)
    plugin_outside_path = case.name == "plugin-symbol-removed"
    assert breaks == (not runs) or (plugin_outside_path and not breaks)
    assert (result.verdict == "fail") == (not runs and not plugin_outside_path)
    moved = [c for c in result.changes if c.kind == "symbol-moved"]
    assert all(c.after["provider"] == "libbar.so.1" for c in moved)


@pytest.mark.parametrize("case", [c for c in LOADER_CASES if not c.loads and c.new.foo is not None],
                         ids=lambda c: c.name)
def test_linkage_alone_sees_what_the_loader_refuses(case: LoaderCase, store: SnapshotStore,
                                                    tmp_path: Path) -> None:
    """Without a baseline: the consumer of the old side is named as not loading."""
    result = check_aspect(ImageSpec("fresh", testimages.build(case_recipe(case, "new"))), "abi",
                          store, tmp_path, HarnessConfig())
    assert result.missing_baseline
    assert {(c.kind, c.consumer, c.verdict) for c in result.changes} >= {
        ("symbol-unresolved", "/usr/bin/foo-user", "break")}


@pytest.mark.skipif(shutil.which("abidiff") is None, reason="abidiff (abigail-tools) not installed")
@pytest.mark.parametrize("case", [c for c in LOADER_CASES if c.new.foo is not None], ids=lambda c: c.name)
def test_abidiff_differs_only_on_the_move(case: LoaderCase) -> None:
    """abidiff (without --follow-dependencies) agrees with the loader on every libfoo case
    but the kept-node move, which it reports as a removal (bit 8) and ld.so runs."""
    libfoo = [testimages.rootfs(case_recipe(case, side)) / "usr/lib" / triplet() / "libfoo.so.1"
              for side in ("old", "new")]
    status = subprocess.run(["abidiff", *map(str, libfoo)], capture_output=True).returncode
    assert not status & 3
    incompatible = bool(status & 8)
    assert incompatible == (not case.loads or case.name == "moved-node-kept")
