"""The runtime stage bounds what a hostile image can do to the engine and to the run: its own
default command runs on a read-only root with a capped log and one CPU; a probe that never
returns or prints without end fails naming the command; SIGTERM removes the run's containers;
a run killed outright leaves no container running past its life."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

import testimages
from harness import runtime
from harness.source.engine import RUN_LABEL
from harness.limits import MIB, Limits
from testimages import runaway

REPO = Path(__file__).resolve().parent.parent


def _labelled(engine: Any, run_id: str, **kw: Any) -> list[dict[str, Any]]:
    return list(engine.client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}, **kw))


def _until(check: Any, seconds: float) -> Any:
    """Poll `check` until it returns something true, for at most `seconds` (a wait for the
    engine, never an assertion about speed)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    return check()


def test_a_flooding_default_command_is_bounded(docker_engine: Any) -> None:
    """It writes 1 GiB to the root and to /tmp and floods its log: the root is read-only,
    /tmp a small tmpfs, the log capped, the container on one CPU."""
    tag = testimages.build(runaway.FLOODING)
    image_id = docker_engine.find_or_pull(tag).image_id
    run_id = f"flood-{uuid.uuid4().hex[:12]}"
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(runtime.run_default(
        docker_engine, image_id, run_id, seconds=12, shell="/bin/sh")))
    worker.start()
    written, logged, configs = 0, 0, []
    try:
        while worker.is_alive():
            for c in _labelled(docker_engine, run_id, size=True):
                written = max(written, int(c.get("SizeRw") or 0))
                try:
                    with_path = docker_engine.client.api.inspect_container(c["Id"])
                except docker.errors.NotFound:
                    continue  # ended and removed between the listing and this look
                configs.append(with_path["HostConfig"])
                try:
                    logged = max(logged, os.path.getsize(with_path["LogPath"]))
                except (OSError, KeyError, TypeError):
                    pass
            time.sleep(0.5)
    finally:
        worker.join()
        docker_engine.remove_labelled(run_id)
    print(f"writable layer {written:,} bytes, log {logged:,} bytes, exit {outcome[0][0]}")
    assert configs, "the default command's container was never seen"
    host = configs[-1]
    assert host["ReadonlyRootfs"] is True and host["NanoCpus"] == 1_000_000_000
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "1"}}
    assert written < 16 * MIB, f"the writable layer grew to {written:,} bytes"
    if logged:  # the engine's log file is readable here (a local engine)
        assert 64 * 1024 < logged <= MIB + 64 * 1024, logged
    code, _ = outcome[0]
    assert code != 0  # it never ends well: its writes fail, or its time is up
    assert not _labelled(docker_engine, run_id)


def test_a_probe_that_never_returns_fails_naming_it(docker_engine: Any, tiny_images: dict[str, str]) -> None:
    image_id = docker_engine.find_or_pull(tiny_images["tiny-base"]).image_id
    run_id = f"probe-{uuid.uuid4().hex[:12]}"
    container = runtime.start(docker_engine, image_id, run_id, limits=Limits(probe_seconds=3))
    try:
        host = container.host
        assert host.run("echo ok").stdout.strip() == "ok"
        with pytest.raises(runtime.ProbeBoundExceeded,
                           match=r"probe `.*sleep 100000.*` did not finish within 3 s "
                                 r"\(\[tool\.harness\.limits\] probe_seconds = 3 s\); its "
                                 r"container was removed"):
            host.run("sleep 100000")
        assert not _labelled(docker_engine, run_id), "whatever the probe started is gone"
        with pytest.raises(runtime.ProbeBoundExceeded, match="sleep 100000"):
            host.run("true")
    finally:
        container.stop()


def test_a_probe_printing_without_end_fails_naming_it(docker_engine: Any,
                                                      tiny_images: dict[str, str]) -> None:
    image_id = docker_engine.find_or_pull(tiny_images["tiny-base"]).image_id
    run_id = f"probe-{uuid.uuid4().hex[:12]}"
    container = runtime.start(docker_engine, image_id, run_id,
                              limits=Limits(probe_output_bytes=MIB))
    try:
        small = container.host.run("busybox head -c 100000 /dev/zero")
        assert len(small.stdout_bytes) == 100_000
        with pytest.raises(runtime.ProbeBoundExceeded,
                           match=r"probe `.*busybox cat /dev/zero.*` printed more than 1 MiB on "
                                 r"stdout \(\[tool\.harness\.limits\] probe_output_bytes = 1 MiB\)"):
            container.host.run("busybox cat /dev/zero")
        assert not _labelled(docker_engine, run_id)
    finally:
        container.stop()


