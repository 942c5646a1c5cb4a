"""Start a candidate image as untrusted, for the runtime suites.

No network, every capability dropped, no-new-privileges, a read-only root where the image
allows it, pids and memory limits, no host mounts, and a bounded life: a timer removes the
container whatever the suite does. The container is labelled with the run id, so the
session's clean-up removes it even after a crash.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

import docker.errors
import requests.exceptions

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

    @property
    def host(self) -> Any:
        """testinfra's host bound to this container (commands run by `docker exec`)."""
        import testinfra

        return testinfra.get_host(f"docker://{self.id}")

    def attrs(self) -> dict[str, Any]:
        """The engine's inspect data of the container (for the hardening test)."""
        return dict(self.engine.client.api.inspect_container(self.id))

    def stop(self) -> None:
        """Remove the container now."""
        if self.timer is not None:
            self.timer.cancel()
        self.engine.remove_container(self.id)


def start(engine: Engine, image_id: str, run_id: str, shell: str = "/bin/sh",
          max_seconds: int = MAX_LIFE_SECONDS) -> RuntimeContainer:
    """Start the image with `shell` reading an open stdin (it then waits forever without
    needing `sleep`); read-only root first, writable if the image cannot start read-only."""
    last: Exception | None = None
    for read_only in (True, False):
        try:
            cid = _create(engine, image_id, run_id, shell, read_only)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise SourceError(f"cannot create a runtime container of {image_id[:19]}: {exc}") from exc
        try:
            engine.client.api.start(cid)
            state = engine.client.api.inspect_container(cid)["State"]
            if state.get("Running"):
                timer = threading.Timer(max_seconds, engine.remove_container, args=(cid,))
                timer.daemon = True
                timer.start()
                return RuntimeContainer(engine, cid, read_only, run_id, timer)
            last = SourceError(f"container exited at once with code {state.get('ExitCode')}")
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            last = exc
        engine.remove_container(cid)
    raise SourceError(f"cannot start {image_id[:19]} with {shell}: {last}")


def _create(engine: Engine, image_id: str, run_id: str, shell: str, read_only: bool) -> str:
    api = engine.client.api
    host_config = api.create_host_config(read_only=read_only, **HARDENING)
    created = api.create_container(image_id, entrypoint=[shell], command=[], stdin_open=True,
                                   labels={RUN_LABEL: run_id}, host_config=host_config,
                                   network_disabled=True)
    return str(created["Id"])


def run_default(engine: Engine, image_id: str, run_id: str, seconds: int = 20) -> tuple[int | None, str]:
    """Run the image's own entrypoint/cmd hardened, without stdin, for at most `seconds`.

    Returns (exit code, or None if still running when time was up, last lines of output).
    """
    api = engine.client.api
    host_config = api.create_host_config(read_only=False, **HARDENING)
    cid = api.create_container(image_id, labels={RUN_LABEL: run_id}, host_config=host_config,
                               network_disabled=True)["Id"]
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
