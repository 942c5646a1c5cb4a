"""Runtime suites of every family on local stand-ins built from Debian bookworm: a baseline,
an untouched rebuild that passes, and a candidate with one planted runtime break that fails
naming the removed item; all stand-ins in one inner run, under -n 2. Families that cannot be
built here (.NET and microdnf are not packaged in Debian) are checked for a clear skip."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import testimages
from harness.source.engine import RUN_LABEL
from testimages import runtimes

from conftest import REPO

SUITES = REPO / "suites" / "runtime"
FAMILIES = runtimes.FAMILIES
#: families whose runtime suite records probes (rt-static has no shell: its entrypoint runs)
PROBED = [f for f in FAMILIES if f.aspect]
#: systemd as PID 1 exits at once without CAP_SYS_ADMIN ("Failed to mount API filesystems"),
#: which the hardened start drops: the generic default-command check cannot pass for an init
#: image (test_init checks the init entrypoint instead)


def _build_family(fam: runtimes.Family) -> dict[str, str]:
    tags = {}
    for role, recipe in (("base", fam.base), ("rebuild", fam.rebuild), ("broken", fam.broken)):
        started = time.monotonic()
        tags[role] = testimages.build(recipe)
        print(f"{tags[role]}: {time.monotonic() - started:.1f}s, "
              f"{runtimes.image_size(tags[role]) / 1e6:.1f} MB")
    return tags


@pytest.fixture(scope="module")
def family_images(docker_engine: Any) -> dict[str, dict[str, str]]:
    """family -> {"base", "rebuild", "broken"} image tags, built once and reused by recipe hash
    (build time and size of each printed; see them with -s). Two families build at a time:
    mmdebstrap waits on the mirror and on dpkg as much as on the CPU."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        built = dict(zip([f.family for f in FAMILIES], pool.map(_build_family, FAMILIES)))
    return built


class RuntimeRun:
    """One inner pytest run (a subprocess, as users run it) of the runtime suites."""

    def __init__(self, result: pytest.RunResult, report: dict[str, Any] | None) -> None:
        self.result = result
        self.report = report

    def changes(self, name: str) -> list[dict[str, Any]]:
        """Changes of one image in the JSON report."""
        assert self.report is not None, "no JSON report was written"
        for entry in self.report["images"]:
            if entry["name"] == name:
                return list(entry["changes"])
        raise AssertionError(f"{name} not in the report: {[i['name'] for i in self.report['images']]}")

    def outcome_lines(self, word: str) -> list[str]:
        """Short-summary lines (`-rA`) of one outcome, e.g. PASSED or SKIPPED."""
        return [line for line in self.result.outlines if line.startswith(word + " ")]


@pytest.fixture
def runtime_run(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory,
                monkeypatch: pytest.MonkeyPatch) -> Callable[..., RuntimeRun]:
    """Run suites/runtime in a fresh project: images NAME -> REF (or NAME -> None for an
    image of `[tool.harness.images]` in `pyproject`)."""
    for path in SUITES.glob("*.py"):
        (pytester.path / path.name).write_text(path.read_text())
    cache = tmp_path_factory.mktemp("rt-families-cache")
    monkeypatch.setenv("HARNESS_RUN_ID", f"rt-families-{cache.name}-{os.getpid()}")

    def run(images: dict[str, str | None], baselines: Path, *args: str,
            pyproject: str = "") -> RuntimeRun:
        pytester.makefile(".toml", pyproject='[tool.pytest.ini_options]\nminversion = "8.0"\n'
                          + pyproject)
        report = pytester.path / "report.json"
        report.unlink(missing_ok=True)
        cmd = ["-p", "no:cacheprovider", f"--compat-cache={cache}", "-rA",
               f"--baselines={baselines}", f"--compat-report={report}"]
        for name, ref in images.items():
            cmd.append(f"--image={name}" if ref is None else f"--image={name}={ref}")
        result = pytester.runpytest_subprocess(*cmd, *args, timeout=900)
        return RuntimeRun(result, json.loads(report.read_text()) if report.exists() else None)

    return run


def _no_container_left(docker_engine: Any) -> None:
    run_id = os.environ["HARNESS_RUN_ID"]
    left = docker_engine.client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    assert left == [], "every container of a run is removed at its end"


