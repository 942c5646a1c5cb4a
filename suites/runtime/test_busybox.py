"""busybox family: every applet stays (`busybox --list`) and each applet link stays."""

from typing import Any, Callable

import pytest

pytestmark = pytest.mark.family("busybox")


def test_applets(host: Any, compat_probes: Callable[..., Any]) -> None:
    listed = host.run("busybox --list")
    assert listed.rc == 0, listed.stderr
    applets = sorted(set(listed.stdout.split()))
    # an applet whose link in /bin, /sbin, /usr/bin or /usr/sbin is gone is gone for users
    linked = host.run("for a in %s; do for d in /bin /sbin /usr/bin /usr/sbin; do "
                      "[ -e $d/$a ] && echo $a && break; done; done" % " ".join(applets))
    version = host.run("busybox 2>&1 | head -1").stdout.split()
    compat_probes({"applet": applets, "applet-link": sorted(set(linked.stdout.split())),
                   "runtime": {"version": version[1] if len(version) > 1 else "?"}})
