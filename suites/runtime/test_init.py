"""init family: systemd is there with its tools and units, and the entrypoint is an init."""

import shlex
from typing import Any, Callable

import pytest

pytestmark = pytest.mark.family("init")

SYSTEMD = ("/usr/lib/systemd/systemd", "/lib/systemd/systemd")
#: systemd's commands users script against (`systemctl enable` in a Dockerfile above all)
TOOLS = ("systemctl", "journalctl", "loginctl", "busctl", "hostnamectl", "localectl",
         "timedatectl", "systemd-analyze", "systemd-tmpfiles", "systemd-sysusers", "systemd-run",
         "systemd-escape", "systemd-machine-id-setup", "systemd-cgls", "udevadm")
UNIT_DIRS = ("/usr/lib/systemd/system", "/lib/systemd/system")
UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer", ".path", ".mount", ".automount",
                 ".swap", ".slice", ".scope")


def test_systemd_version(host: Any, compat_probes: Callable[..., Any]) -> None:
    out = host.run("for s in %s; do if [ -x $s ]; then exec $s --version; fi; done; "
                   "echo 'no systemd binary in %s' >&2; exit 127" % (" ".join(SYSTEMD), ", ".join(SYSTEMD)))
    assert out.rc == 0, out.stderr
    # "systemd 252 (252.36-1~deb12u1)": the number is systemd's release, its major version
    version = out.stdout.split()[1]
    tools = host.run("for t in %s; do command -v $t >/dev/null 2>&1 && echo $t; done" % " ".join(TOOLS))
    units = host.run("for d in %s; do [ -d $d ] && ls -1 $d; done" % " ".join(UNIT_DIRS))
    compat_probes({"runtime": {"version": version}, "tool": sorted(set(tools.stdout.split())),
                   "unit": sorted({u for u in units.stdout.split() if u.endswith(UNIT_SUFFIXES)})})


def test_entrypoint_is_an_init(runtime_container: Any, host: Any) -> None:
    config = runtime_container.engine.client.api.inspect_image(runtime_container.attrs()["Image"])["Config"]
    command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    assert command and command[0].endswith(("init", "systemd")), (
        f"the image starts {command or 'nothing'}, not an init (e.g. CMD [\"/sbin/init\"])")
    if command[0].startswith("/"):
        found = host.run(f"test -x {shlex.quote(command[0])}")
        assert found.rc == 0, f"the init {command[0]} is not an executable in the image"
