"""An aspect that cannot be judged is `error` in every report and in the exit code, whatever
stopped it: a baseline record of the wrong type, nesting deeper than Python's recursion
limit, a MemoryError, a test that crashes; and the reports are replaced even when the run
dies, so an older `pass` never stays in place."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import pytest

from harness.baseline import load
from harness.errors import BaselineCorrupt


def _reports(pytester: pytest.Pytester) -> list[str]:
    return [f"--compat-report={pytester.path / name}" for name in ("r.md", "r.html")]


def _assert_error_everywhere(gate, pytester: pytest.Pytester, name: str, aspect: str,
                             needle: str) -> None:
    assert gate.result.ret == 1, gate.result.stdout.str()
    entry = gate.image(name)
    assert entry["verdict"] == "error", entry
    assert any(e.startswith(f"{aspect}: ") and needle in e for e in entry["errors"]), entry["errors"]
    md = (pytester.path / "r.md").read_text()
    assert f"**error**" in md and needle in md
    html = (pytester.path / "r.html").read_text()
    assert escape(needle) in html
    gate.result.stdout.fnmatch_lines([f"*{name} * ERROR*", f"*error: {aspect}: *{needle}*"])


def _baseline(run_gate, image: str, tmp_path: Path) -> Path:
    baselines = tmp_path / "b"
    first = run_gate({"x": image}, "--update-baselines", baselines=baselines)
    assert first.result.ret == 0, first.result.stdout.str()
    return baselines / "x" / "x86_64"


def _replace_record(path: Path, key: str, raw: str) -> None:
    lines = path.read_text().splitlines()
    hits = [i for i, line in enumerate(lines) if line.startswith(json.dumps(key) + ":")]
    assert hits, f"{key} not in {path}"
    i = hits[0]
    lines[i] = f"{json.dumps(key)}: {raw}" + ("," if lines[i].endswith(",") else "")
    path.write_text("\n".join(lines) + "\n")


def test_record_of_the_wrong_type_is_an_error_naming_file_and_field(
        run_gate, tiny_images, pytester: pytest.Pytester, tmp_path: Path) -> None:
    folder = _baseline(run_gate, tiny_images["tiny-base"], tmp_path)
    files = folder / "files.json"
    _replace_record(files, "/bin", '{"type": "dir", "mode": 493, "uid": 0, "gid": 0}')
    with pytest.raises(BaselineCorrupt, match=r"record '/bin': field 'mode' must be an octal string"):
        load(folder.parent.parent, "x", "x86_64", "files")
    gate = run_gate({"x": tiny_images["tiny-base"]}, *_reports(pytester), baselines=folder.parent.parent)
    _assert_error_everywhere(gate, pytester, "x", "files", f"{files}: record '/bin': field 'mode'")
    assert "Traceback" not in gate.result.stdout.str()


def test_a_string_record_is_an_error_not_a_crash(run_gate, tiny_images, pytester: pytest.Pytester,
                                                 tmp_path: Path) -> None:
    folder = _baseline(run_gate, tiny_images["tiny-base"], tmp_path)
    _replace_record(folder / "packages.json", next(iter(load(
        folder.parent.parent, "x", "x86_64", "packages")[1])), '"not a record"')
    gate = run_gate({"x": tiny_images["tiny-base"]}, *_reports(pytester), baselines=folder.parent.parent)
    _assert_error_everywhere(gate, pytester, "x", "packages", "must be an object, not str")


def test_deep_nesting_is_an_error_not_a_recursion_crash(run_gate, tiny_images,
                                                        pytester: pytest.Pytester, tmp_path: Path) -> None:
    folder = _baseline(run_gate, tiny_images["tiny-base"], tmp_path)
    depth = 200_000
    _replace_record(folder / "metadata.json", "User", "[" * depth + "]" * depth)
    gate = run_gate({"x": tiny_images["tiny-base"]}, *_reports(pytester), baselines=folder.parent.parent)
    _assert_error_everywhere(gate, pytester, "x", "metadata", "is not valid JSON")
    # the security aspect reads the files baseline, untouched: it is still judged
    assert not any(e.startswith("security:") for e in gate.image("x")["errors"])


CRASHING_CONFTEST = """
import harness.diff.files

def _exhausted(*args, **kwargs):
    raise MemoryError()

harness.diff.files.diff_files = _exhausted
import harness.aspects.files
harness.aspects.files.diff_files = _exhausted
"""


def test_memory_error_while_judging_is_an_error(run_gate, tiny_images, pytester: pytest.Pytester,
                                                tmp_path: Path) -> None:
    folder = _baseline(run_gate, tiny_images["tiny-base"], tmp_path)
    pytester.makeconftest(CRASHING_CONFTEST)
    gate = run_gate({"x": tiny_images["tiny-base"]}, *_reports(pytester), baselines=folder.parent.parent)
    _assert_error_everywhere(gate, pytester, "x", "files", "could not be judged: MemoryError")


def test_a_crashing_test_is_its_aspects_error(run_gate, tiny_images, pytester: pytest.Pytester,
                                              tmp_path: Path) -> None:
    """A test of an image that fails without recording a result (here its fixture raises
    before any judgement) is an error of that image, not an aspect left out."""
    folder = _baseline(run_gate, tiny_images["tiny-base"], tmp_path)
    pytester.makepyfile(test_extra="""
        import pytest

        @pytest.fixture
        def broken(compat_check):
            raise RecursionError("maximum recursion depth exceeded")

        def test_broken(broken):
            pass
        """)
    gate = run_gate({"x": tiny_images["tiny-base"]}, *_reports(pytester), baselines=folder.parent.parent)
    _assert_error_everywhere(gate, pytester, "x", "test_broken", "RecursionError")


KILLING_CONFTEST = """
import os, signal
import pytest

@pytest.fixture(autouse=True)
def _die(request):
    if request.node.name.startswith("test_packages"):
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_run_killed_midway_leaves_no_older_pass(run_gate, tiny_images, pytester: pytest.Pytester,
                                                  tmp_path: Path) -> None:
    folder = _baseline(run_gate, tiny_images["tiny-base"], tmp_path)
    ok = run_gate({"x": tiny_images["tiny-base"]}, *_reports(pytester), baselines=folder.parent.parent)
    assert ok.image("x")["verdict"] == "pass"
    pytester.makeconftest(KILLING_CONFTEST)
    out = pytester.path / "report.json"
    killed = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--baselines={folder.parent.parent}", f"--compat-report={out}",
        *_reports(pytester), "--image", f"x={tiny_images['tiny-base']}", timeout=600)
    assert killed.ret not in (0, 1)
    entry = json.loads(out.read_text())["images"][0]
    assert entry["verdict"] == "error" and "did not finish" in entry["errors"][0]
    assert "**error**" in (pytester.path / "r.md").read_text()