HOLDING_SUITE = """
import time

def test_hold(runtime_container):
    print("STARTED", runtime_container.id, flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_run_removes_its_containers(signum: int, docker_engine: Any,
                                                tiny_images: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "test_hold.py").write_text(HOLDING_SUITE)
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\nminversion = "8.0"\n')
    run_id = f"signal-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "HARNESS_RUN_ID": run_id, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s",
                             "--image", f"x={tiny_images['tiny-base']}",
                             f"--compat-cache={tmp_path / 'cache'}", "test_hold.py"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        started = _until(lambda: _labelled(docker_engine, run_id), 300)
        assert started, "the suite never started its container"
        proc.send_signal(signum)
        out = proc.communicate(timeout=120)[0].decode("utf-8", "replace")
        assert proc.returncode != 0, out
        assert _labelled(docker_engine, run_id) == [], out
    finally:
        if proc.poll() is None:
            proc.kill()
        docker_engine.remove_labelled(run_id)


KILLED_RUN = """
import os, signal, sys
from harness import runtime
from harness.source.engine import Engine

engine = Engine.connect()
container = runtime.start(engine, sys.argv[1], sys.argv[2], max_seconds=5)
print(container.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_run_leaves_nothing_running_past_its_life(docker_engine: Any,
                                                           tiny_images: dict[str, str]) -> None:
    image_id = docker_engine.find_or_pull(tiny_images["tiny-base"]).image_id
    run_id = f"killed-{uuid.uuid4().hex[:12]}"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_RUN), image_id, run_id],
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        cid = proc.stdout.strip()
        assert [c["Id"] for c in _labelled(docker_engine, run_id)] == [cid]
        stopped = _until(lambda: not docker_engine.client.api.inspect_container(cid)["State"]["Running"], 120)
        assert stopped, "the container outlived its life"
    finally:
        docker_engine.remove_labelled(run_id)


def test_a_writable_layer_has_a_quota_where_the_driver_allows(docker_engine: Any,
                                                              tiny_images: dict[str, str]) -> None:
    reason = runtime.quota_unsupported(docker_engine)
    if reason:
        pytest.skip(f"no storage quota on this engine: {reason}")
    image_id = docker_engine.find_or_pull(tiny_images["tiny-base"]).image_id
    run_id = f"quota-{uuid.uuid4().hex[:12]}"
    try:
        cid = runtime._create(docker_engine, image_id, run_id, "/bin/sh", read_only=False)
        host = docker_engine.client.api.inspect_container(cid)["HostConfig"]
        assert host["StorageOpt"] == {"size": runtime.STORAGE_QUOTA}
    finally:
        docker_engine.remove_labelled(run_id)


def test_a_hanging_probe_is_its_familys_error_in_the_reports(runtime_suite: Any, pytester: pytest.Pytester,
                                                             docker_engine: Any, tmp_path: Path) -> None:
    tag = testimages.build(runaway.hanging_probe())
    (pytester.path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\nminversion = "8.0"\n[tool.harness.limits]\nprobe_seconds = 4\n'
        f'[tool.harness.images.img]\nref = "{tag}"\nfamilies = ["minimal"]\n')
    report = tmp_path / "r.json"
    result = runtime_suite(tag, tmp_path / "baselines", "--update-baselines", f"--compat-report={report}",
                           f"--compat-report={tmp_path / 'r.md'}", "-k", "minimal")
    assert result.ret == 1, result.stdout.str()
    entry = json.loads(report.read_text())["images"][0]
    assert entry["verdict"] == "error"
    assert any(e.startswith("probes.minimal: ") and "probe `dpkg-query -W" in e
               and "did not finish within 4 s" in e for e in entry["errors"]), entry["errors"]
    assert "dpkg-query -W" in (tmp_path / "r.md").read_text()
    assert not _labelled(docker_engine, os.environ["HARNESS_RUN_ID"])
