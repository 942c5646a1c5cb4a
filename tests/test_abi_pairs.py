"""Library pairs built with gcc and version scripts, one per compat rule: the gate's verdict
(through images, baselines and the policy) agrees with abidiff's incompatible bit (8), except
where docs/compat-rules.md is deliberately stricter: an exported variable that grew."""

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
from testimages.abi import PAIRS, Pair, pair_library, pair_recipe

pytestmark = pytest.mark.docker

ABIDIFF_CHANGE, ABIDIFF_INCOMPATIBLE = 4, 8


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnapshotStore]:
    """Snapshots taken once per module; containers removed at the end."""
    snapshots = SnapshotStore(tmp_path_factory.mktemp("abi-pair-snapshots"),
                              f"abi-pair-tests-{uuid.uuid4().hex[:12]}")
    yield snapshots
    snapshots.cleanup()


def abidiff(old: Path, new: Path) -> int:
    """abidiff's exit status: a bit field (1 error, 2 usage, 4 ABI change, 8 incompatible)."""
    proc = subprocess.run(["abidiff", str(old), str(new)], capture_output=True, text=True)
    assert not proc.returncode & 3, proc.stderr
    return proc.returncode


def gate(pair: Pair, store: SnapshotStore, baselines: Path) -> tuple[Path, Path, list[tuple[str, str, str]], bool]:
    """Baseline the old image, judge the new one: (old lib, new lib, changes, gate fails)."""
    old_recipe, new_recipe = pair_recipe(pair, "old"), pair_recipe(pair, "new")
    config = HarnessConfig()
    first = check_aspect(ImageSpec("libfoo", testimages.build(old_recipe)), "abi", store,
                         baselines, config, update=True)
    assert first.error is None and first.updated and first.verdict == "pass"
    assert first.changes == []  # the old image links completely
    result = check_aspect(ImageSpec("libfoo", testimages.build(new_recipe)), "abi", store,
                          baselines, config)
    assert result.error is None and not result.missing_baseline
    changes = [(c.kind, c.subject, c.verdict) for c in result.changes]
    return (pair_library(testimages.rootfs(old_recipe), pair, "old"),
            pair_library(testimages.rootfs(new_recipe), pair, "new"), changes, result.verdict == "fail")


@pytest.mark.parametrize("pair", [p for p in PAIRS if not p.stricter], ids=lambda p: p.name)
def test_verdict_agrees_with_abidiff(pair: Pair, store: SnapshotStore, tmp_path: Path) -> None:
    old, new, changes, fails = gate(pair, store, tmp_path)
    assert pair.expect in changes
    assert fails == bool(abidiff(old, new) & ABIDIFF_INCOMPATIBLE)


@pytest.mark.parametrize("pair", [p for p in PAIRS if p.stricter], ids=lambda p: p.name)
def test_grown_variable_is_stricter_than_abidiff(pair: Pair, store: SnapshotStore, tmp_path: Path) -> None:
    """abidiff: a change (bit 4), not incompatible, and only with debug info; the gate: a
    break (a copy relocation in every program silently truncates the grown variable)."""
    old, new, changes, fails = gate(pair, store, tmp_path)
    assert pair.expect in changes and fails
    assert abidiff(old, new) == ABIDIFF_CHANGE
    stripped = []
    for side, lib in (("old", old), ("new", new)):
        copy = tmp_path / f"{side}-{lib.name}"
        shutil.copy2(lib, copy)
        subprocess.run(["strip", "--strip-debug", str(copy)], check=True)
        stripped.append(copy)
    assert abidiff(*stripped) == 0


def test_breaking_pairs_also_fail_the_linkage_of_their_consumer(store: SnapshotStore, tmp_path: Path) -> None:
    """The consumer built against the old library no longer loads: reported without any
    baseline, with the consuming path."""
    pair = next(p for p in PAIRS if p.name == "function-removed")
    result = check_aspect(ImageSpec("fresh", testimages.build(pair_recipe(pair, "new"))), "abi", store,
                          tmp_path, HarnessConfig())
    assert result.missing_baseline
    assert [(c.kind, c.subject, c.consumer, c.verdict) for c in result.changes] == [
        ("symbol-unresolved", "libfoo.so.1:foo_extra@FOO_1.0", "/usr/bin/foo-user", "break")]
