"""ELF ABI collector (interface; filled in by the ABI work)."""

from __future__ import annotations

from typing import Any


class ElfCollector:
    """Takes every ELF object during the walk."""

    def wants(self, path: str, head: bytes, size: int) -> bool:
        return False

    def take(self, path: str, data: bytes) -> None:
        return None

    def result(self, files: dict[str, dict[str, Any]], packages: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The snapshot's `abi` section."""
        return {}
