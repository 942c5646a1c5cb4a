"""microdnf family: microdnf starts and rpm lists what the static snapshot read."""

from typing import Any

import pytest

from harness.gate import SnapshotStore

pytestmark = pytest.mark.family("microdnf")


def test_microdnf_help(host: Any) -> None:
    out = host.run("microdnf --help")
    assert out.rc == 0 and "Usage" in out.stdout + out.stderr


def test_rpm_agrees_with_snapshot(host: Any, compat_store: SnapshotStore, _harness_image: Any) -> None:
    snap = compat_store.snapshot(compat_store.resolve(_harness_image))
    out = host.run("rpm -qa --qf '%{NAME}.%{ARCH}\\n'")
    assert out.rc == 0, out.stderr
    static = sum(1 for p in snap.packages.values() if p["manager"] == "rpm")
    assert len(set(out.stdout.split())) == static
