"""minimal / microdnf families: the package manager agrees with the static snapshot."""

from typing import Any

import pytest

from harness.gate import SnapshotStore

pytestmark = pytest.mark.family("minimal")


def test_package_manager_agrees_with_snapshot(host: Any, compat_store: SnapshotStore,
                                              _harness_image: Any) -> None:
    snap = compat_store.snapshot(compat_store.resolve(_harness_image))
    managers = {db["manager"] for db in snap.package_dbs if "count" in db}
    checked = []
    for manager, command in (("rpm", "rpm -qa --qf '%{NAME}.%{ARCH}\\n'"),
                             ("dpkg", "dpkg-query -W -f '${Package}:${Architecture}\\n'")):
        if manager not in managers or not host.exists(manager if manager == "rpm" else "dpkg-query"):
            continue
        out = host.run(command)
        assert out.rc == 0, out.stderr
        static = sum(1 for p in snap.packages.values() if p["manager"] == manager)
        listed = len(set(out.stdout.split()))
        assert listed == static, f"{manager} lists {listed} packages, the static snapshot read {static}"
        checked.append(manager)
    if not checked:
        pytest.skip(f"no package tool in the image for {sorted(managers) or 'its (absent) database'}: "
                    "nothing to compare the static snapshot with")
