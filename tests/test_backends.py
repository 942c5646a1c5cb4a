"""Other engines as tested backends: the local Docker Engine reached through `DOCKER_HOST` over
loopback TCP (a socat forwarder) and over ssh (a throwaway sshd on loopback), and Podman's
Docker-compatible API socket (Debian's podman, as root).

Each backend records the baselines of the tiny image (and of one with a WorkingDir its layers
lack, which the engine's create makes) through the user-facing suite in a separate pytest,
then gates a candidate with one planted break. The baselines must equal, byte for byte, those
written through Docker's unix socket: one image gives one baseline whatever engine shows it.
`auto` must read through the export on each (the layer folders are Docker's overlay2 on this
machine only), and no container of the run may be left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import testimages
from harness.source.engine import RUN_LABEL, Engine
from harness.errors import SourceError
from harness.source.sources import CreateViewReader, EngineSource
from testimages import Recipe, tiny

from conftest import tree_bytes

pytestmark = pytest.mark.docker

DOCKER_SOCK = "/var/run/docker.sock"
DOCKER_UNIX = f"unix://{DOCKER_SOCK}"
#: the two images recorded as baselines, by baseline name
RECORDED = ("base", "workdir")
#: breaks a planted change implies besides itself (as in test_e2e_gate)
IMPLIED = {tiny.FILE_REMOVED: {("package-files-missing", "hello-demo")}}


def _keep(root: Path) -> None:
    return None


#: Docker's create makes the WorkingDir (0755 root folders); `docker import` leaves it out of
#: the layer, and Podman's create does not make it (its start does)
WORKDIR = Recipe("tiny-workdir", _keep, parent=tiny.BASE, changes=("WORKDIR /srv/app/data",))

#: wraps the engine's reader choice and export in the inner pytest, to prove which path it took
TRACE_CONFTEST = '''
import json
from pathlib import Path

from harness.source.engine import Engine

TRACE = Path(__file__).with_name("trace.jsonl")
_layer_dirs, _export = Engine.layer_dirs, Engine.export


def _note(engine, **entry):
    with TRACE.open("a") as out:
        out.write(json.dumps({"base_url": engine.client.api.base_url, **entry}) + "\\n")


def layer_dirs(self, image_id, container=None):
    dirs = _layer_dirs(self, image_id, container)
    _note(self, call="layer_dirs", in_place=dirs is not None, reason=self.layer_dirs_reason)
    return dirs


def export(self, cid):
    _note(self, call="export")
    return _export(self, cid)


Engine.layer_dirs, Engine.export = layer_dirs, export
'''


# -- processes the fixtures start ---------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A daemon in its own session (so that it and its children stop together)."""
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a daemon a fixture started, and what it forked (its process group)."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    else:  # the leader is gone; forked children (socat's) may remain in its group
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _wait_for(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path,
              what: str, timeout: float = 30) -> str | None:
    """None once `ready()`; else why not (the daemon's exit and the end of its log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            return f"{what} exited ({proc.returncode}): {' | '.join(tail)}"
        try:
            if ready():
                return None
        except OSError:
            pass
        time.sleep(0.1)
    return f"{what} did not answer within {timeout:.0f}s"


def _tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def _http_ping(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(2)
        conn.connect(str(path))
        conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
        status = conn.recv(64).split(b"\r\n", 1)[0].split()
        return status[1:2] == [b"200"]


# -- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def images(docker_engine: Engine) -> dict[str, str]:
    """Docker tags: the recorded images and the candidates."""
    recipes = [tiny.BASE, WORKDIR, tiny.FILE_REMOVED, tiny.SETUID]
    return {r.name: testimages.build(r) for r in recipes}


@pytest.fixture(scope="module")
def tcp_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`tcp://127.0.0.1:PORT`: Docker's unix socket forwarded by socat, on loopback only."""
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("socat is not installed (Debian package socat; scripts/setup installs it)")
    logs = tmp_path_factory.mktemp("socat")
    why = "no attempt"
    for attempt in range(3):  # a free port can be taken before socat binds it
        port, log = _free_port(), logs / f"socat-{attempt}.log"
        proc = _start([socat, f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                       f"UNIX-CONNECT:{DOCKER_SOCK}"], log)
        why = _wait_for(lambda: _tcp_open(port), proc, log, "socat") or ""
        if not why:
            try:
                yield f"tcp://127.0.0.1:{port}"
            finally:
                _stop(proc)
            return
        _stop(proc)
    pytest.fail(f"the TCP forwarder did not start: {why}")


