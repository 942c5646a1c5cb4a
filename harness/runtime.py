"""Start a candidate image as untrusted, for the runtime suites.

No network, every capability dropped, no-new-privileges, a read-only root (the image's own
default command too; the shell's container falls back to a writable one, under a storage
quota where the engine's driver supports one, only if the image cannot start read-only),
pids, memory and CPU limits, a capped log, no host mounts, and a bounded life: a timer here
removes the container whatever the suite does, and the container ends itself (its PID 1
waits on `sleep` where the image has one), so a run killed outright leaves nothing running
past it. Every probe command runs under a timeout and an output cap (`harness.limits`); one
that exceeds them fails naming the command, and its container is removed. The containers are
labelled with the run id, so the session's clean-up (and SIGTERM/SIGINT) removes them even
after a crash. An image of another architecture is started with its platform, under the
binfmt emulator `harness.emulation` found, its time bounds stretched by `time_scale`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from typing import IO, Any

import requests.exceptions

from harness.source.dockersdk import docker
from harness.source.engine import RUN_LABEL, Engine
from harness.errors import SourceError
from harness.limits import Limits, size_text

HARDENING: dict[str, Any] = {
    "network_mode": "none",
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "pids_limit": 256,
    "mem_limit": "1g",
    "nano_cpus": 1_000_000_000,  # one CPU: a spinning image cannot starve the engine's host
    "tmpfs": {"/tmp": "rw,nosuid,nodev,size=128m", "/run": "rw,nosuid,nodev,size=16m"},
    # the engine keeps at most this much of what the image prints (the suites read 20 lines)
    "log_config": {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "1"}},
}
MAX_LIFE_SECONDS = 900
#: the writable layer's quota when a writable root is needed (overlay2 on xfs with pquota)
STORAGE_QUOTA = "1G"
#: PID 1 of the shell's container: it ends the container after $1 seconds where the image has
#: `sleep`, else waits on its open stdin as long as the engine-side timer lets it
LIFE_SCRIPT = ('if command -v sleep >/dev/null 2>&1; then exec sleep "$1"; fi; '
               'while read -r _; do :; done')
#: the default command, wrapped: run as PID 1's child, killed after $1 seconds where the image
#: has `sleep` (PID 1 then exits, which ends every process of the container)
DEFAULT_SCRIPT = ('t="$1"; shift; if ! command -v sleep >/dev/null 2>&1; then exec "$@"; fi; '
                  '"$@" </dev/null & c=$!; (sleep "$t"; kill -9 "$c") >/dev/null 2>&1 & '
                  'wait "$c"')


@dataclass
class RuntimeContainer:
    """A started, hardened container of the candidate, kept alive by a shell on stdin."""

    engine: Engine
    id: str
    read_only: bool
    run_id: str
    timer: threading.Timer | None = field(default=None, repr=False)
    #: the image's platform when it runs emulated (None: native)
    platform: str | None = None
    #: factor for time bounds (emulation is slower)
    time_scale: int = 1
    #: the probes' time and output bounds
    limits: Limits = field(default_factory=Limits)
    #: the shell the container was started with (default commands are wrapped by it)
    shell: str = "/bin/sh"
    #: why the container is gone before its session ended (a probe past its bounds)
    broken: str | None = None

    @property
    def host(self) -> Any:
        """testinfra's host bound to this container (commands run by `docker exec`, each
        within the probe bounds)."""
        from testinfra.host import Host

        return Host(bounded_backend(self))

    def attrs(self) -> dict[str, Any]:
        """The engine's inspect data of the container (for the hardening test)."""
        return dict(self.engine.client.api.inspect_container(self.id))

    def run_default(self, seconds: int = 20) -> tuple[int | None, str]:
        """`run_default` of this container's image, on its platform, for at most `seconds`
        (stretched by the time scale)."""
        image = str(self.attrs()["Image"])
        return run_default(self.engine, image, self.run_id, seconds * self.time_scale,
                           platform=self.platform, shell=self.shell)

    def give_up(self, why: str) -> None:
        """Remove the container now (a probe exceeded its bounds: whatever it started is
        still running in it); later probes fail with `why`."""
        self.broken = why
        self.stop()

    def stop(self) -> None:
        """Remove the container now."""
        if self.timer is not None:
            self.timer.cancel()
        self.engine.remove_container(self.id)


