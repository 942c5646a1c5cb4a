"""The flow's layers hold: import-linter checks pyproject.toml's contracts ([tool.importlinter]:
no module imports a layer above its own, no cycles between layers, nothing below the
orchestrator reaches the engine or pytest) on this checkout's `harness`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("lint-imports")
    if tool is None:
        pytest.fail("lint-imports is missing: install the dev extras (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([tool, "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def test_layer_contracts_are_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    """The check can fail: the outcome layer importing the gate is reported."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "harness", copy / "harness",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    model = copy / "harness" / "outcome" / "model.py"
    model.write_text(model.read_text() + "\nimport harness.gate  # noqa: E402,F401\n")
    result = _lint(copy)
    assert result.returncode != 0
    assert "harness.outcome is not allowed to import harness.gate" in result.stdout, result.stdout


def test_no_import_cycles_anywhere() -> None:
    """No module reaches itself through its imports, inside a layer either (grimp: the graph
    import-linter builds, lazy imports in functions included)."""
    import grimp

    graph = grimp.build_graph("harness", cache_dir=None)
    cycles = sorted((m, d) for m in graph.modules for d in graph.find_modules_directly_imported_by(m)
                    if graph.chain_exists(importer=d, imported=m))
    assert cycles == []
