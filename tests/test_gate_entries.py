"""What the plugin asks of an image goes through gate.py, one entry per need: its runtime
families (detected, configured, or recorded in its baselines), its runtime target and shell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import testimages
from harness import baseline, gate
from harness.config import ImageSpec
from harness.gate import SnapshotStore
from testimages import tiny

pytestmark = pytest.mark.docker


def test_families_target_and_shell_of_an_image(docker_engine: Any, tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "cache", "gate-entries")
    root = tmp_path / "baselines"
    spec = ImageSpec("tiny", testimages.build(tiny.BASE))
    try:
        # static busybox with a dpkg database, no runtime: a busybox image, minimal
        assert gate.image_families(spec, store, root) == ("busybox", "minimal")
        # a family the baselines hold probes of still applies to the candidate
        baseline.write(root, "tiny", "x86_64", "probes.rt-python3.11", {}, {})
        assert gate.image_families(spec, store, root) == ("busybox", "minimal", "rt-python3.11")
        configured = ImageSpec("tiny", spec.ref, ("rt-static",))
        assert gate.image_families(configured, store, root) == ("rt-static",)

        target = gate.run_target(spec, store)
        assert target.image_id == docker_engine.find_or_pull(spec.ref).image_id
        assert target.arch == "x86_64" and target.runnable.ok and not target.runnable.emulated
        assert gate.runtime_shell(spec, store) == "/bin/sh"
    finally:
        store.cleanup()
