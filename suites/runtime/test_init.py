"""init family: systemd is there, and the entrypoint is an init."""

from typing import Any, Callable

import pytest

pytestmark = pytest.mark.family("init")


def test_systemd_version(host: Any, compat_probes: Callable[..., Any]) -> None:
    out = host.run("systemctl --version || /lib/systemd/systemd --version")
    assert out.rc == 0, out.stderr
    version = out.stdout.split()[1]
    compat_probes({"runtime": {"version": version}})


def test_entrypoint_is_an_init(runtime_container: Any) -> None:
    config = runtime_container.engine.client.api.inspect_image(runtime_container.attrs()["Image"])["Config"]
    command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    assert command and any(part.endswith(("init", "systemd")) for part in command[:1]), command
