"""ABI diff and linkage closure (interface; filled in by the ABI work)."""

from __future__ import annotations

from typing import Any

from harness.config import HarnessConfig
from harness.diff.change import Change


def baseline_records(abi: dict[str, Any], config: HarnessConfig) -> dict[str, Any]:
    """What `abi.json` stores for a snapshot's ABI section."""
    return {}


def diff_abi(before: dict[str, Any], abi: dict[str, Any], config: HarnessConfig) -> list[Change]:
    """Baseline ABI records vs. a candidate's ABI section."""
    return []


def linkage_changes(abi: dict[str, Any], config: HarnessConfig) -> list[Change]:
    """needed-unresolved / symbol-unresolved of the candidate alone."""
    return []
