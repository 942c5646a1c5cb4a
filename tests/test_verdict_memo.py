"""Judgements are reused across runs only while everything they depend on is unchanged: the
image, the baseline file, the configuration, the harness code and the date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

import testimages
from harness import baseline
from harness.config import HarnessConfig, ImageSpec, Waiver
from harness.gate import SnapshotStore, check_aspect
from harness.policy import WaiverUse
from testimages import tiny

pytestmark = pytest.mark.docker

NAME = "memo"


class NoSnapshot(SnapshotStore):
    """A store that must not need the snapshot (the judgement comes from the memo)."""

    def snapshot(self, info: Any) -> Any:
        raise AssertionError("the snapshot was loaded: the stored judgement was not reused")


def _check(store: SnapshotStore, root: Path, config: HarnessConfig,
           use: WaiverUse | None = None, update: bool = False) -> Any:
    spec = ImageSpec(NAME, testimages.build(tiny.BASE))
    try:
        return check_aspect(spec, "files", store, root, config, update=update, waiver_use=use)
    finally:
        store.cleanup()


def test_a_rerun_reuses_the_judgement_until_an_input_changes(docker_engine: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cache, root = tmp_path / "cache", tmp_path / "baselines"
    config = HarnessConfig()
    _check(SnapshotStore(cache, "memo-1"), root, config, update=True)
    # a baseline that lacks one file of the image: the image shows an added file (info)
    header, records = baseline.load(root, NAME, "x86_64", "files")
    gone = sorted(p for p, r in records.items() if r.get("type") == "file")[0]
    baseline.write(root, NAME, "x86_64", "files", header,
                   {p: r for p, r in records.items() if p != gone})
    first = _check(SnapshotStore(cache, "memo-2"), root, config)
    assert [(c.kind, c.subject) for c in first.changes] == [("file-added", gone)]

    again = _check(NoSnapshot(cache, "memo-3"), root, config)
    assert again.to_dict() == first.to_dict()

    # each input, changed alone, asks for a new judgement
    waiver = Waiver(kind="file-added", subject=gone, reason="test",
                    expires=dt.date.today() + dt.timedelta(days=1))
    # a judgement that loads the snapshot meets the stub's assertion: the aspect's error
    waived = HarnessConfig(waivers=(waiver,))
    assert "not reused" in str(_check(NoSnapshot(cache, "memo-4"), root, waived).error)
    baseline.write(root, NAME, "x86_64", "files", header, records)
    assert "not reused" in str(_check(NoSnapshot(cache, "memo-5"), root, config).error)

    class Tomorrow(dt.date):
        @classmethod
        def today(cls) -> dt.date:
            return dt.date(2999, 1, 1)

    monkeypatch.setattr(dt, "date", Tomorrow)
    assert "not reused" in str(_check(NoSnapshot(cache, "memo-6"), root, config).error)


def test_waiver_use_is_replayed(docker_engine: Any, tmp_path: Path) -> None:
    cache, root = tmp_path / "cache", tmp_path / "baselines"
    _check(SnapshotStore(cache, "memo-7"), root, HarnessConfig(), update=True)
    header, records = baseline.load(root, NAME, "x86_64", "files")
    gone = sorted(p for p, r in records.items() if r.get("type") == "file")[0]
    baseline.write(root, NAME, "x86_64", "files", header,
                   {p: r for p, r in records.items() if p != gone})
    config = HarnessConfig(waivers=(Waiver(kind="file-added", subject=gone, reason="test"),
                                    Waiver(kind="file-removed", subject="/nothing", reason="x")))
    fresh, replayed = WaiverUse(), WaiverUse()
    first = _check(SnapshotStore(cache, "memo-8"), root, config, fresh)
    again = _check(NoSnapshot(cache, "memo-9"), root, config, replayed)
    assert first.changes[0].waived and again.to_dict() == first.to_dict()
    assert fresh.matched == replayed.matched == {0: 1}  # the second waiver stays stale


def test_update_runs_and_errors_are_never_reused(docker_engine: Any, tmp_path: Path) -> None:
    cache, root = tmp_path / "cache", tmp_path / "baselines"
    _check(SnapshotStore(cache, "memo-10"), root, HarnessConfig(), update=True)
    assert not (cache / "verdicts").exists()
    missing = ImageSpec(NAME, "harness-test/no-such-image:never")
    store = SnapshotStore(cache, "memo-11")
    result = check_aspect(missing, "files", store, root, HarnessConfig())
    assert result.error and not (cache / "verdicts").exists()
