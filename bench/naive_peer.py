"""The naive peer the gate is measured against: testinfra running dpkg-query, find and
sha256sum inside a started container, then DeepDiff of the resulting dicts against the
baseline's dicts (the approach of ad-hoc image checks)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import testinfra
from deepdiff import DeepDiff


def collect(tag: str) -> dict[str, Any]:
    """Packages, file metadata and file hashes of an image, read inside a container."""
    cid = subprocess.run(["docker", "run", "-d", "--network", "none", "--entrypoint", "sleep", tag,
                          "3600"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        host = testinfra.get_host(f"docker://{cid}")
        packages = {}
        for line in host.check_output("dpkg-query -W -f '${Package} ${Version} ${Architecture}\\n'").splitlines():
            name, version, arch = line.split(" ")
            packages[f"{name}:{arch}"] = version
        files = {}
        listing = host.run("find / -xdev -path /proc -prune -o -printf '%p\\t%y\\t%m\\t%U\\t%G\\t%s\\t%l\\n'").stdout
        for line in listing.splitlines():
            parts = line.split("\t")
            if len(parts) == 7:
                files[parts[0]] = {"type": parts[1], "mode": parts[2], "uid": parts[3],
                                   "gid": parts[4], "size": parts[5], "target": parts[6]}
        hashes = host.run("find / -xdev -path /proc -prune -o -type f -print0 | xargs -0 sha256sum").stdout
        for line in hashes.splitlines():
            digest, _, path = line.partition("  ")
            if path in files:
                files[path]["sha256"] = digest
        return {"packages": packages, "files": files}
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def gate(baseline: dict[str, Any], tag: str) -> tuple[float, int]:
    """Time the peer's workflow on a candidate: collect, then DeepDiff against the baseline."""
    start = time.perf_counter()
    candidate = collect(tag)
    diff = DeepDiff(baseline, candidate, ignore_order=False)
    return time.perf_counter() - start, len(diff.get("values_changed", {})) + len(diff.get("dictionary_item_removed", []))
