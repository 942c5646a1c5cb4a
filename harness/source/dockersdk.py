"""The docker SDK, imported without its ssh transport unless `DOCKER_HOST` is an ssh:// URL.

The SDK imports paramiko as it is imported whenever paramiko is installed (its ssh transport
module imports it at the top, in a try the SDK's package import runs), for any engine: a large
part of a warm gate's start (bench/README.md), with the `ssh` or `dev` extra installed. Here the SDK
is imported with paramiko hidden unless `DOCKER_HOST` asks for ssh; `ssh_transport` loads the
transport later, for a `DOCKER_HOST` set to ssh:// once the SDK was imported (as a test that
connects through several engines in one process does). Modules of the harness import the
SDK from here: `from harness.source.dockersdk import docker`.
"""

from __future__ import annotations

import os
import sys

if "paramiko" in sys.modules or os.environ.get("DOCKER_HOST", "").startswith("ssh://"):
    import docker
else:
    sys.modules["paramiko"] = None  # type: ignore[assignment]  # `import paramiko` fails
    try:
        import docker
    finally:
        del sys.modules["paramiko"]  # later imports find paramiko as usual

import docker.api.client
import docker.errors


def ssh_transport() -> None:
    """Give the SDK its ssh transport if it was imported without it and paramiko is
    installed (without paramiko, the SDK's own error says to install it)."""
    if hasattr(docker.api.client, "SSHHTTPAdapter"):
        return
    try:
        from docker.transport.sshconn import SSHHTTPAdapter
    except ImportError:
        return
    # the name the SDK's client looks up when its base URL is ssh://
    docker.api.client.SSHHTTPAdapter = SSHHTTPAdapter


__all__ = ["docker", "ssh_transport"]
