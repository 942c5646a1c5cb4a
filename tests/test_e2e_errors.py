"""Bad input never passes and never shows a traceback: engine down, unknown image, corrupt
baseline, no image at all."""

from __future__ import annotations

from pathlib import Path

from conftest import tree_bytes


def _no_traceback(output: str) -> None:
    assert "Traceback" not in output and "INTERNALERROR" not in output, output


def test_engine_down_is_one_line_and_fails(run_gate, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    gate = run_gate({"x": "anything:1"}, baselines=tmp_path / "b")
    assert gate.result.ret == 1
    out = gate.result.stdout.str()
    _no_traceback(out)
    gate.result.stdout.fnmatch_lines(["*x * metadata: cannot be judged: no Docker Engine answers*"])
    assert gate.image("x")["verdict"] == "error"


def test_unknown_image_is_an_error_not_a_pass(run_gate, docker_engine, tmp_path: Path) -> None:
    # a loopback registry nobody listens on: the pull fails at once, nothing leaves the machine
    gate = run_gate({"ghost": "127.0.0.1:9/harness/ghost:1"}, baselines=tmp_path / "b")
    assert gate.result.ret == 1
    _no_traceback(gate.result.stdout.str())
    gate.result.stdout.fnmatch_lines(["*ghost*cannot be judged: image '127.0.0.1:9/harness/ghost:1' "
                                      "is not local and pulling it failed*"])
    entry = gate.image("ghost")
    assert entry["verdict"] == "error" and entry["errors"]


def test_corrupt_baseline_names_its_path_and_survives(run_gate, tiny_images, tmp_path: Path) -> None:
    baselines = tmp_path / "b"
    run_gate({"x": tiny_images["tiny-base"]}, "--update-baselines", baselines=baselines)
    broken = baselines / "x" / "x86_64" / "files.json"
    broken.write_text('{"schema": 1, "aspect": "files", "records": {"/bin": ')
    before = tree_bytes(baselines)
    gate = run_gate({"x": tiny_images["tiny-base"]}, baselines=baselines)
    assert gate.result.ret == 1
    _no_traceback(gate.result.stdout.str())
    gate.result.stdout.fnmatch_lines([f"*x * files: cannot be judged: baseline {broken} is not valid JSON*"])
    assert gate.image("x")["verdict"] == "error"
    assert tree_bytes(baselines) == before


def test_no_image_skips_with_how_to(run_gate) -> None:
    gate = run_gate({}, "-rs", report=False)
    gate.result.assert_outcomes(skipped=5)
    gate.result.stdout.fnmatch_lines(["*no image to gate: run `pytest --image NAME*"])


def test_bad_image_option_is_a_usage_error(run_gate) -> None:
    gate = run_gate({"": "x"}, report=False)
    assert gate.result.ret == 4
    gate.result.stderr.fnmatch_lines(["*--image *=x*: expected NAME or NAME?REF*"])
