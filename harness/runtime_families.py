"""Which runtime suites apply to an image: its families (the seed's: minimal, microdnf, init,
busybox, rt-python3.11, rt-java17, rt-nodejs18, rt-php8.2, rt-dotnet7.0, rt-static), detected
from a snapshot's files, labels and config when `[tool.harness.images.NAME]` names none; and
the shell the runtime probes run through."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.paths import real_path

FAMILIES = ("minimal", "microdnf", "init", "busybox", "rt-python3.11", "rt-java17",
            "rt-nodejs18", "rt-php8.2", "rt-dotnet7.0", "rt-static")

_SHELLS = ("/bin/sh", "/usr/bin/sh")


def _exists(files: Mapping[str, dict[str, Any]], path: str) -> bool:
    """A path exists, following the image's symlinks (merged /usr included)."""
    return real_path(files, path) is not None


def shell_of(files: Mapping[str, dict[str, Any]]) -> str | None:
    """The image's POSIX shell, if it has one."""
    return next((s for s in _SHELLS if _exists(files, s)), None)


def detect(files: Mapping[str, dict[str, Any]], metadata: dict[str, Any],
           has_package_db: bool) -> tuple[str, ...]:
    """Families an image belongs to, from its files, labels and config."""
    found: list[str] = []
    label = str(metadata.get("Labels.org.opencontainers.image.title", ""))
    for family in FAMILIES:
        if family in label:
            found.append(family)
    paths = files.keys()
    if _exists(files, "/usr/bin/python3.11") or _exists(files, "/usr/local/bin/python3.11"):
        found.append("rt-python3.11")
    if any(re.match(r"/usr/lib/jvm/[^/]*17[^/]*/bin/java$", p) for p in paths):
        found.append("rt-java17")
    if _exists(files, "/usr/bin/node") or _exists(files, "/usr/local/bin/node"):
        found.append("rt-nodejs18")
    # PHP 8.2's extension API is 20220829: Debian's /usr/lib/php/20220829, the official
    # images' no-debug-non-zts-20220829, RPM distributions' plain /usr/bin/php
    if _exists(files, "/usr/bin/php8.2") or any("20220829" in p and "/php/" in p for p in paths):
        found.append("rt-php8.2")
    if _exists(files, "/usr/bin/dotnet") or _exists(files, "/usr/share/dotnet/dotnet"):
        found.append("rt-dotnet7.0")
    if _exists(files, "/usr/bin/microdnf"):
        found.append("microdnf")
    command = [str(c) for c in (metadata.get("Entrypoint") or []) + (metadata.get("Cmd") or [])]
    runs_init = bool(command) and command[0].rsplit("/", 1)[-1] in ("init", "systemd")
    if runs_init and (_exists(files, "/lib/systemd/systemd") or _exists(files, "/usr/lib/systemd/systemd")):
        found.append("init")
    if _exists(files, "/bin/busybox"):
        found.append("busybox")
    shell = shell_of(files)
    if shell is None:
        found.append("rt-static")
    elif has_package_db and not any(f.startswith("rt-") for f in found):
        found.append("minimal")
    return tuple(dict.fromkeys(found))
