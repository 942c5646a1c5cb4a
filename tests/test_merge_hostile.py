"""A JSON report handed to `python -m harness report` is input: a broken or hostile one is a
clear error naming the file, never a traceback nor a change that silently reads as a pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.outcome.merge import read_report

REPO = Path(__file__).resolve().parent.parent
GOOD_CHANGE = {"aspect": "files", "kind": "added", "subject": "/x", "verdict": "break",
               "waived": False, "reason": None,
               "cause": {"aspect": "files", "kind": "added", "subject": "/x"}}


def _report(tmp_path: Path, image: Any) -> Path:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"schema": 1, "images": [image]}), encoding="utf-8")
    return path


def _image(**change: Any) -> dict[str, Any]:
    return {"name": "a", "arch": "x86_64", "changes": [{**GOOD_CHANGE, **change}]}


def test_a_well_formed_report_reads(tmp_path: Path) -> None:
    results = read_report(_report(tmp_path, _image()))
    assert [c.verdict for r in results for c in r.changes] == ["break"]


@pytest.mark.parametrize("image", [
    5,
    {"name": "a", "arch": ["x86_64"], "changes": []},
    {"name": 7, "changes": []},
    {"name": "a", "changes": {"aspect": "files"}},
    {"name": "a", "changes": [], "missing_baselines": [["files"]]},
    _image(verdict=5),
    _image(verdict="fine"),
    _image(aspect=["files"]),
    _image(kind=None),
    _image(waived="no"),
    _image(cause=["files"]),
    _image(cause={"aspect": ["files"], "kind": {}, "subject": "/x"}),
], ids=["int-image", "list-arch", "int-name", "dict-changes", "list-missing", "int-verdict",
        "unknown-verdict", "list-aspect", "null-kind", "string-waived", "list-cause",
        "cause-of-lists"])
def test_a_malformed_image_entry_is_an_error_naming_the_file(tmp_path: Path, image: Any) -> None:
    path = _report(tmp_path, image)
    with pytest.raises(HarnessError, match=r"r\.json: a malformed image entry"):
        read_report(path)


def test_a_report_nested_too_deep_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    with pytest.raises(HarnessError, match=r"deep\.json: not a readable JSON report"):
        read_report(path)


@pytest.mark.parametrize("out", ["review.md", "review.html"])
def test_the_cli_names_the_file_without_a_traceback(tmp_path: Path, out: str) -> None:
    path = _report(tmp_path, _image(cause={"aspect": ["l"], "kind": {}, "subject": "s"}))
    done = subprocess.run([sys.executable, "-m", "harness", "report", str(path), "-o",
                           str(tmp_path / out)], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "r.json: a malformed image entry" in done.stderr


def test_the_matrix_problems_are_terminal_safe(tmp_path: Path) -> None:
    """An image reported twice is named on stderr: its name and arch come from the reports."""
    image = {"name": "evil\x1b]0;owned\x07\u202e", "arch": "x86_64", "changes": []}
    paths = []
    for n in (1, 2):
        paths.append(tmp_path / f"r{n}.json")
        paths[-1].write_text(json.dumps({"schema": 1, "images": [image]}), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "harness", "report", *map(str, paths), "-o",
                           str(tmp_path / "review.md")], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 1
    assert "reported twice" in done.stderr
    assert "\x1b" not in done.stderr and "\u202e" not in done.stderr
    assert "evil\\x1b]0;owned\\x07\\u202e/x86_64" in done.stderr
