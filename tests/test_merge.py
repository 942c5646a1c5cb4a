"""`python -m harness report a.json b.json ... -o review.md|.html|.json`: the JSON reports of a
CI matrix (image x arch, one job each) merged into one review, from real gate runs of two
images on two architectures (amd64 through the engine, arm64 from docker-archive files)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testimages import layered

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def arm_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("arm")
    layer = layered.tar_root(layered.arm64_root())
    return {name: "docker-archive:" + str(layered.docker_archive(
        work / f"{name}.tar", [layer], f"harness-test/{name}-arm64:1", arch="arm64", variant="v8"))
        for name in ("tiny", "box")}


@pytest.fixture
def matrix(run_gate, tiny_images, arm_archives, tmp_path: Path) -> dict[str, Path]:
    """One gate run (job) per arch, each of the two images: amd64 `tiny` breaks (a setuid
    program added), everything else is unchanged."""
    out: dict[str, Path] = {}
    jobs = {"amd64": ({"tiny": tiny_images["tiny-base"], "box": tiny_images["tiny-base"]},
                      {"tiny": tiny_images["tiny-setuid"], "box": tiny_images["tiny-rebuild"]}),
            "arm64": (arm_archives, arm_archives)}
    for arch, (base, candidate) in jobs.items():
        root = tmp_path / f"baselines-{arch}"
        run_gate(base, "--update-baselines", baselines=root)
        gate = run_gate(candidate, baselines=root)
        assert gate.report is not None, gate.result.stdout.str()
        out[arch] = tmp_path / f"{arch}.json"
        out[arch].write_text(json.dumps(gate.report))
    return out



def _unescaped(text: str) -> str:
    """A report's text with Markdown's backslash escapes read as the characters they keep
    literal (the report escapes every image-controlled name: `tiny \\[aarch64\\]`)."""
    return re.sub(r"\\(.)", r"\1", text)

def test_two_images_on_two_arches_merge_into_one_review(matrix: dict[str, Path], tmp_path: Path) -> None:
    expect = [f"--expect={n}/{a}" for n in ("tiny", "box") for a in ("x86_64", "aarch64")]
    merged = tmp_path / "review.json"
    done = _cli("report", str(matrix["amd64"]), str(matrix["arm64"]), "-o", str(merged), *expect)
    assert done.returncode == 0, done.stderr
    assert "4 image(s) from 2 report(s), verdict fail" in done.stdout
    images = {(i["name"], i["arch"]): i for i in json.loads(merged.read_text())["images"]}
    assert set(images) == {("tiny [x86_64]", "x86_64"), ("tiny [aarch64]", "aarch64"),
                           ("box [x86_64]", "x86_64"), ("box [aarch64]", "aarch64")}
    assert images["tiny [x86_64]", "x86_64"]["verdict"] == "fail"
    assert [c["subject"] for c in images["tiny [x86_64]", "x86_64"]["changes"]
            if c["kind"] == "setuid-added"] == ["/usr/bin/hello-demo"]
    assert {i["verdict"] for k, i in images.items() if k[0] != "tiny [x86_64]"} == {"pass"}
    for suffix in ("md", "html"):
        out = tmp_path / f"review.{suffix}"
        assert _cli("report", str(merged), "-o", str(out)).returncode == 0
        text = _unescaped(out.read_text())
        assert text.count("tiny [aarch64]") >= 1 and "box [x86_64]" in text
    md = _unescaped((tmp_path / "review.md").read_text())
    assert "| tiny [x86_64] | x86_64 | **fail** |" in md and "| box [aarch64] | aarch64 | **pass** |" in md


def test_an_image_missing_from_the_matrix_is_an_error(matrix: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "review.md"
    done = _cli("report", str(matrix["amd64"]), "-o", str(out), "--expect", "tiny/x86_64",
                "--expect", "tiny/aarch64")
    assert done.returncode == 1
    assert done.stderr.strip() == "error: tiny/aarch64: expected in the matrix but no report has it"
    assert "| tiny [aarch64] | aarch64 | **error** |" in _unescaped(out.read_text())
    twice = _cli("report", str(matrix["amd64"]), str(matrix["amd64"]), "-o", str(out))
    assert twice.returncode == 1 and "reported twice" in twice.stderr
    bad = _cli("report", str(tmp_path / "none.json"), "-o", str(out))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "none.json" in bad.stderr
