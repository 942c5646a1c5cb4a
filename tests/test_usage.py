"""How the gate is called from CI: option spellings pytest would misread, and a daemonless
source with no engine reachable (static aspects judged, runtime tests skipped by name,
errors as one line each)."""

from __future__ import annotations

from pathlib import Path


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
