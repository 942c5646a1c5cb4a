"""minimal family: the package tools users call stay, and each agrees with the static snapshot
(`rpm -qa`, `dpkg-query -W` list what the snapshot read from the database files)."""

from collections import Counter
from typing import Any, Callable

import pytest

from harness.gate import SnapshotStore

pytestmark = pytest.mark.family("minimal")

#: package tools a user of a minimal image calls; one that goes away breaks their Dockerfiles
TOOLS = ("rpm", "microdnf", "dnf", "yum", "dpkg", "dpkg-query", "apt-get", "apt")
#: manager -> (tool, query printing one `name:arch` line per installed package header)
QUERIES = {
    "rpm": ("rpm", "rpm -qa --qf '%{NAME}:%{ARCH}\\n'"),
    "dpkg": ("dpkg-query", "dpkg-query -W -f '${db:Status-Status} ${Package}:${Architecture}\\n'"),
}
#: dpkg states in which the static reader counts a package as present
_DPKG_PRESENT = {"installed", "unpacked", "half-configured", "triggers-awaited", "triggers-pending"}


def present_tools(host: Any, tools: tuple[str, ...]) -> list[str]:
    """The tools found on the image's PATH, in one `docker exec`."""
    out = host.run("for t in %s; do command -v $t >/dev/null 2>&1 && echo $t; done" % " ".join(tools))
    return out.stdout.split()


def listed_packages(manager: str, output: str) -> Counter[str]:
    """`name:arch` -> how many headers the tool listed (rpm's `(none)` arch is the reader's '')."""
    keys: Counter[str] = Counter()
    for line in output.splitlines():
        if manager == "dpkg":
            status, _, line = line.partition(" ")
            if status not in _DPKG_PRESENT:
                continue
        name, _, arch = line.strip().partition(":")
        if name:
            keys[f"{name}:{'' if arch == '(none)' else arch}"] += 1
    return keys


def static_packages(packages: dict[str, dict[str, Any]], manager: str) -> Counter[str]:
    """The same count from the static snapshot (a record stands for every version of its
    `name:arch`: signing keys, install-only packages)."""
    return Counter({key: 1 + len(p.get("other_evrs") or ()) for key, p in packages.items()
                    if p["manager"] == manager})


def disagreement(manager: str, listed: Counter[str], static: Counter[str]) -> str:
    """A review-style message: what the tool and the snapshot disagree on (bounded)."""
    only_tool = sorted((listed - static).elements())
    only_static = sorted((static - listed).elements())
    lines = [f"{manager} lists {sum(listed.values())} package headers, the static snapshot read "
             f"{sum(static.values())} from the database files"]
    for label, items in (("only in the tool's list", only_tool),
                         ("only in the snapshot", only_static)):
        if items:
            lines.append(f"  {label}: {', '.join(items[:20])}" + (" ..." if len(items) > 20 else ""))
    return "\n".join(lines)


def test_package_manager_agrees_with_snapshot(host: Any, compat_store: SnapshotStore,
                                              _harness_image: Any,
                                              compat_probes: Callable[..., Any]) -> None:
    tools = present_tools(host, TOOLS)
    compat_probes({"tool": tools})
    snap = compat_store.snapshot_of(_harness_image)
    managers = sorted(db["manager"] for db in snap.package_dbs if "count" in db)
    checked = []
    for manager in managers:
        tool, command = QUERIES.get(manager, ("", ""))
        if tool not in tools:
            continue
        out = host.run(command)
        assert out.rc == 0, f"`{command}` failed ({out.rc}): {out.stderr}"
        listed = listed_packages(manager, out.stdout)
        static = static_packages(snap.packages, manager)
        assert listed == static, disagreement(manager, listed, static)
        checked.append(manager)
    if not checked:
        pytest.skip(f"no package tool in the image for {managers or 'its (absent) database'}: "
                    "nothing to compare the static snapshot with")
