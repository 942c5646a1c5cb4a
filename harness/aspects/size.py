"""The image's size: not an aspect with a baseline file of its own; its changes (aspect
`size`) are judged and reported with the metadata aspect, against the baseline's header."""

from __future__ import annotations

from typing import Any

from harness.aspects.aspect import kind
from harness.aspects.hidden import HIDDEN
from harness.config import HarnessConfig
from harness.diff.change import Change
from harness.snapshot import Snapshot, baseline_header

KINDS = (
    kind("size-increased", "size", "review", "pulls, storage and start-up grow with the image"),
    HIDDEN,
)


def size_changes(header: dict[str, Any], snap: Snapshot, config: HarnessConfig) -> list[Change]:
    """size-increased: info when the image grew, review/break over the configured budgets."""
    old, new = int(header.get("size") or 0), int(baseline_header(snap)["size"])
    if not old or new <= old:
        return []
    percent = 100.0 * (new - old) / old
    verdict = "info"
    if config.size_review_percent is not None and percent > config.size_review_percent:
        verdict = "review"
    if config.size_break_percent is not None and percent > config.size_break_percent:
        verdict = "break"
    return [Change("size", "size-increased", "image", old, new,
                   detail={"verdict": verdict, "percent": round(percent, 1)})]

