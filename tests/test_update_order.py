"""`--update-baselines` writes a baseline only once the changes it accepts are computed and
judged: a judgement that fails leaves the stored baseline as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import testimages
from harness import baseline, gate
from harness.config import HarnessConfig, ImageSpec
from harness.diff.probes import probe_records
from harness.gate import SnapshotStore, check_aspect, check_probes
from testimages import tiny

pytestmark = pytest.mark.docker

NAME = "order"


def _update(cache: Path, run_id: str, root: Path, aspect: str = "files") -> Any:
    store = SnapshotStore(cache, run_id)
    try:
        spec = ImageSpec(NAME, testimages.build(tiny.BASE))
        if aspect.startswith("probes."):
            return check_probes(spec, "busybox", probe_records("busybox", {"applet": ["ls"]}),
                                store, root, HarnessConfig(), update=True)
        return check_aspect(spec, aspect, store, root, HarnessConfig(), update=True)
    finally:
        store.cleanup()


def _fail_judging(*args: Any, **kwargs: Any) -> Any:
    raise MemoryError("judging")


@pytest.mark.parametrize("aspect", ["files", "probes.busybox"])
def test_a_failed_judgement_leaves_the_baseline_unwritten(
        aspect: str, docker_engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, root = tmp_path / "cache", tmp_path / "baselines"
    assert _update(cache, "order-1", root, aspect).error is None
    path = baseline.aspect_path(root, NAME, "x86_64", aspect)
    header, records = baseline.load(root, NAME, "x86_64", aspect)
    # a stored baseline that the new one would replace
    stale = {**records, **({"/stale": records["/bin"]} if aspect == "files"
                           else probe_records("busybox", {"applet": ["stale"]}))}
    baseline.write(root, NAME, "x86_64", aspect, header, stale)
    before = path.read_bytes()

    with monkeypatch.context() as patched:
        patched.setattr(gate, "judge", _fail_judging)
        failed = _update(cache, "order-2", root, aspect)
    assert failed.error == "could not be judged: MemoryError: judging"
    assert not failed.updated
    assert path.read_bytes() == before

    accepted = _update(cache, "order-3", root, aspect)
    assert accepted.error is None and accepted.updated
    assert baseline.load(root, NAME, "x86_64", aspect)[1] == records
    removed = [c for c in accepted.changes if "stale" in c.subject]
    assert removed and all(c.reason == gate.ACCEPTED for c in removed if c.verdict == "break")
