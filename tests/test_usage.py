"""How the gate is called from CI: option spellings pytest would misread, and a daemonless
source with no engine reachable (static aspects judged, runtime tests skipped by name,
errors as one line each)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _without_engine(pytester, tmp_path: Path) -> None:
    """The runtime suites in `pytester`'s folder, DOCKER_HOST at a socket no engine answers
    (the shared engine stays up)."""
    (pytester.path / "runtime").mkdir()
    for path in (REPO / "suites" / "runtime").glob("*.py"):
        (pytester.path / "runtime" / path.name).write_text(path.read_text())
    pytester.makefile(".toml", pyproject='[tool.pytest.ini_options]\nminversion = "8.0"\n')
    dead = tmp_path / "dead.sock"
    dead.touch()
    pytester._monkeypatch.setenv("DOCKER_HOST", f"unix://{dead}")


def test_a_spaced_path_option_outside_the_project_is_a_usage_error(run_gate, tiny_images,
                                                                   tmp_path_factory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    gate = run_gate({"x": tiny_images["tiny-base"]}, "--baselines", str(elsewhere), report=False)
    assert gate.result.ret == 4  # pytest's usage error: nothing was collected or judged
    err = gate.result.stderr.str()
    assert f"write --baselines={elsewhere} (with `=`)" in err, err
    assert "collected" not in gate.result.stdout.str()
    ok = run_gate({"x": tiny_images["tiny-base"]}, f"--baselines={elsewhere}", "--update-baselines",
                  report=False)
    assert ok.result.ret == 0, ok.result.stdout.str()
    assert (Path(elsewhere) / "x" / "x86_64" / "files.json").is_file()


def test_daemonless_gate_without_an_engine(pytester, tiny_images, tmp_path: Path) -> None:
    """A docker-archive image and DOCKER_HOST at a dead socket (the shared engine stays up):
    the static aspects are judged and pass, each runtime test is skipped with one line naming
    the image and why, and the run exits 0. A corrupt baseline is then one line, no traceback."""
    from testimages import layered

    archive = layered.save(tiny_images["tiny-base"], tmp_path / "tiny.tar")
    ref = f"docker-archive:{archive}"
    (pytester.path / "compat").mkdir()
    (pytester.path / "compat" / "test_compat.py").write_text(
        (REPO / "suites" / "compat" / "test_compat.py").read_text())
    _without_engine(pytester, tmp_path)
    base = tmp_path / "baselines"
    args = ["-p", "no:cacheprovider", f"--compat-cache={tmp_path / 'cache'}", "--image",
            f"t={ref}", f"--baselines={base}", "-rs"]
    made = pytester.runpytest_subprocess(*args, "compat", "--update-baselines", timeout=300)
    assert made.ret == 0, made.stdout.str()
    run = pytester.runpytest_subprocess(*args, timeout=300)
    out = run.stdout.str()
    assert run.ret == 0, out
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    outcomes = run.parseoutcomes()
    assert outcomes["passed"] == 5 and outcomes["skipped"] == len(skips) >= 10, outcomes
    for line in skips:
        assert (f"t: runtime tests skipped: no Docker engine answers to run it (its files were "
                f"read from {ref} without one; start dockerd or set DOCKER_HOST)") in line, line
    assert "t [x86_64] PASS" in out and "Traceback" not in out and "During handling" not in out

    (base / "t" / "x86_64" / "files.json").write_text("{broken")
    broken = pytester.runpytest_subprocess(*args, "compat", timeout=300)
    text = broken.stdout.str()
    assert broken.ret == 1
    failures = [line for line in text.splitlines() if "cannot be judged" in line and "files" in line]
    assert failures and str(base / "t" / "x86_64" / "files.json") in failures[0], text
    assert "Traceback" not in text and "During handling" not in text


def test_no_engine_for_an_engine_image_is_one_line_per_test(pytester, tmp_path: Path) -> None:
    """An engine image with no engine: every test fails with one line naming the image and
    the engine; the chained traceback of the engine client shows only with --tb=long."""
    _without_engine(pytester, tmp_path)
    args = ["-p", "no:cacheprovider", f"--compat-cache={tmp_path / 'cache'}", "--image",
            "t=harness-test/never-built:1", f"--baselines={tmp_path / 'b'}", "runtime"]
    run = pytester.runpytest_subprocess(*args, timeout=300)
    out = run.stdout.str()
    assert run.ret == 1
    assert "t: cannot be judged: no Docker Engine answers" in out
    assert "Traceback" not in out and "During handling" not in out and "direct cause" not in out
    long = pytester.runpytest_subprocess(*args, "--tb=long", timeout=300)
    assert long.ret == 1 and "direct cause" in long.stdout.str()