def start(engine: Engine, image_id: str, run_id: str, shell: str = "/bin/sh",
          max_seconds: int = MAX_LIFE_SECONDS, platform: str | None = None,
          time_scale: int = 1, limits: Limits | None = None) -> RuntimeContainer:
    """Start the image with `shell` as PID 1, waiting out its life (`sleep`, else reading an
    open stdin); read-only root first, writable (under a storage quota where the driver has
    one) if the image cannot start read-only. `platform` (`linux/arm64`) is given for an
    image of another architecture, which then lives `time_scale` times longer."""
    last: Exception | None = None
    life = max_seconds * time_scale
    for read_only in (True, False):
        try:
            cid = _create(engine, image_id, run_id, shell, read_only, platform, life)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise SourceError(f"cannot create a runtime container of {image_id[:19]}: {exc}") from exc
        try:
            engine.client.api.start(cid)
            state = engine.client.api.inspect_container(cid)["State"]
            # `Running` right after start may precede the shell's exec failing: the shell
            # must also answer an exec
            problem = _shell_fails(engine, cid, shell) if state.get("Running") else None
            if state.get("Running") and problem is None:
                timer = threading.Timer(life, engine.remove_container, args=(cid,))
                timer.daemon = True
                timer.start()
                return RuntimeContainer(engine, cid, read_only, run_id, timer, platform,
                                        time_scale, limits or Limits(), shell)
            # its last words tell why: `exec format error` (no emulator for its
            # architecture), a missing interpreter, a read-only root it needs to write
            last = SourceError(problem or f"container exited at once with code "
                               f"{state.get('ExitCode')}" + _tail(engine, cid))
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            last = exc
        engine.remove_container(cid)
    raise SourceError(f"cannot start {image_id[:19]} with {shell}: {last}")


def _create(engine: Engine, image_id: str, run_id: str, shell: str, read_only: bool,
            platform: str | None = None, life: int = MAX_LIFE_SECONDS) -> str:
    global _QUOTA
    api = engine.client.api
    quota = {} if read_only else storage_quota(engine)
    host_config = api.create_host_config(read_only=read_only, **HARDENING, **quota)
    try:
        created = api.create_container(image_id, entrypoint=[shell, "-c", LIFE_SCRIPT, shell],
                                       command=[str(life)], stdin_open=True,
                                       labels={RUN_LABEL: run_id}, host_config=host_config,
                                       network_disabled=True, **_platform(platform))
    except docker.errors.APIError as exc:
        if not quota or "storage" not in str(exc).lower():
            raise
        # xfs without pquota: the engine says so only now
        _QUOTA = f"the engine refuses a writable layer's quota ({exc.explanation or exc})"
        return _create(engine, image_id, run_id, shell, read_only, platform, life)
    return str(created["Id"])


def storage_quota(engine: Engine) -> dict[str, Any]:
    """`storage_opt` limiting a container's writable layer, when the engine's driver can
    (overlay2 on xfs mounted with pquota, which only a create tells); else nothing, and
    `quota_unsupported` says why."""
    global _QUOTA
    if _QUOTA is None:
        _QUOTA = _probe_quota(engine)
    return {"storage_opt": {"size": STORAGE_QUOTA}} if _QUOTA == "" else {}


_QUOTA: str | None = None


def quota_unsupported(engine: Engine) -> str | None:
    """Why the engine cannot bound a container's writable layer, or None when it can."""
    storage_quota(engine)
    return _QUOTA or None


def _probe_quota(engine: Engine) -> str:
    info = engine.client.api.info()
    status = dict(info.get("DriverStatus") or [])
    driver, backing = info.get("Driver"), status.get("Backing Filesystem")
    if driver != "overlay2" or backing != "xfs":
        return (f"the engine's storage driver is {driver} on {backing or 'an unknown filesystem'}"
                "; a writable layer's quota needs overlay2 on xfs mounted with pquota")
    return ""


def _platform(platform: str | None) -> dict[str, str]:
    # only for a foreign image: the SDK refuses `platform` below API 1.41 (Docker 20.10), and a
    # native image needs none
    return {"platform": platform} if platform else {}


def _shell_fails(engine: Engine, cid: str, shell: str) -> str | None:
    """Why `shell -c :` does not run in the started container, or None when it does."""
    api = engine.client.api
    try:
        exec_id = api.exec_create(cid, [shell, "-c", ":"])["Id"]
        output = api.exec_start(exec_id).decode("utf-8", "replace").strip()
        code = api.exec_inspect(exec_id).get("ExitCode")
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        reason = str(getattr(exc, "explanation", None) or exc)
        return f"the container stopped at once ({reason})" + _tail(engine, cid)
    if code == 0:
        return None
    return (f"{shell} -c : exits with code {code}" + (f": {output}" if output else "")
            + _tail(engine, cid))


