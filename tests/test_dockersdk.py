"""harness.source.dockersdk: the docker SDK without paramiko unless DOCKER_HOST asks for ssh."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("paramiko") is None,
                                reason="paramiko is not installed: nothing to leave out")

PROBE = """
import sys
import harness.plugin
from harness.source.dockersdk import docker, ssh_transport
print("paramiko" in sys.modules, hasattr(docker.api.client, "SSHHTTPAdapter"), end=" ")
ssh_transport()
print("paramiko" in sys.modules, hasattr(docker.api.client, "SSHHTTPAdapter"))
"""


def _probe(docker_host: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    if docker_host is not None:
        env["DOCKER_HOST"] = docker_host
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_the_plugin_imports_no_paramiko_for_a_local_engine() -> None:
    # left out at import (0.2 s of every run); loaded when an ssh:// engine is asked for
    assert _probe(None) == "False False True True"
    assert _probe("unix:///var/run/docker.sock") == "False False True True"


def test_an_ssh_engine_gets_the_transport_at_import() -> None:
    assert _probe("ssh://root@127.0.0.1:22") == "True True True True"
