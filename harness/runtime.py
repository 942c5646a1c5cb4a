"""Start a candidate image as untrusted, for the runtime suites.

No network, every capability dropped, no-new-privileges, a read-only root where the image
allows it, pids and memory limits, no host mounts, and a bounded life: a timer removes the
container whatever the suite does. The container is labelled with the run id, so the
session's clean-up removes it even after a crash. An image of another architecture is started
with its platform, under the binfmt emulator `harness.emulation` found, its time bounds
stretched by `time_scale`.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

import requests.exceptions

from harness.dockersdk import docker
from harness.engine import RUN_LABEL, Engine
from harness.errors import SourceError

HARDENING: dict[str, Any] = {
    "network_mode": "none",
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "pids_limit": 256,
    "mem_limit": "1g",
    "tmpfs": {"/tmp": "rw,nosuid,nodev,size=128m", "/run": "rw,nosuid,nodev,size=16m"},
}
MAX_LIFE_SECONDS = 900


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

    @property
    def host(self) -> Any:
        """testinfra's host bound to this container (commands run by `docker exec`)."""
        import testinfra

        return testinfra.get_host(f"docker://{self.id}")

    def attrs(self) -> dict[str, Any]:
        """The engine's inspect data of the container (for the hardening test)."""
        return dict(self.engine.client.api.inspect_container(self.id))

    def run_default(self, seconds: int = 20) -> tuple[int | None, str]:
        """`run_default` of this container's image, on its platform, for at most `seconds`
        (stretched by the time scale)."""
        image = str(self.attrs()["Image"])
        return run_default(self.engine, image, self.run_id, seconds * self.time_scale,
                           platform=self.platform)

    def stop(self) -> None:
        """Remove the container now."""
        if self.timer is not None:
            self.timer.cancel()
        self.engine.remove_container(self.id)


def start(engine: Engine, image_id: str, run_id: str, shell: str = "/bin/sh",
          max_seconds: int = MAX_LIFE_SECONDS, platform: str | None = None,
          time_scale: int = 1) -> RuntimeContainer:
    """Start the image with `shell` reading an open stdin (it then waits forever without
    needing `sleep`); read-only root first, writable if the image cannot start read-only.
    `platform` (`linux/arm64`) is given for an image of another architecture, which then
    lives `time_scale` times longer."""
    last: Exception | None = None
    for read_only in (True, False):
        try:
            cid = _create(engine, image_id, run_id, shell, read_only, platform)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise SourceError(f"cannot create a runtime container of {image_id[:19]}: {exc}") from exc
        try:
            engine.client.api.start(cid)
            state = engine.client.api.inspect_container(cid)["State"]
            # `Running` right after start may precede the shell's exec failing: the shell
            # must also answer an exec
            problem = _shell_fails(engine, cid, shell) if state.get("Running") else None
            if state.get("Running") and problem is None:
                timer = threading.Timer(max_seconds * time_scale, engine.remove_container,
                                        args=(cid,))
                timer.daemon = True
                timer.start()
                return RuntimeContainer(engine, cid, read_only, run_id, timer, platform,
                                        time_scale)
            # its last words tell why: `exec format error` (no emulator for its
            # architecture), a missing interpreter, a read-only root it needs to write
            last = SourceError(problem or f"container exited at once with code "
                               f"{state.get('ExitCode')}" + _tail(engine, cid))
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            last = exc
        engine.remove_container(cid)
    raise SourceError(f"cannot start {image_id[:19]} with {shell}: {last}")


def _create(engine: Engine, image_id: str, run_id: str, shell: str, read_only: bool,
            platform: str | None = None) -> str:
    api = engine.client.api
    host_config = api.create_host_config(read_only=read_only, **HARDENING)
    created = api.create_container(image_id, entrypoint=[shell], command=[], stdin_open=True,
                                   labels={RUN_LABEL: run_id}, host_config=host_config,
                                   network_disabled=True, **_platform(platform))
    return str(created["Id"])


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
                platform: str | None = None) -> tuple[int | None, str]:
    """Run the image's own entrypoint/cmd hardened, without stdin, for at most `seconds`
    (`platform` for an image of another architecture).

    Returns (exit code, or None if still running when time was up, last lines of output).
    """
    api = engine.client.api
    host_config = api.create_host_config(read_only=False, **HARDENING)
    cid = api.create_container(image_id, labels={RUN_LABEL: run_id}, host_config=host_config,
                               network_disabled=True, **_platform(platform))["Id"]
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