def _tail(engine: Engine, cid: str) -> str:
    """`: ` and the last lines a stopped container printed, or nothing."""
    with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
        logs = engine.client.api.logs(cid, tail=5).decode("utf-8", "replace").strip()
        if logs:
            return ": " + " | ".join(logs.splitlines())
    return ""


def run_default(engine: Engine, image_id: str, run_id: str, seconds: int = 20,
                platform: str | None = None, shell: str | None = None) -> tuple[int | None, str]:
    """Run the image's own entrypoint/cmd hardened (its root read-only, like the shell's
    container), without stdin, for at most `seconds` (`platform` for an image of another
    architecture). With `shell`, the command runs as its child and ends after `seconds` (plus
    a margin) inside the container too, should this process be killed meanwhile.

    Returns (exit code, or None if still running when time was up, last lines of output).
    """
    api = engine.client.api
    host_config = api.create_host_config(read_only=True, **HARDENING)
    wrapped: dict[str, Any] = {}
    if shell is not None:
        config = api.inspect_image(image_id).get("Config") or {}
        command = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
        if command:
            wrapped = {"entrypoint": [shell, "-c", DEFAULT_SCRIPT, shell],
                       "command": [str(seconds + 30), *command]}
    cid = api.create_container(image_id, labels={RUN_LABEL: run_id}, host_config=host_config,
                               network_disabled=True, **wrapped, **_platform(platform))["Id"]
    try:
        api.start(cid)
        try:
            code: int | None = int(api.wait(cid, timeout=seconds)["StatusCode"])
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            code = None
        logs = ""
        with contextlib.suppress(docker.errors.APIError):
            logs = api.logs(cid, tail=20).decode("utf-8", "replace")
        return code, logs
    finally:
        engine.remove_container(cid)


class ProbeBoundExceeded(SourceError):
    """A probe command ran past its time or printed past its output cap."""


def bounded_backend(container: RuntimeContainer) -> Any:
    """testinfra's docker backend for `container`, each command run within the probe bounds
    (`probe_seconds`, stretched by the time scale; `probe_output_bytes` per stream)."""
    from testinfra.backend.docker import DockerBackend

    class Bounded(DockerBackend):  # type: ignore[misc]
        def run_local(self, command: str, *args: str) -> Any:
            if container.broken:
                raise ProbeBoundExceeded(container.broken)
            cmd = self.encode(self.quote(command, *args))
            seconds = container.limits.probe_seconds * container.time_scale
            shown = args[-1] if args else command  # the probe, not the `docker exec` around it
            code, out, err = bounded_run(cmd, seconds, container.limits.probe_output_bytes,
                                         str(shown), container)
            return self.result(code, cmd, out, err)

    return Bounded(container.id)


def bounded_run(cmd: bytes, seconds: float, cap: int, shown: str,
                container: RuntimeContainer) -> tuple[int, bytes, bytes]:
    """Run a local command (`docker exec ...`) for at most `seconds`, keeping at most `cap`
    bytes of each stream. Past either bound the client is killed, the container removed
    (the command would go on inside it) and `ProbeBoundExceeded` names the command."""
    proc = subprocess.Popen(cmd, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    streams: list[bytearray] = [bytearray(), bytearray()]
    over: list[str] = []

    def drain(pipe: IO[bytes], into: bytearray, name: str) -> None:
        for chunk in iter(lambda: pipe.read1(1 << 16), b""):  # type: ignore[attr-defined]
            if len(into) + len(chunk) > cap:
                over.append(name)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                return
            into += chunk

    readers = [threading.Thread(target=drain, args=(pipe, buf, name), daemon=True)
               for pipe, buf, name in ((proc.stdout, streams[0], "stdout"),
                                       (proc.stderr, streams[1], "stderr"))]
    for reader in readers:
        reader.start()
    try:
        code = proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        why = (f"probe `{shown[:300]}` did not finish within {seconds:g} s "
               f"({container.limits.describe('probe_seconds')}"
               + (f", x{container.time_scale} emulated" if container.time_scale > 1 else "")
               + "); its container was removed")
        container.give_up(why)
        raise ProbeBoundExceeded(why) from None
    finally:
        for reader in readers:
            reader.join(timeout=10)
    if over:
        why = (f"probe `{shown[:300]}` printed more than {size_text(cap)} on {over[0]} "
               f"({container.limits.describe('probe_output_bytes')}); its container was removed")
        container.give_up(why)
        raise ProbeBoundExceeded(why)
    return code, bytes(streams[0]), bytes(streams[1])
