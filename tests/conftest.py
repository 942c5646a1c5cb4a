"""Fixtures for the harness's own tests: real images built locally, and a pytester runner
of the user-facing compat suite."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "suites" / "compat" / "test_compat.py"


@pytest.fixture(scope="session")
def docker_engine() -> Any:
    """The real engine; the tests never run against a mock. No engine is a failure here
    (CI starts one), not a skip."""
    from harness.source.engine import Engine

    return Engine.connect()


@pytest.fixture(scope="session")
def tiny_images(docker_engine: Any) -> dict[str, str]:
    """Tags of the tiny base image and of each candidate with one planted change."""
    import testimages
    from testimages import tiny

    recipes = [tiny.BASE, tiny.REBUILD, tiny.ADDITIONS, *tiny.PLANTED]
    return {r.name: testimages.build(r) for r in recipes}


@dataclass
class GateRun:
    """One inner `pytest` run of the compat suite, and what it left behind."""

    result: pytest.RunResult
    report: dict[str, Any] | None

    def image(self, name: str) -> dict[str, Any]:
        """The JSON report's entry of one image."""
        assert self.report is not None, "no JSON report was written"
        for entry in self.report["images"]:
            if entry["name"] == name:
                return dict(entry)
        raise AssertionError(f"image {name} not in the report: {[i['name'] for i in self.report['images']]}")


@pytest.fixture
def run_gate(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., GateRun]:
    """Run the compat suite in a fresh pytest (in a subprocess, as users do) on images.

    `images` maps NAME -> REF; extra args are passed through (e.g. "-n", "2").
    """
    pytester.makepyfile(test_compat=SUITE.read_text())
    cache = tmp_path_factory.mktemp("snapshot-cache")

    def run(images: dict[str, str], *args: str, baselines: Path | None = None,
            pyproject: str = "", report: bool = True) -> GateRun:
        pytester.makefile(".toml", pyproject='[tool.pytest.ini_options]\nminversion = "8.0"\n' + pyproject)
        cmd = ["-p", "no:cacheprovider", f"--compat-cache={cache}", "-rf"]
        for name, ref in images.items():
            cmd += ["--image", f"{name}={ref}"]
        if baselines is not None:
            cmd += [f"--baselines={baselines}"]
        out = pytester.path / "report.json"
        if out.exists():
            out.unlink()
        if report:
            cmd += [f"--compat-report={out}"]
        result = pytester.runpytest_subprocess(*cmd, *args, timeout=600)
        data = json.loads(out.read_text()) if report and out.exists() else None
        return GateRun(result, data)

    return run


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root with its bytes, to prove a folder was left untouched."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_baselines(ref: str, root: Path, cache: Path, read: str,
                    may_fail: tuple[str, ...] = ()) -> dict[str, bytes]:
    """`--update-baselines` of every aspect of one image, read one way (`--compat-read`);
    the files' bytes. An aspect not in `may_fail` must be judged without error."""
    import os

    from harness.aspects import ASPECTS
    from harness.config import HarnessConfig, ImageSpec
    from harness.gate import SnapshotStore, check_aspect

    store = SnapshotStore(cache, f"baselines-test-{os.getpid()}", read=read)
    try:
        for aspect in ASPECTS:
            result = check_aspect(ImageSpec("img", ref), aspect, store, root, HarnessConfig(),
                                  update=True)
            assert result.error is None or aspect in may_fail, f"{ref} {aspect}: {result.error}"
    finally:
        store.cleanup()
    return tree_bytes(root)


@pytest.fixture
def runtime_suite(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> Callable[..., pytest.RunResult]:
    """Run the runtime suites (copied into a pytester folder) against one image, in a
    subprocess with its own run id and snapshot cache: run(image, baselines, *args)."""
    import os

    for path in (REPO / "suites" / "runtime").glob("*.py"):
        (pytester.path / path.name).write_text(path.read_text())
    pytester.makefile(".toml", pyproject='[tool.pytest.ini_options]\nminversion = "8.0"\n')
    cache = tmp_path_factory.mktemp("rt-cache")
    monkeypatch.setenv("HARNESS_RUN_ID", f"rt-{cache.name}-{os.getpid()}")

    def run(image: str, baselines: Path, *args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--compat-cache={cache}",
                                             "-rs", "--image", f"img={image}",
                                             f"--baselines={baselines}", *args, timeout=600)
    return run


class Heads:
    """A collector that records the head `wants` is shown of each file, and wants none."""

    def __init__(self) -> None:
        self.seen: dict[str, bytes] = {}

    def wants(self, path: str, head: bytes, size: int) -> bool:
        self.seen[path] = head
        return False

    def take(self, path: str, data: bytes) -> None:
        raise AssertionError(f"{path} was not wanted")
