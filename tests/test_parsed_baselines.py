"""Baselines kept parsed in the cache (harness.baseline `parsed_in`): a file's bytes parsed
and checked once, found again by their sha256; a damaged or stale entry is a miss, a
corrupt baseline is never kept."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from harness import baseline
from harness.errors import BaselineCorrupt

_FILES = {f"/usr/lib/f{i}": {"type": "file", "mode": "0644", "uid": 0, "gid": 0, "size": i,
                             "sha256": f"{i:064x}", "package": "libc6"} for i in range(5)}


@pytest.fixture(autouse=True)
def _fresh() -> Any:
    baseline._LOADED.clear()
    baseline._DIGESTS.clear()
    yield
    baseline._LOADED.clear()


def _write(root: Path, records: dict[str, Any] = _FILES) -> Path:
    baseline.write(root, "img", "x86_64", "files", {"image_id": "sha256:1"}, records)
    return baseline.aspect_path(root, "img", "x86_64", "files")


def _load(root: Path, like: dict[str, Any] | None = None
          ) -> tuple[dict[str, Any], Mapping[str, Any]]:
    baseline._LOADED.clear()
    return baseline.load(root, "img", "x86_64", "files", like)


def test_a_kept_baseline_is_found_again_not_parsed(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "b")
    kept = tmp_path / "parsed"
    with baseline.parsed_in(kept):
        first = _load(tmp_path / "b")
        assert len(list(kept.iterdir())) == 1
        monkeypatch.setattr(baseline, "_read_written",
                            lambda f, like=None: pytest.fail("parsed again"))
        assert _load(tmp_path / "b") == first
    assert first == (json.loads(path.read_text())["image"], _FILES)


def test_the_judged_snapshots_records_are_taken_from_a_kept_baseline(tmp_path: Path) -> None:
    _write(tmp_path / "b")
    with baseline.parsed_in(tmp_path / "parsed"):
        _load(tmp_path / "b")
        snapshot_files = {k: dict(v) for k, v in _FILES.items()}
        _, records = _load(tmp_path / "b", snapshot_files)
    assert all(records[k] is snapshot_files[k] for k in _FILES)


@pytest.mark.parametrize("damage", [
    lambda data: data[:len(data) // 2],
    lambda data: b"",
    lambda data: __import__("marshal").dumps(({"x": 1},)),  # another shape
    lambda data: __import__("marshal").dumps(([], {})),
])
def test_a_damaged_entry_is_a_miss(tmp_path: Path, damage: Any) -> None:
    _write(tmp_path / "b")
    kept = tmp_path / "parsed"
    with baseline.parsed_in(kept):
        want = _load(tmp_path / "b")
        (entry,) = kept.iterdir()
        entry.write_bytes(damage(entry.read_bytes()))
        assert _load(tmp_path / "b") == want


def test_an_edited_baseline_is_not_the_kept_one(tmp_path: Path) -> None:
    path = _write(tmp_path / "b")
    with baseline.parsed_in(tmp_path / "parsed"):
        _load(tmp_path / "b")
        edited = {**_FILES, "/usr/lib/f0": {**_FILES["/usr/lib/f0"], "mode": "4755"}}
        baseline._DIGESTS.clear()
        _write(tmp_path / "b", edited)
        assert _load(tmp_path / "b")[1] == edited
        assert json.loads(path.read_text())["records"] == edited


def test_a_large_or_corrupt_baseline_is_not_kept(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    kept = tmp_path / "parsed"
    path = _write(tmp_path / "b")
    with baseline.parsed_in(kept):
        monkeypatch.setattr(baseline, "PARSED_MAX", path.stat().st_size - 1)
        _load(tmp_path / "b")
        assert not kept.exists()
        monkeypatch.undo()
        path.write_text(path.read_text().replace('"uid": 0', '"uid": "root"', 1))
        baseline._DIGESTS.clear()
        with pytest.raises(BaselineCorrupt, match="'uid' must be an integer"):
            _load(tmp_path / "b")
        assert not kept.exists()
