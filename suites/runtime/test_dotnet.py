"""rt-dotnet7.0: `dotnet --list-runtimes` (written against the documented output:
`Microsoft.NETCore.App 7.0.20 [/usr/share/dotnet/shared/Microsoft.NETCore.App]`)."""

from typing import Any, Callable

import pytest

pytestmark = pytest.mark.family("rt-dotnet7.0")


def parse_runtimes(text: str) -> dict[str, str]:
    """`NAME VERSION [PATH]` lines -> {NAME: VERSION} (the highest version of each)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("Microsoft."):
            found[parts[0]] = max(found.get(parts[0], parts[1]), parts[1])
    return found


def test_dotnet_runtimes(host: Any, compat_probes: Callable[..., Any]) -> None:
    out = host.run("dotnet --list-runtimes")
    assert out.rc == 0, out.stderr
    runtimes = parse_runtimes(out.stdout)
    assert "Microsoft.NETCore.App" in runtimes, out.stdout
    compat_probes({"runtime": {"version": runtimes["Microsoft.NETCore.App"]},
                   "framework": sorted(runtimes)})
