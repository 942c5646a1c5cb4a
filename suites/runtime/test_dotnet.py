"""rt-dotnet7.0: `dotnet --list-runtimes` (written against the documented output, one line per
runtime: `Microsoft.NETCore.App 7.0.20 [/usr/share/dotnet/shared/Microsoft.NETCore.App]`)."""

import re
from typing import Any, Callable

import pytest

pytestmark = pytest.mark.family("rt-dotnet7.0")

#: no telemetry notice, no first-run writes (the root may be read-only)
ENV = "DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version.split("-")[0]))


def parse_runtimes(text: str) -> dict[str, str]:
    """`NAME VERSION [PATH]` lines -> {NAME: VERSION} (the highest version of each, by number:
    7.0.20 is newer than 7.0.9)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("Microsoft."):
            known = found.get(parts[0])
            if known is None or _version_key(parts[1]) > _version_key(known):
                found[parts[0]] = parts[1]
    return found


def test_dotnet_runtimes(host: Any, _harness_image: Any, compat_probes: Callable[..., Any]) -> None:
    if not host.exists("dotnet"):
        pytest.skip(f"dotnet not found in {_harness_image.name} (not on PATH): its "
                    ".NET runtimes cannot be listed")
    out = host.run(f"{ENV} dotnet --list-runtimes")
    assert out.rc == 0, f"dotnet --list-runtimes exits {out.rc}: {out.stderr}"
    runtimes = parse_runtimes(out.stdout)
    assert "Microsoft.NETCore.App" in runtimes, out.stdout
    compat_probes({"runtime": {"version": runtimes["Microsoft.NETCore.App"]},
                   "framework": sorted(runtimes)})
