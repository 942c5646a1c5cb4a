"""pytest plugin: options, hooks and fixtures only; the work lives in `harness.gate`.

    pytest --image NAME[=REF] [--baselines DIR] [--update-baselines] [--compat-report PATH]
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.config import HarnessConfig, ImageSpec, load_config, parse_image_option
from harness.errors import ConfigError
from harness.gate import ACCEPTED, AspectResult, SnapshotStore, check_aspect
from harness.report import build_reports, summary_lines, write_report
from harness.review import failure_message

RESULT_PROPERTY = "harness_result"
REPORT_SUFFIXES = (".json", ".md", ".html", ".htm")


@dataclass
class HarnessState:
    """Everything the run knows, kept in `config.stash` (never in module globals: xdist)."""

    config: HarnessConfig
    images: list[ImageSpec]
    baselines: Path
    update: bool
    reports: list[Path]
    run_id: str
    cache_dir: Path
    results: list[AspectResult] = field(default_factory=list)


STATE = pytest.StashKey[HarnessState]()


def _report_path(value: str) -> str:
    if not value.endswith(REPORT_SUFFIXES):
        raise pytest.UsageError(f"--compat-report {value}: the extension picks the format; "
                                f"use one of {', '.join(REPORT_SUFFIXES)}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "compatibility gate for container images")
    group.addoption("--image", action="append", dest="harness_images", default=[],
                    metavar="NAME[=REF]",
                    help="image to gate (repeatable); REF defaults to the alias in "
                         "[tool.harness.images], else NAME")
    group.addoption("--baselines", dest="harness_baselines", default=None, metavar="DIR",
                    help="baseline folder (default: baselines/ at the rootdir)")
    group.addoption("--update-baselines", dest="harness_update", action="store_true",
                    help="accept the images as the new baselines (writes DIR/NAME/ARCH/*.json)")
    group.addoption("--compat-report", dest="harness_reports", action="append", default=[],
                    type=_report_path, metavar="PATH",
                    help="write a report; .json (the contract), .md or .html (repeatable)")
    group.addoption("--compat-cache", dest="harness_cache", default=None, metavar="DIR",
                    help="snapshot cache folder (default: in pytest's cache dir)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compat: a compatibility check of an image aspect")
    rootpath = Path(config.rootpath)
    try:
        harness_config = load_config(rootpath / "pyproject.toml")
        images = [parse_image_option(v, harness_config) for v in config.option.harness_images]
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    names = [i.name for i in images]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise pytest.UsageError(f"--image names must be unique; repeated: {', '.join(dupes)}")
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    run_id = (workerinput or {}).get("testrunuid") or uuid.uuid4().hex
    if config.option.harness_cache:
        cache_dir = Path(config.option.harness_cache).resolve()
    elif getattr(config, "cache", None) is not None:
        cache_dir = config.cache.mkdir("harness-snapshots")
    else:
        cache_dir = rootpath / ".harness-cache"
    baselines = Path(config.option.harness_baselines or rootpath / "baselines").resolve()
    config.stash[STATE] = HarnessState(
        config=harness_config, images=images, baselines=baselines,
        update=config.option.harness_update,
        reports=[Path(p).resolve() for p in config.option.harness_reports],
        run_id=run_id, cache_dir=cache_dir)
    collector = ResultCollector(config.stash[STATE], controller=workerinput is None)
    config.pluginmanager.register(collector, "harness-results")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "_harness_image" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[STATE]
    if not state.images:
        skip = pytest.mark.skip(reason="no image to gate: run `pytest --image NAME[=REF]`")
        metafunc.parametrize("_harness_image", [pytest.param(None, marks=skip, id="no-image")],
                             indirect=True)
        return
    metafunc.parametrize("_harness_image", state.images, indirect=True,
                         ids=[i.name for i in state.images])


@pytest.fixture(scope="session")
def compat_store(request: pytest.FixtureRequest) -> Iterator[SnapshotStore]:
    """Session-wide snapshot store: each image is snapshotted once (also under xdist), and
    every container the run created is removed at the end, whatever happened."""
    state = request.config.stash[STATE]
    store = SnapshotStore(state.cache_dir, state.run_id)
    try:
        yield store
    finally:
        store.cleanup()


@pytest.fixture
def _harness_image(request: pytest.FixtureRequest) -> ImageSpec:
    """The image under test (parametrized from --image; the test id is its name)."""
    spec: ImageSpec = request.param
    return spec


@pytest.fixture
def compat_check(request: pytest.FixtureRequest, compat_store: SnapshotStore,
                 _harness_image: ImageSpec) -> Callable[[str], AspectResult]:
    """Judge one aspect of the image under test against its baseline; fail on a break.

    The result travels to the controller as a user property, so reports see every worker.
    """
    state = request.config.stash[STATE]

    def check(aspect: str) -> AspectResult:
        __tracebackhide__ = True
        result = check_aspect(_harness_image, aspect, compat_store, state.baselines,
                              state.config, update=state.update)
        request.node.user_properties.append((RESULT_PROPERTY, json.dumps(result.to_dict())))
        counts: dict[str, int] = {}
        for c in result.changes:
            key = "waived" if c.waived else c.verdict
            counts[key] = counts.get(key, 0) + 1
        for key, n in sorted(counts.items()):
            request.node.user_properties.append((f"harness_{key}", n))
        if result.verdict != "pass":
            pytest.fail(failure_message(result, state.baselines), pytrace=False)
        return result

    return check


class ResultCollector:
    """Gathers aspect results from every test report (those of xdist workers included, as
    they reach the controller) and writes the reports and the summary at the end."""

    def __init__(self, state: HarnessState, controller: bool) -> None:
        self.state = state
        self.controller = controller

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY:
                self.state.results.append(AspectResult.from_dict(json.loads(str(value))))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.controller or not self.state.results:
            return
        reports = build_reports(self.state.results)
        for path in self.state.reports:
            write_report(path, reports)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int,
                                config: pytest.Config) -> None:
        state = self.state
        if not self.controller or not state.results:
            return
        terminalreporter.write_sep("=", "compatibility gate")
        for line in summary_lines(build_reports(state.results)):
            terminalreporter.write_line(line)
        if state.update:
            updated = sorted({r.baseline_path for r in state.results
                              if r.updated and r.baseline_path})
            accepted = sum(1 for r in state.results for c in r.changes if c.reason == ACCEPTED)
            terminalreporter.write_line(f"baselines updated: {len(updated)} file(s) written, "
                                        f"{accepted} change(s) accepted")
            for path in updated:
                terminalreporter.write_line(f"  wrote {os.path.relpath(path)}")
        for path in state.reports:
            terminalreporter.write_sep("-", f"compat report written to {path}")