@dataclass
class SshHost:
    url: str
    key: Path
    known_hosts: str


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHost]:
    """`ssh://root@127.0.0.1:PORT`: a throwaway sshd on loopback (its own host key, one
    authorized key for root, all in a temp folder), started in the foreground with `-D`."""
    sshd, keygen = "/usr/sbin/sshd", shutil.which("ssh-keygen")
    if not os.access(sshd, os.X_OK) or keygen is None:
        pytest.skip("openssh-server is not installed (no /usr/sbin/sshd; scripts/setup installs it)")
    if os.geteuid() != 0:
        pytest.skip("the throwaway sshd logs root in: it must run as root")
    try:
        import paramiko  # noqa: F401  (the docker SDK's ssh transport, even its shell-out, imports it)
    except ImportError:
        pytest.skip("the docker SDK's ssh:// transport needs paramiko (the dev extra installs it)")
    work = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", f"harness-{name}",
                        "-f", str(work / name)], check=True)
    (work / "authorized_keys").write_text((work / "client_key.pub").read_text())
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    why = "no attempt"
    for attempt in range(3):
        port, log = _free_port(), work / f"sshd-{attempt}.log"
        config = work / "sshd_config"
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work / 'host_key'}\n"
            f"PidFile {work / 'sshd.pid'}\nAuthorizedKeysFile {work / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\n"
            # the temp folder's parents (/tmp) are world-writable: sshd's ownership check of
            # the authorized keys' path would refuse them
            "StrictModes no\nX11Forwarding no\nAllowTcpForwarding no\n")
        proc = _start([sshd, "-f", str(config), "-D", "-e"], log)
        why = _wait_for(lambda: _tcp_open(port), proc, log, "sshd") or ""
        if not why:
            host_key = " ".join((work / "host_key.pub").read_text().split()[:2])
            try:
                yield SshHost(f"ssh://root@127.0.0.1:{port}", work / "client_key",
                              f"[127.0.0.1]:{port} {host_key}\n")
            finally:
                _stop(proc)
            return
        _stop(proc)
    pytest.skip(f"sshd cannot run on loopback here: {why}")


@dataclass
class PodmanHost:
    url: str
    #: docker tag -> the same image's reference in podman (loaded with `podman load`)
    refs: dict[str, str]


@pytest.fixture(scope="module")
def podman_host(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanHost]:
    """Podman's Docker-compatible API on a unix socket (`podman system service --time=0`, as
    root, on root's storage), the test images loaded into it from `docker save`."""
    podman = shutil.which("podman")
    if podman is None:
        pytest.skip("podman is not installed (Debian package podman; scripts/setup installs it)")
    if os.geteuid() != 0:
        pytest.skip("the podman service is started as root (root's storage and /run)")
    refs = {}
    for tag in images.values():
        # fully qualified: a short name could send podman to a registry when it is missing
        refs[tag] = ref = f"localhost/{tag}"
        if subprocess.run([podman, "image", "exists", ref]).returncode == 0:
            continue
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
        loaded = subprocess.run([podman, "load", "-q"], stdin=save.stdout, capture_output=True)
        assert save.stdout is not None
        save.stdout.close()
        assert save.wait() == 0 and loaded.returncode == 0, loaded.stderr.decode(errors="replace")
    # one socket per process: concurrent runs on this machine do not share (or remove) it
    sock = Path(f"/run/harness-podman-{os.getpid()}.sock")
    sock.unlink(missing_ok=True)
    log = tmp_path_factory.mktemp("podman") / "service.log"
    proc = _start([podman, "system", "service", "--time=0", f"unix://{sock}"], log)
    try:
        why = _wait_for(lambda: _http_ping(sock), proc, log, "podman system service")
        if why:
            pytest.fail(f"podman's API service did not start: {why}")
        yield PodmanHost(f"unix://{sock}", refs)
    finally:
        _stop(proc)
        sock.unlink(missing_ok=True)


# -- one gate round through a backend ------------------------------------------------------------

@dataclass
class Backend:
    """What a test needs to gate through one engine."""

    host: str
    refs: dict[str, str]       # docker tag -> the reference on this backend
    cleanup_host: str          # where the run's containers would be left


