"""/etc/os-release (or /usr/lib/os-release): which distribution an image says it is."""

from __future__ import annotations

import re

PATHS = ("/etc/os-release", "/usr/lib/os-release")


class OsReleaseCollector:
    """Takes the os-release file during the walk."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        #: files `wants` took notice of (harness.snapshot.walk `ContentCollector`)
        self.noticed = 0

    def wants(self, path: str, head: bytes, size: int) -> bool:
        if path in PATHS and size < 65536:
            self.noticed += 1
            return True
        return False

    def take(self, path: str, data: bytes) -> None:
        if self.fields and path != PATHS[0]:
            return  # /etc/os-release wins over the /usr/lib copy
        text = data.decode("utf-8", "replace")
        self.fields = {k: v.strip().strip('"').strip("'")
                       for k, v in re.findall(r"^([A-Z_]+)=(.*)$", text, re.M)}
