"""Baselines: reviewable text, atomic replacement, clear errors for damaged files."""

from __future__ import annotations

import os
from typing import Any
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


def test_file_digest_follows_a_replace_and_an_edit_in_place(tmp_path: Path) -> None:
    import hashlib

    baseline.write(tmp_path, "img", "x86_64", "files", {}, RECORDS)
    path = tmp_path / "img/x86_64/files.json"
    first = baseline.file_digest(path)
    assert first == hashlib.sha256(path.read_bytes()).digest()
    baseline.write(tmp_path, "img", "x86_64", "files", {}, {"/a": {"type": "file", "size": 2}})
    second = baseline.file_digest(path)  # replaced by rename: a new inode
    assert second != first and second == hashlib.sha256(path.read_bytes()).digest()
    text = path.read_bytes()
    stat = path.stat()
    with path.open("r+b") as out:  # the same size, same inode, times set back as they were
        out.write(text.replace(b'"size": 2', b'"size": 3'))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert baseline.file_digest(path) == hashlib.sha256(path.read_bytes()).digest() != second
    path.unlink()
    with pytest.raises(FileNotFoundError):
        baseline.file_digest(path)


def test_stored_aspects_and_unused_image_folders(tmp_path: Path) -> None:
    """Only baseline.py knows the NAME/ARCH/ASPECT.json layout: what is stored for an image,
    and which image folders no image of a run claims."""
    for aspect in ("probes.rt-python3.11", "files", "probes.busybox"):
        baseline.write(tmp_path, "img", "x86_64", aspect, {}, {})
    baseline.write(tmp_path, "old", "x86_64", "files", {}, {})
    (tmp_path / "img/x86_64/notes.txt").write_text("not a baseline")
    assert baseline.stored_aspects(tmp_path, "img", "x86_64") == [
        "files", "probes.busybox", "probes.rt-python3.11"]
    assert baseline.stored_aspects(tmp_path, "img", "aarch64") == []
    assert baseline.unused_baselines(tmp_path, ["img"]) == [tmp_path / "old"]
    assert baseline.unused_baselines(tmp_path / "none", ["img"]) == []


ABI = {"libx.so.1": {"arch": "x86_64", "needed": [], "paths": ["/usr/lib/libx.so.1"],
                     "versions": ["X_1"]},
       "libx.so.1:f@X_1": {"bind": "GLOBAL", "default": True, "type": "FUNC"},
       "libx.so.1:g@X_1": {"bind": "GLOBAL", "default": True, "type": "FUNC"}}


def _fresh() -> None:
    baseline._LOADED.clear()
    baseline._DIGESTS.clear()


def test_expected_records_are_taken_when_the_file_is_their_text(tmp_path: Path) -> None:
    baseline.write(tmp_path, "img", "x86_64", "abi", {"image_id": "sha256:old"}, ABI)
    expected = {k: dict(v) for k, v in ABI.items()}
    _fresh()
    header, records = baseline.load_expecting(tmp_path, "img", "x86_64", "abi", expected)
    assert records is expected  # not parsed: the candidate's own
    assert header == {"image_id": "sha256:old"}  # the file's, whatever the candidate's id
    _fresh()
    assert baseline.load(tmp_path, "img", "x86_64", "abi") == (header, ABI)
    # the load after is served the same records (one memo for both ways in)
    assert baseline.load_expecting(tmp_path, "img", "x86_64", "abi", {})[1] == ABI


@pytest.mark.parametrize("expected", [
    {**ABI, "libx.so.1:g@X_1": {"bind": "WEAK", "default": True, "type": "FUNC"}},
    {k: v for k, v in ABI.items() if k != "libx.so.1:g@X_1"},
    {**ABI, "libx.so.1:h@X_1": {"bind": "GLOBAL", "default": True, "type": "FUNC"}},
    {},
])
def test_other_records_are_read_from_the_file(tmp_path: Path, expected: dict) -> None:
    baseline.write(tmp_path, "img", "x86_64", "abi", {"image_id": "sha256:old"}, ABI)
    _fresh()
    header, records = baseline.load_expecting(tmp_path, "img", "x86_64", "abi", expected)
    assert records == ABI and records is not expected and header == {"image_id": "sha256:old"}


@pytest.mark.parametrize("damage, match", [
    (lambda text: text + "x", "not valid JSON"),  # bytes past the end
    (lambda text: text.replace('"schema": 1', '"schema": 7'), "schema 7"),
    (lambda text: text.replace('"aspect": "abi"', '"aspect": "files"'), "holds aspect 'files'"),
    (lambda text: text.replace('{"image_id": "sha256:old"}', '[1]'),
     "'image' must be a flat object"),
])
def test_a_damaged_file_is_refused_though_its_records_match(tmp_path: Path, damage: Any,
                                                            match: str) -> None:
    baseline.write(tmp_path, "img", "x86_64", "abi", {"image_id": "sha256:old"}, ABI)
    path = tmp_path / "img/x86_64/abi.json"
    path.write_text(damage(path.read_text()))
    _fresh()
    with pytest.raises(BaselineCorrupt, match=match) as info:
        baseline.load_expecting(tmp_path, "img", "x86_64", "abi", dict(ABI))
    assert str(path) in str(info.value)


def test_expected_records_of_a_missing_baseline(tmp_path: Path) -> None:
    with pytest.raises(BaselineMissing, match="no baseline"):
        baseline.load_expecting(tmp_path, "img", "x86_64", "abi", dict(ABI))


@pytest.mark.parametrize("hashed_before", [False, True])
def test_expected_records_keep_the_files_digest(tmp_path: Path, hashed_before: bool) -> None:
    """The text comparison keeps the file's sha256 with what it loaded (the next load checks
    it), whether it hashed the bytes itself or a verdict's key had hashed them already."""
    import hashlib

    baseline.write(tmp_path, "img", "x86_64", "abi", {"image_id": "sha256:old"}, ABI)
    path = tmp_path / "img/x86_64/abi.json"
    _fresh()
    if hashed_before:
        baseline.file_digest(path)
    baseline.load_expecting(tmp_path, "img", "x86_64", "abi", dict(ABI))
    loaded = baseline._LOADED.get(path)
    assert loaded is not None and loaded[0] == hashlib.sha256(path.read_bytes()).digest()
