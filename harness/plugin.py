"""pytest plugin: options, fixtures and hooks, and the run's reporting (results gathered from
xdist workers, the terminal summary, report files); the judging lives in `harness.gate`.

    pytest --image NAME[=REF] [--baselines DIR] [--update-baselines] [--compat-report PATH]
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from harness.config import HarnessConfig, ImageSpec, load_config, parse_image_option
from harness.errors import ConfigError
from harness import baseline, emulation, gate, gcpause, runtime
from harness.aspects import REGISTRY
from harness.diff.probes import probe_records
from harness.source.engine import Engine
from harness.errors import EngineUnavailable, HarnessError
from harness.source.sources import DAEMONLESS_PREFIXES
from harness.gate import ACCEPTED, SnapshotStore, check_aspect, check_probes, judgement_error
from harness.outcome.result import AspectResult
from harness.policy import WaiverUse
from harness.outcome.model import build_reports
from harness.outcome.report import summary_lines, write_report
from harness.outcome.messages import failure_message
from harness.safetext import terminal

RESULT_PROPERTY = "harness_result"
#: the aspect a test is judging: a test that fails without recording its result is that aspect's
#: `error` in the reports (a crash never drops an aspect, which would read as a pass)
PENDING_PROPERTY = "harness_pending"
WAIVER_PROPERTY = "harness_waivers"
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
    waiver_use: WaiverUse = field(default_factory=WaiverUse)
    #: a run under -k/-m or with deselected tests cannot call a waiver or a baseline unused
    partial: bool = False
    #: image name -> the aspects its collected compat tests judge, for each image a
    #: collected test is of (None before collection)
    asked: dict[str, list[str]] | None = None


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
    group.addoption("--sbom", dest="harness_sbom", default=None, metavar="DIR",
                    help="write a CycloneDX SBOM per image (DIR/NAME-ARCH.cdx.json)")
    group.addoption("--platform", dest="harness_platform", default=None, metavar="OS/ARCH",
                    help="platform to pull or to pick from a multi-arch archive (linux/arm64)")
    group.addoption("--compat-read", dest="harness_read", default="auto",
                    choices=("auto", "export", "layers"),
                    help="how an engine image's files are read: `export` streams a created "
                         "container (works with any engine); `layers` reads the engine's "
                         "overlay2 layer folders in place (a local engine, readable storage: "
                         "several times faster); `auto` (default) reads layers when it can")
    group.addoption("--compat-cache", dest="harness_cache", default=None, metavar="DIR",
                    help="snapshot cache folder (default: in pytest's cache dir)")


def project_root(config: pytest.Config) -> Path:
    """The folder whose pyproject.toml holds `[tool.harness]`: the rootdir, else the nearest
    such file above the invocation dir. (pytest decides the rootdir before plugin options are
    known, so `--baselines DIR` with a space can move it; `--baselines=DIR` never does.)"""
    rootpath = Path(config.rootpath)
    candidates = [rootpath, *[p for d in [Path(config.invocation_params.dir)] for p in (d, *d.parents)]]
    for folder in candidates:
        try:
            text = (folder / "pyproject.toml").read_text(encoding="utf-8")
        except OSError:
            continue
        if "[tool.harness" in text:
            return folder
    return rootpath


def fail_plainly(config: pytest.Config, message: str, exc: BaseException) -> NoReturn:
    """Fail the test with one line: the exceptions that led here are shown only with
    `--tb=long` or `-v` (a chained traceback of the engine client helps no CI reader)."""
    message = terminal(message)  # it quotes image-controlled text
    if config.option.tbstyle == "long" or config.option.verbose > 0:
        raise pytest.fail.Exception(message, pytrace=True) from exc
    raise pytest.fail.Exception(message, pytrace=False) from None


def is_daemonless(ref: str) -> bool:
    """Whether an image reference is read from files, with no engine (harness.source.sources)."""
    return ref.startswith(DAEMONLESS_PREFIXES)


#: options whose value is a path: written with a space, pytest reads the value as a path to
#: collect before this plugin is loaded, and decides the rootdir (and ini file) from it
PATH_OPTIONS = ("--baselines", "--compat-report", "--compat-cache", "--sbom")


def spaced_path_option(args: Sequence[str], invocation_dir: Path) -> str | None:
    """A usage error's text when a path option is written `--opt DIR` (a space) with DIR an
    existing path outside the invocation folder, which moves pytest's rootdir (pytest
    passes over paths that do not exist); else None."""
    for option, value in zip(args, args[1:]):
        if option in PATH_OPTIONS and not value.startswith("-"):
            path = (invocation_dir / value).resolve()
            if path.exists() and not path.is_relative_to(invocation_dir.resolve()):
                return (f"write {option}={value} (with `=`): with a space, pytest takes "
                        f"{value} for a path to collect and for where its rootdir is, before "
                        "the harness's options are known")
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compat: a compatibility check of an image aspect")
    config.addinivalue_line("markers", "family(name): a runtime test for images of one family")
    spaced = spaced_path_option(config.invocation_params.args, Path(config.invocation_params.dir))
    if spaced:
        raise pytest.UsageError(spaced)
    rootpath = project_root(config)
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
    # one id for the whole run, xdist workers included: it labels every container
    run_id = (os.environ.get("HARNESS_RUN_ID") or (workerinput or {}).get("testrunuid")
              or uuid.uuid4().hex)
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
    if images:
        _sweep_on_signals(run_id)
    if workerinput is None:
        collector.write_placeholders()


def _sweep_on_signals(run_id: str) -> None:
    """SIGTERM (a CI job's timeout) and SIGINT remove the run's containers at once, then
    interrupt the run as Ctrl-C does (its reports then say what was not judged)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def sweep(signum: int, frame: Any) -> None:
        signal.signal(signum, signal.SIG_DFL)  # a second signal ends the run outright
        with contextlib.suppress(Exception):
            Engine.connect(timeout=10).remove_labelled(run_id)
        raise KeyboardInterrupt(f"{signal.Signals(signum).name}: the run's containers were removed")

    for signum in (signal.SIGTERM, signal.SIGINT):
        _PREVIOUS_HANDLERS.setdefault(signum, signal.signal(signum, sweep))


#: the handlers `_sweep_on_signals` replaced, put back when the run ends (an in-process run)
_PREVIOUS_HANDLERS: dict[int, Any] = {}


def pytest_unconfigure(config: pytest.Config) -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for signum, handler in _PREVIOUS_HANDLERS.items():
            if handler is not None:
                signal.signal(signum, handler)
    _PREVIOUS_HANDLERS.clear()


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run an image's tests together, images in the order given (pytest would run each test
    function over every image first): the store and the judging memos then hold one image
    at a time (harness.memo), so a family judged in one run needs the memory of its
    largest member, not of all of them. Tests of no image keep their place, first."""
    state = config.stash[STATE]
    order = {id(spec): n for n, spec in enumerate(state.images)}

    def image_of(item: pytest.Item) -> int:
        callspec = getattr(item, "callspec", None)
        spec = callspec.params.get("_harness_image") if callspec is not None else None
        return order.get(id(spec), -1)

    items.sort(key=image_of)  # stable: each image's tests keep their order


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash[STATE]
    state.asked = _asked_aspects(session.items, state.images)  # after -k and -m


def _asked_aspects(items: list[pytest.Item], images: list[ImageSpec]) -> dict[str, list[str]]:
    """Image name -> the aspects the collected compat tests judge of it (`test_ASPECT`
    with `compat_check`), for the images any collected test is of: what a child taking an
    image ahead judges (harness.gate `plan_run`; a hint, never the judgement itself)."""
    known = {aspect.name for aspect in REGISTRY}
    asked: dict[str, list[str]] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        spec = callspec.params.get("_harness_image") if callspec is not None else None
        if not isinstance(spec, ImageSpec):
            continue
        aspects = asked.setdefault(spec.name, [])
        name = getattr(item, "originalname", "").removeprefix("test_")
        if ("compat_check" in getattr(item, "fixturenames", ()) and name in known
                and name not in aspects):
            aspects.append(name)
    return {spec.name: asked[spec.name] for spec in images if spec.name in asked}


@pytest.fixture(scope="session")
def compat_store(request: pytest.FixtureRequest) -> Iterator[SnapshotStore]:
    """Session-wide snapshot store: each image is snapshotted once (also under xdist), and
    every container the run created is removed at the end, whatever happened."""
    state = request.config.stash[STATE]
    store = SnapshotStore(state.cache_dir, state.run_id, request.config.option.harness_platform,
                          read=request.config.option.harness_read, limits=state.config.limits)
    if not hasattr(request.config, "workerinput"):  # xdist's workers keep the cores busy
        asked = state.asked  # None: nothing collected
        planned = [spec for spec in state.images if asked is None or spec.name in asked]
        gate.plan_run(store, planned, state.baselines, state.config, state.update, asked)
    try:
        with baseline.parsed_in(store.baselines_folder()):
            yield store
    finally:
        # an xdist worker removes only what it made (exports and its runtime pool do); the
        # run-wide sweep would also take containers other workers still use, so the
        # controller does it once every worker is done
        if not hasattr(request.config, "workerinput"):
            store.cleanup()


@pytest.fixture
def _harness_image(request: pytest.FixtureRequest) -> ImageSpec:
    """The image under test (parametrized from --image; the test id is its name)."""
    spec: ImageSpec = request.param
    return spec


def _record(request: pytest.FixtureRequest, result: AspectResult, use: WaiverUse) -> None:
    """Attach a result to the test report: it reaches the controller also from xdist workers,
    and JUnit XML carries the change counts as properties."""
    props = request.node.user_properties
    props.append((RESULT_PROPERTY, json.dumps(result.to_dict())))
    props.append((WAIVER_PROPERTY, json.dumps({"matched": use.matched,
                                               "expired": sorted(use.expired)})))
    counts: dict[str, int] = {}
    for c in result.changes:
        key = "waived" if c.waived else c.verdict
        counts[key] = counts.get(key, 0) + 1
    for key, n in sorted(counts.items()):
        props.append((f"harness_{key}", n))


@pytest.fixture
def compat_check(request: pytest.FixtureRequest, compat_store: SnapshotStore,
                 _harness_image: ImageSpec) -> Callable[[str], AspectResult]:
    """Judge one aspect of the image under test against its baseline; fail on a break.

    The result travels to the controller as a user property, so reports see every worker.
    """
    state = request.config.stash[STATE]

    def check(aspect: str) -> AspectResult:
        __tracebackhide__ = True
        use = WaiverUse()
        request.node.user_properties.append((PENDING_PROPERTY, aspect))
        result = check_aspect(_harness_image, aspect, compat_store, state.baselines,
                              state.config, update=state.update, waiver_use=use)
        sbom_dir = request.config.option.harness_sbom
        if sbom_dir and aspect == "packages" and result.image_id and not result.error:
            try:
                gate.write_sbom(_harness_image, compat_store, Path(sbom_dir))
            except Exception as exc:  # noqa: BLE001 - the aspect's outcome says it
                result.error = f"SBOM not written: {judgement_error(exc)}"
        _record(request, result, use)
        if result.verdict != "pass":
            pytest.fail(failure_message(result, state.baselines), pytrace=False)
        return result

    return check


@pytest.fixture
def image_families(request: pytest.FixtureRequest, compat_store: SnapshotStore,
                   _harness_image: ImageSpec) -> tuple[str, ...]:
    """Families of the image under test: `[tool.harness.images.NAME] families`, else detected
    from its snapshot (os files, labels, contents)."""
    try:
        found = gate.image_families(_harness_image, compat_store,
                                    request.config.stash[STATE].baselines)
    except HarnessError as exc:
        fail_plainly(request.config, f"{_harness_image.name}: cannot be judged: {exc}", exc)
    _require_family(request, found, _harness_image.name)  # skips outside the test's family
    return found


def _require_family(request: pytest.FixtureRequest, found: tuple[str, ...], name: str) -> str | None:
    marker = request.node.get_closest_marker("family")
    if marker is None:
        return None
    family = str(marker.args[0])
    if family not in found:
        pytest.skip(f"{name} is not a {family} image (families: {', '.join(found) or 'none'})")
    return family


@pytest.fixture(scope="session")
def _runtime_pool(request: pytest.FixtureRequest, compat_store: SnapshotStore) -> Iterator[dict[str, Any]]:
    pool: dict[str, Any] = {}
    try:
        yield pool
    finally:
        for container in pool.values():
            if isinstance(container, runtime.RuntimeContainer):
                container.stop()


@pytest.fixture(scope="session")
def _run_targets() -> dict[str, gate.RunTarget]:
    return {}


@pytest.fixture
def _run_target(request: pytest.FixtureRequest, compat_store: SnapshotStore,
                _harness_image: ImageSpec,
                _run_targets: dict[str, gate.RunTarget]) -> gate.RunTarget:
    """The image under test as the runtime suites start it (`harness.gate.run_target`); the
    test is skipped, naming why, when the engine cannot run it."""
    name = _harness_image.name
    try:
        target = _run_targets.get(_harness_image.ref)
        if target is None:
            # asked once per image and process: every test of the image sees one verdict
            target = _run_targets[_harness_image.ref] = gate.run_target(_harness_image,
                                                                       compat_store)
    except EngineUnavailable as exc:
        if not is_daemonless(_harness_image.ref):
            fail_plainly(request.config, f"{name}: cannot be judged: {exc}", exc)
        # a daemonless source was read without an engine: its static aspects are judged
        # apart, and no engine means nothing to run the image in
        hint = str(exc).rpartition("; ")[2]
        raise pytest.skip.Exception(
            f"{name}: runtime tests skipped: no Docker engine answers to run it (its files "
            f"were read from {_harness_image.ref} without one; {hint})",
            _use_item_location=True) from None
    except HarnessError as exc:
        fail_plainly(request.config, f"{name}: cannot be judged: {exc}", exc)
    if not target.runnable.ok:
        pytest.skip(f"{name} ({target.arch}): runtime suites skipped: {target.runnable.reason}")
    return target


@pytest.fixture
def runtime_emulation(_run_target: gate.RunTarget) -> emulation.Runnable:
    """Whether the engine can run the image under test: natively, or emulated through a
    binfmt_misc handler (then with the image's platform and stretched time bounds). When it
    cannot, the test is skipped naming the image, both architectures and what is missing: an
    image of another architecture never fails a runtime suite with `exec format error`."""
    return _run_target.runnable


@pytest.fixture
def runtime_container(request: pytest.FixtureRequest, compat_store: SnapshotStore,
                      _harness_image: ImageSpec, _run_target: gate.RunTarget,
                      image_families: tuple[str, ...],
                      _runtime_pool: dict[str, Any]) -> runtime.RuntimeContainer:
    """The candidate, started hardened (no network, no capabilities, read-only root where it
    can): one container per image and process, removed at the end of the session. An image of
    another architecture runs emulated (`runtime_emulation`), else its tests are skipped."""
    _require_family(request, image_families, _harness_image.name)
    image_id, runnable = _run_target.image_id, _run_target.runnable
    try:
        # a started container, or why the image cannot have one
        entry = _runtime_pool.get(image_id)
        if isinstance(entry, str):
            pytest.skip(entry)
        if entry is None:
            shell = gate.runtime_shell(_harness_image, compat_store)
            if shell is None:
                _runtime_pool[image_id] = (f"{_harness_image.name} has no shell "
                                           "(/bin/sh): runtime probes cannot run in it")
                pytest.skip(_runtime_pool[image_id])
            try:
                entry = runtime.start(compat_store.engine, image_id, compat_store.run_id,
                                      shell, platform=runnable.platform,
                                      time_scale=runnable.time_scale,
                                      limits=request.config.stash[STATE].config.limits)
            except HarnessError as exc:
                if not (runnable.emulated and "exec format error" in str(exc)):
                    raise
                # the handler this machine has is not the engine's (an engine elsewhere)
                _runtime_pool[image_id] = (
                    f"{_harness_image.name} ({_run_target.arch}): runtime suites skipped: the "
                    f"engine cannot run its binaries (exec format error), although on this "
                    f"machine they are {runnable.reason}; an engine on another machine needs "
                    f"qemu-user-static with F-flag handlers there ({emulation.BINFMT_ENV} can "
                    f"name a copy of its binfmt_misc folder)")
                pytest.skip(_runtime_pool[image_id])
            _runtime_pool[image_id] = entry
    except HarnessError as exc:
        fail_plainly(request.config, f"{_harness_image.name}: cannot be started: {exc}", exc)
    assert isinstance(entry, runtime.RuntimeContainer)
    if entry.broken:
        pytest.fail(terminal(f"{_harness_image.name}: its runtime container is gone: "
                             f"{entry.broken}"), pytrace=False)
    return entry


@pytest.fixture
def runtime_host(runtime_container: runtime.RuntimeContainer) -> Any:
    """testinfra's `host`, bound to the started candidate."""
    return runtime_container.host


@pytest.fixture
def compat_probes(request: pytest.FixtureRequest, compat_store: SnapshotStore,
                  _harness_image: ImageSpec, image_families: tuple[str, ...]
                  ) -> Callable[[dict[str, Any]], AspectResult]:
    """Judge a family's probe items against `probes.FAMILY.json` of the baseline:
    `compat_probes({"applet": ["ls", ...], "runtime": {"version": "3.11.2"}})`."""
    state = request.config.stash[STATE]
    family = _require_family(request, image_families, _harness_image.name)
    if family is None:
        raise pytest.UsageError("compat_probes needs a test marked @pytest.mark.family(NAME)")

    def probe(groups: dict[str, Any]) -> AspectResult:
        __tracebackhide__ = True
        use = WaiverUse()
        request.node.user_properties.append((PENDING_PROPERTY, f"{gate.PROBES}{family}"))
        result = check_probes(_harness_image, str(family), probe_records(str(family), groups),
                              compat_store, state.baselines, state.config, update=state.update,
                              waiver_use=use)
        _record(request, result, use)
        if result.verdict != "pass":
            pytest.fail(failure_message(result, state.baselines), pytrace=False)
        return result

    return probe


def waiver_lines(config: HarnessConfig, use: WaiverUse, full_run: bool,
                 ran: list[str]) -> list[str]:
    """Expired waivers, and (after a full run only) waivers that matched nothing although an
    image they name was gated."""
    lines = []
    for index, w in enumerate(config.waivers):
        label = f"waiver [{index}] kind={w.kind} subject={w.subject} image={w.image}"
        if index in use.expired:
            lines.append(f"EXPIRED {label}: expired on {w.expires}, its changes are no longer waived")
        elif (full_run and not use.matched.get(index)
              and any(fnmatch.fnmatchcase(name, w.image) for name in ran)):
            lines.append(f"STALE {label}: matched nothing in this run; remove it")
    return lines


def unjudged(images: list[ImageSpec], results: list[AspectResult], why: str) -> list[AspectResult]:
    """An `error` result (aspect `run`) for each image that has no result at all."""
    seen = {r.name for r in results}
    return [AspectResult(i.name, i.ref, "run", None, None, None, error=why)
            for i in images if i.name not in seen]


def crash_result(item: pytest.Item, report: pytest.TestReport,
                 call: pytest.CallInfo[None] | None = None) -> AspectResult | None:
    """The `error` result of an image test that failed without a result explaining it (a
    crash, a probe that timed out, a fixture that raised): its pending aspect, else its
    family's probes, else the test's name. None for other tests, and for a test whose
    recorded result fails or errs already."""
    callspec = getattr(item, "callspec", None)
    spec = callspec.params.get("_harness_image") if callspec is not None else None
    if not isinstance(spec, ImageSpec):
        return None
    recorded: dict[str, str] = {}
    for name, value in item.user_properties:
        if name == RESULT_PROPERTY:
            data = json.loads(str(value))
            verdict = AspectResult.from_dict(data).verdict
            recorded[data["aspect"]] = verdict
    if any(v != "pass" for v in recorded.values()):
        return None
    pending = [str(v) for n, v in item.user_properties if n == PENDING_PROPERTY]
    marker = item.get_closest_marker("family")
    aspect = str(next((a for a in pending if a not in recorded), None) or (
        f"{gate.PROBES}{marker.args[0]}" if marker is not None and marker.args
        else getattr(item, "originalname", item.name)))
    if call is not None and call.excinfo is not None:
        why = call.excinfo.exconly().strip()[:500]
    else:
        lines = [line for line in report.longreprtext.strip().splitlines() if line.strip()]
        why = lines[-1].strip()[:500] if lines else report.outcome
    return AspectResult(spec.name, spec.ref, aspect, None, None, None,
                        error=f"{item.nodeid} crashed in {report.when}: {why}")


class ResultCollector:
    """Gathers aspect results from every test report (those of xdist workers included, as
    they reach the controller) and writes the reports and the summary at the end."""

    def __init__(self, state: HarnessState, controller: bool) -> None:
        self.state = state
        self.controller = controller

    def write_placeholders(self) -> None:
        """Replace every report path with one saying the run has not finished: a run that
        dies (killed, out of memory) never leaves an older report's `pass` in place."""
        if not self.state.reports or not self.state.images:
            return
        reports = build_reports(unjudged(self.state.images, [], "the run did not finish "
                                         "(it stopped before writing this report)"))
        for path in self.state.reports:
            try:
                write_report(path, reports)
            except OSError as exc:
                raise pytest.UsageError(f"--compat-report {path}: cannot be written "
                                        f"({exc.strerror or exc})") from None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when != "teardown" and report.failed:
            crashed = crash_result(item, report, call)
            if crashed is not None:
                prop = (RESULT_PROPERTY, json.dumps(crashed.to_dict()))
                item.user_properties.append(prop)
                report.user_properties.append(prop)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # a failed setup has no call phase; otherwise the call's report carries the results
        if report.when != "call" and not (report.when == "setup" and report.failed):
            return
        for name, value in report.user_properties:
            if name == RESULT_PROPERTY:
                self.state.results.append(AspectResult.from_dict(json.loads(str(value))))
            elif name == WAIVER_PROPERTY:
                data = json.loads(str(value))
                use = self.state.waiver_use
                for index, n in data["matched"].items():
                    use.matched[int(index)] = use.matched.get(int(index), 0) + n
                use.expired.update(data["expired"])

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        if items:
            self.state.partial = True

    def _full_run(self, config: pytest.Config) -> bool:
        """Every configured image ran, no test was deselected, no -k/-m narrowed the run."""
        state = self.state
        configured = set(state.config.images)
        ran = {i.name for i in state.images}
        return (not state.partial and not config.option.keyword and not config.option.markexpr
                and configured <= ran and bool(ran))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.controller:
            return
        if getattr(session.config.option, "numprocesses", None) and self.state.images:
            # xdist: the workers have stopped; sweep whatever a crashed one left behind
            with contextlib.suppress(HarnessError):
                Engine.connect(timeout=10).remove_labelled(self.state.run_id)
        if not self.state.reports:
            return
        results = list(self.state.results)
        if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            results += unjudged(self.state.images, results,
                                f"no aspect was judged (pytest exit status {int(exitstatus)})")
        try:
            reports = build_reports(results)
            for path in self.state.reports:
                write_report(path, reports)
        except Exception as exc:
            # e.g. a MemoryError rendering a huge report: it says error, and the run fails
            fallback = build_reports(unjudged(self.state.images, [], "the report could not be "
                                              f"written: {judgement_error(exc)}"))
            for path in self.state.reports:
                with contextlib.suppress(Exception):
                    write_report(path, fallback)
            raise

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.state.images:
            # before pytest's unraisable-exception plugin runs its full collections: they
            # would walk every baseline record and import of the run for nothing; everything
            # alive now lives to the exit
            gcpause.settle()

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int,
                                config: pytest.Config) -> None:
        state = self.state
        if not self.controller or not state.results:
            return
        terminalreporter.write_sep("=", "compatibility gate")
        for line in summary_lines(build_reports(state.results)):
            terminalreporter.write_line(line)
        ran = [i.name for i in state.images]
        for line in waiver_lines(state.config, state.waiver_use, self._full_run(config), ran):
            terminalreporter.write_line(line)
        if self._full_run(config) and not state.update and state.config.images:
            for path in baseline.unused_baselines(state.baselines, [i.name for i in state.images]):
                terminalreporter.write_line(
                    f"unused baseline (no configured image): {terminal(path)}")
        if state.update:
            updated = sorted({r.baseline_path for r in state.results
                              if r.updated and r.baseline_path})
            accepted = sum(1 for r in state.results for c in r.changes if c.reason == ACCEPTED)
            terminalreporter.write_line(f"baselines updated: {len(updated)} file(s) written, "
                                        f"{accepted} change(s) accepted")
            for written in updated:
                terminalreporter.write_line(f"  wrote {terminal(os.path.relpath(written))}")
        for report in state.reports:
            terminalreporter.write_sep("-", f"compat report written to {report}")
