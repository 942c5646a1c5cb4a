"""`python -m harness` shares the gate's code paths: same kinds as the pytest suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_snapshot_diff_report(tiny_images, tmp_path: Path) -> None:
    for name in ("tiny-base", "tiny-setuid"):
        done = _cli("snapshot", tiny_images[name], "-o", str(tmp_path / f"{name}.json"), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    diff = _cli("diff", str(tmp_path / "tiny-base.json"), str(tmp_path / "tiny-setuid.json"),
                "--name", "t", "--report", str(tmp_path / "r.json"), cwd=tmp_path)
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert "BREAK setuid-added /usr/bin/hello-demo" in diff.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["images"][0]["verdict"] == "fail"
    md = _cli("report", str(tmp_path / "r.json"), "-o", str(tmp_path / "r.md"), cwd=tmp_path)
    assert md.returncode == 0 and "setuid-added" in (tmp_path / "r.md").read_text()


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "junk.json").write_text("{}")
    done = _cli("diff", str(tmp_path / "junk.json"), str(tmp_path / "junk.json"), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
