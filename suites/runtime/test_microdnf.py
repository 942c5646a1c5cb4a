"""microdnf family, written against microdnf's own `--help` (dnf-main.c: `Usage:`, then a
`Commands:` section of `  NAME    summary` lines, `  NAME - summary` in older releases):
microdnf starts, its commands stay, and `rpm -qa` lists what the static snapshot read."""

import re
from collections import Counter
from typing import Any, Callable

import pytest

from harness.gate import SnapshotStore

pytestmark = pytest.mark.family("microdnf")

_COMMAND = re.compile(r"^ {2}(\S(?:.*?\S)?)(?: {2,}| - )\S")


def parse_commands(help_text: str) -> list[str]:
    """The command names of the `Commands:` section (`module enable` is one command)."""
    commands: list[str] = []
    in_section = False
    for line in help_text.splitlines():
        if line.strip().endswith(":") and not line.startswith(" "):
            in_section = line.strip() == "Commands:"
            continue
        m = _COMMAND.match(line) if in_section else None
        if m:
            commands.append(m.group(1))
    return sorted(set(commands))


def _require(host: Any, tool: str, image: Any) -> None:
    if not host.exists(tool):
        pytest.skip(f"{tool} not found in {image.name} (not on PATH): a microdnf image without "
                    f"{tool} cannot be checked here")


def test_microdnf_help(host: Any, _harness_image: Any, compat_probes: Callable[..., Any]) -> None:
    _require(host, "microdnf", _harness_image)
    out = host.run("microdnf --help")
    text = out.stdout + out.stderr
    assert out.rc == 0 and "Usage" in text, f"microdnf --help exits {out.rc}:\n{text}"
    commands = parse_commands(text)
    assert commands, f"no `Commands:` section in microdnf --help:\n{text}"
    compat_probes({"command": commands})


def test_rpm_agrees_with_snapshot(host: Any, compat_store: SnapshotStore, _harness_image: Any) -> None:
    _require(host, "rpm", _harness_image)
    snap = compat_store.snapshot_of(_harness_image)
    out = host.run("rpm -qa --qf '%{NAME}:%{ARCH}\\n'")
    assert out.rc == 0, out.stderr
    listed = Counter(line.replace(":(none)", ":") for line in out.stdout.split())
    # a record stands for every version of its name:arch (signing keys, install-only packages)
    static = Counter({key: 1 + len(p.get("other_evrs") or ()) for key, p in snap.packages.items()
                      if p["manager"] == "rpm"})
    assert listed == static, (
        f"rpm lists {sum(listed.values())} package headers, the static snapshot read "
        f"{sum(static.values())}; only rpm: {sorted((listed - static).elements())[:20]}; "
        f"only the snapshot: {sorted((static - listed).elements())[:20]}")
