"""Baselines: reviewable text, atomic replacement, clear errors for damaged files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import baseline
from harness.errors import BaselineCorrupt, BaselineMissing, BaselineWriteError

RECORDS = {"/b": {"mode": "0755", "type": "dir"}, "/a": {"type": "file", "size": 1}}


def test_one_sorted_record_per_line(tmp_path: Path) -> None:
    assert baseline.write(tmp_path, "img", "x86_64", "files", {"image_id": "sha256:1"}, RECORDS)
    lines = (tmp_path / "img/x86_64/files.json").read_text().splitlines()
    assert lines[1:] == ['"/a": {"size": 1, "type": "file"},', '"/b": {"mode": "0755", "type": "dir"}', "}}"]
    assert '"schema": 1' in lines[0] and '"image_id": "sha256:1"' in lines[0]
    assert oct((tmp_path / "img/x86_64/files.json").stat().st_mode & 0o777) != "0o600"


def test_unchanged_write_touches_nothing(tmp_path: Path) -> None:
    baseline.write(tmp_path, "img", "x86_64", "files", {}, RECORDS)
    path = tmp_path / "img/x86_64/files.json"
    stamp = path.stat().st_mtime_ns
    assert not baseline.write(tmp_path, "img", "x86_64", "files", {}, dict(reversed(list(RECORDS.items()))))
    assert path.stat().st_mtime_ns == stamp


def test_failed_write_keeps_the_old_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    baseline.write(tmp_path, "img", "x86_64", "files", {}, RECORDS)
    path = tmp_path / "img/x86_64/files.json"
    old = path.read_bytes()

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(BaselineWriteError, match="No space left.*previous file is intact"):
        baseline.write(tmp_path, "img", "x86_64", "files", {}, {"/c": {}})
    assert path.read_bytes() == old
    assert sorted(p.name for p in path.parent.iterdir()) == ["files.json"]  # no temp file left


@pytest.mark.parametrize("text, match", [
    ("{not json", "is not valid JSON"),
    ('{"schema": 1, "aspect": "files"}', "no 'records'"),
    ('{"schema": 99, "aspect": "files", "records": {}}', "schema 99"),
    ('{"schema": 1, "aspect": "packages", "records": {}}', "holds aspect 'packages'"),
])
def test_damaged_baselines_name_their_path(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "img/x86_64/files.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(BaselineCorrupt, match=match) as info:
        baseline.load(tmp_path, "img", "x86_64", "files")
    assert str(path) in str(info.value)


def test_missing_baseline(tmp_path: Path) -> None:
    with pytest.raises(BaselineMissing, match="no baseline"):
        baseline.load(tmp_path, "img", "x86_64", "files")