def _connect(monkeypatch: pytest.MonkeyPatch, host: str) -> Engine:
    monkeypatch.setenv("DOCKER_HOST", host)
    try:
        return Engine.connect(timeout=60)
    finally:
        monkeypatch.setenv("DOCKER_HOST", DOCKER_UNIX)


def _trace(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    path = pytester.path / "trace.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return [json.loads(line) for line in lines]


def gate_through(backend: Backend, images: dict[str, str], candidate: Recipe, run_gate: Any,
                 pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> list[dict[str, Any]]:
    """Record RECORDED through Docker's unix socket, then through the backend (byte-equal
    baselines), then gate `candidate` as `base` through the backend: the planted break, and
    only it (and what it implies). Returns the backend runs' trace of the reader's choice."""
    pytester.makeconftest(TRACE_CONFTEST)
    run_id = f"backends-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("HARNESS_RUN_ID", run_id)
    recorded = {"base": images[tiny.BASE.name], "workdir": images[WORKDIR.name]}

    monkeypatch.setenv("DOCKER_HOST", DOCKER_UNIX)
    reference = tmp_path / "unix"
    ran = run_gate(recorded, "--update-baselines", f"--compat-cache={tmp_path / 'cache-unix'}",
                   baselines=reference)
    ran.result.assert_outcomes(passed=5 * len(recorded))
    _trace(pytester)  # (read in place, as root on overlay2: test_layerdirs proves it equal)

    # a fresh snapshot cache for each engine: the cache is keyed by image id, which the
    # engines share, and a hit would read nothing through the backend
    monkeypatch.setenv("DOCKER_HOST", backend.host)
    baselines = tmp_path / "backend"
    ran = run_gate({n: backend.refs[r] for n, r in recorded.items()}, "--update-baselines",
                   f"--compat-cache={tmp_path / 'cache-backend'}", baselines=baselines)
    ran.result.assert_outcomes(passed=5 * len(recorded))
    assert sorted(p.name for p in (baselines / "base" / "x86_64").iterdir()) == [
        "abi.json", "files.json", "metadata.json", "packages.json"]
    assert tree_bytes(baselines) == tree_bytes(reference)
    trace = _trace(pytester)

    aspect, kind, subject, verdict = tiny.PLANTED[candidate]
    gate = run_gate({"base": backend.refs[images[candidate.name]]},
                    f"--compat-cache={tmp_path / 'cache-backend'}", baselines=baselines)
    assert gate.result.ret == 1
    entry = gate.image("base")
    assert entry["verdict"] == "fail" and entry["arch"] == "x86_64"
    found = [c for c in entry["changes"] if c["kind"] == kind and c["subject"] == subject]
    assert found, f"no {kind} of {subject} in {entry['changes']}"
    assert found[0]["aspect"] == aspect and found[0]["verdict"] == verdict
    others = {(c["kind"], c["subject"]) for c in entry["changes"]
              if c["verdict"] == "break" and (c["kind"], c["subject"]) != (kind, subject)}
    assert others == IMPLIED.get(candidate, set())
    trace += _trace(pytester)

    monkeypatch.setenv("DOCKER_HOST", DOCKER_UNIX)
    engine = _connect(monkeypatch, backend.cleanup_host)
    left = engine.client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    assert left == [], "containers of the run were left behind"
    return trace


def assert_exported(trace: list[dict[str, Any]], base_url: str, reason: str) -> None:
    """Every snapshot of the backend runs was read through the export, `auto` having found
    the layer folders unreadable for `reason`."""
    choices = [t for t in trace if t["call"] == "layer_dirs"]
    exports = [t for t in trace if t["call"] == "export"]
    assert len(choices) == 3 and len(exports) == 3, trace  # two recorded images, one candidate
    assert {t["base_url"] for t in trace} == {base_url}
    assert not any(t["in_place"] for t in choices)
    assert all(reason in t["reason"] for t in choices), choices


def assert_no_layer_dirs(engine: Engine, image: str, reason: str) -> None:
    """`auto` falls back to the export, `layers` says why it cannot read."""
    image_id = engine.find_or_pull(image).image_id
    run_id = f"backends-probe-{uuid.uuid4().hex[:12]}"
    with engine.created(image_id, run_id) as cid:
        assert engine.layer_dirs(image_id, cid) is None
        assert reason in engine.layer_dirs_reason
    with pytest.raises(SourceError, match=r"cannot be read here.*--compat-read=export"):
        with EngineSource(engine, image, read="layers").rootfs(run_id):
            pass
    assert engine.remove_labelled(run_id) == 0


# -- the backends ---------------------------------------------------------------------------------

def test_docker_over_tcp(tcp_host: str, images: dict[str, str], run_gate: Any,
                         pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path) -> None:
    engine = _connect(monkeypatch, tcp_host)
    base_url = tcp_host.replace("tcp://", "http://")
    assert engine.client.api.base_url == base_url and engine.product == "docker"
    assert_no_layer_dirs(engine, images[tiny.BASE.name], f"the engine is not local ({base_url})")

    backend = Backend(tcp_host, {t: t for t in images.values()}, DOCKER_UNIX)
    trace = gate_through(backend, images, tiny.FILE_REMOVED, run_gate, pytester, monkeypatch,
                         tmp_path)
    assert_exported(trace, base_url, "the engine is not local")


def test_docker_over_ssh(ssh_host: SshHost, images: dict[str, str], run_gate: Any,
                         pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path) -> None:
    # the SDK's paramiko transport reads ~/.ssh (its key, known_hosts: an unknown host key is
    # refused); pytester made HOME its own folder, for this process and the inner pytest
    home = Path(os.environ["HOME"])
    assert home == pytester.path
    (home / ".ssh").mkdir(mode=0o700)
    shutil.copy(ssh_host.key, home / ".ssh" / "id_ed25519")
    (home / ".ssh" / "id_ed25519").chmod(0o600)
    (home / ".ssh" / "known_hosts").write_text(ssh_host.known_hosts)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # no agent's keys tried first

    engine = _connect(monkeypatch, ssh_host.url)
    try:
        assert engine.client.api.base_url == "http+docker://ssh" and engine.product == "docker"
        assert_no_layer_dirs(engine, images[tiny.BASE.name], "the engine is not local")
    finally:
        engine.client.close()  # its ssh transport's thread: a later fork test needs none

    backend = Backend(ssh_host.url, {t: t for t in images.values()}, DOCKER_UNIX)
    trace = gate_through(backend, images, tiny.SETUID, run_gate, pytester, monkeypatch, tmp_path)
    assert_exported(trace, "http+docker://ssh", "the engine is not local")


def test_podman_api_socket(podman_host: PodmanHost, images: dict[str, str],
                           docker_engine: Engine, run_gate: Any, pytester: pytest.Pytester,
                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine = _connect(monkeypatch, podman_host.url)
    assert engine.product == "podman" and docker_engine.product == "docker"
    base = images[tiny.BASE.name]
    # the same image: `podman load` of `docker save` keeps the config, hence the id. The
    # engines' own figures differ and no baseline holds them: podman reports a RepoDigest for
    # a loaded image and counts Size otherwise; a baseline's size is the sum of its files
    ours, theirs = engine.find_or_pull(podman_host.refs[base]), docker_engine.find_or_pull(base)
    assert (ours.image_id, ours.arch, ours.os, ours.variant) == (
        theirs.image_id, theirs.arch, theirs.os, theirs.variant) == (
        theirs.image_id, "x86_64", "linux", None)
    for key in ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels"):
        assert ours.config.get(key) == theirs.config.get(key), key
    # podman's storage is containers-storage, not Docker's overlay2 layout: the export, whose
    # created container lacks Docker's init folders and WorkingDir until completed here
    assert_no_layer_dirs(engine, podman_host.refs[base],
                         "storage driver is 'overlay' (Podman's containers-storage), not overlay2")
    probe = f"backends-probe-{uuid.uuid4().hex[:12]}"
    with EngineSource(engine, podman_host.refs[base], read="auto").rootfs(probe) as fs:
        assert isinstance(fs, CreateViewReader)
    assert engine.remove_labelled(probe) == 0

    backend = Backend(podman_host.url, podman_host.refs, podman_host.url)
    trace = gate_through(backend, images, tiny.SETUID, run_gate, pytester, monkeypatch, tmp_path)
    assert_exported(trace, "http+docker://localhost", "Podman's containers-storage")
