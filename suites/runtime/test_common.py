"""What every image with a shell must keep doing: its own entrypoint/cmd runs."""

from typing import Any

import pytest

from harness import runtime


def test_default_command_runs(runtime_container: runtime.RuntimeContainer) -> None:
    """`docker run IMAGE` (no arguments, no stdin, no network) must not fail at once."""
    image = runtime_container.attrs()["Image"]
    code, logs = runtime.run_default(runtime_container.engine, image, runtime_container.run_id)
    if code not in (0, None):
        pytest.fail(f"the image's entrypoint/cmd exits with code {code}:\n{logs}", pytrace=False)


def test_shell_runs(host: Any) -> None:
    """The family's /bin/sh starts and runs a command."""
    assert host.run("echo ok").stdout.strip() == "ok"