def test_every_family_baseline_rebuild_and_planted_break(runtime_run, family_images, docker_engine,
                                                         tmp_path: Path) -> None:
    baselines = tmp_path / "baselines"

    # 1. baseline of every stand-in in one run (no xdist): every suite passes or skips with why
    record = runtime_run({f.family: family_images[f.family]["base"] for f in FAMILIES}, baselines,
                         "--update-baselines", "-p", "no:xdist")
    assert record.result.ret == 0, record.result.stdout.str()
    for fam in PROBED:
        assert (baselines / fam.family / "x86_64" / f"{fam.aspect}.json").exists(), fam.family
        probes = json.loads((baselines / fam.family / "x86_64" / f"{fam.aspect}.json").read_text())
        assert f"{fam.subject}" in json.dumps(probes), f"{fam.family}: {fam.subject} not probed"
    record.result.stdout.fnmatch_lines(["SKIPPED * rt-static has no shell: runtime probes cannot "
                                        "run in it*entrypoint/cmd ?'/hello'? ran (exit 0)*"])

    # 2. an untouched rebuild of each passes (under -n 2)
    again = runtime_run({f.family: family_images[f.family]["rebuild"] for f in FAMILIES}, baselines,
                        "-n", "2")
    assert again.result.ret == 0, again.result.stdout.str()
    assert again.outcome_lines("PASSED") and not again.outcome_lines("FAILED")

    # 3. each planted break fails its family's suite, naming the removed item (under -n 2)
    broken = runtime_run({f.family: family_images[f.family]["broken"] for f in FAMILIES}, baselines,
                         "-n", "2")
    failed = broken.outcome_lines("FAILED")
    assert len(failed) == len(FAMILIES), "\n".join(failed) or broken.result.stdout.str()
    for fam in PROBED:
        found = {(c["aspect"], c["kind"], c["subject"]) for c in broken.changes(fam.family)
                 if c["verdict"] == "break"}
        assert ("probes", fam.kind, fam.subject) in found, (fam.family, sorted(found))
        broken.result.stdout.fnmatch_lines([f"*{fam.aspect}: * unwaived break*",
                                            f"*{fam.kind}*{fam.subject}*"], consecutive=False)
    assert any("test_static_image[rt-static]" in line for line in failed), failed
    broken.result.stdout.fnmatch_lines(["rt-static: the entrypoint/cmd ?'/hello'? does not run*",
                                        "*no such file or directory*"])
    _no_container_left(docker_engine)


# --- families that cannot be built here ----------------------------------------------------

NOT_BUILDABLE = {
    # family: (why no stand-in, the stand-in the family is forced on, the suite's test)
    "rt-dotnet7.0": (".NET is not packaged in Debian", "rt-python3.11", "test_dotnet_runtimes"),
    "microdnf": ("microdnf is not packaged in Debian", "minimal", "test_microdnf_help"),
}


@pytest.mark.parametrize("family", sorted(NOT_BUILDABLE))
def test_family_without_stand_in_skips_with_reason(family: str, runtime_run, family_images,
                                                   docker_engine, tmp_path: Path) -> None:
    why, stand_in, test = NOT_BUILDABLE[family]
    tool = "dotnet" if family == "rt-dotnet7.0" else "microdnf"
    pyproject = (f'[tool.harness.images.forced]\nref = "{family_images[stand_in]["base"]}"\n'
                 f'families = ["{family}"]\n')
    run = runtime_run({"forced": None}, tmp_path / "baselines", pyproject=pyproject)
    run.result.stdout.fnmatch_lines([f"SKIPPED * {tool} not found in forced (not on PATH)*"])
    assert not [line for line in run.outcome_lines("PASSED") if test in line], \
        f"{test} must skip, never pass, on an image without {tool}"
    assert not run.outcome_lines("FAILED") and not run.outcome_lines("ERROR"), run.result.stdout.str()
    _no_container_left(docker_engine)
    pytest.skip(f"{why}: no {family} stand-in can be built here; its suite (written against the "
                f"documented output) skips on an image without {tool}, as checked")


def _suite(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"suite_{name}", SUITES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dotnet_suite_reads_the_documented_output() -> None:
    listed = ("Microsoft.AspNetCore.App 7.0.9 [/usr/share/dotnet/shared/Microsoft.AspNetCore.App]\n"
              "Microsoft.AspNetCore.App 7.0.20 [/usr/share/dotnet/shared/Microsoft.AspNetCore.App]\n"
              "Microsoft.NETCore.App 7.0.20 [/usr/share/dotnet/shared/Microsoft.NETCore.App]\n")
    assert _suite("test_dotnet").parse_runtimes(listed) == {
        "Microsoft.AspNetCore.App": "7.0.20", "Microsoft.NETCore.App": "7.0.20"}


def test_microdnf_suite_reads_the_documented_help() -> None:
    parse = _suite("test_microdnf").parse_commands
    # the layout of dnf-main.c: "\n  %-16s     %s" per command plugin, then GOption's groups
    text = ("Usage:\n  microdnf [OPTION…] COMMAND\n\nCommands:\n"
            "  clean                Remove cached data\n"
            "  install              Install packages\n"
            "  module enable        Enable modules\n"
            "  repolist             List repositories\n\n"
            "Help Options:\n  -h, --help                 Show help options\n\n"
            "Global Options:\n  --best                     Try the best available package\n")
    assert parse(text) == ["clean", "install", "module enable", "repolist"]
    older = "Usage:\n  microdnf [OPTION…] COMMAND\n\nCommands:\n  clean - Remove cached data\n"
    assert parse(older) == ["clean"]
