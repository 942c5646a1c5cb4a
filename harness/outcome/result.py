"""The judged outcome of one aspect of one image: what the gate gives and the reports read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.diff.change import Change


@dataclass
class AspectResult:
    """The judged outcome of one aspect of one image."""

    name: str
    ref: str
    aspect: str
    arch: str | None
    image_id: str | None
    baseline_path: str | None
    changes: list[Change] = field(default_factory=list)
    error: str | None = None
    missing_baseline: bool = False
    updated: bool | None = None

    @property
    def verdict(self) -> str:
        """`error` when it could not be judged, `fail` on an unwaived break, else `pass`."""
        if self.error:
            return "error"
        if self.missing_baseline or any(c.blocking for c in self.changes):
            return "fail"
        return "pass"

    def to_dict(self) -> dict[str, Any]:
        """Plain data, to travel between xdist workers and the controller."""
        return {"name": self.name, "ref": self.ref, "aspect": self.aspect, "arch": self.arch,
                "image_id": self.image_id, "baseline_path": self.baseline_path,
                "changes": [c.to_dict() for c in self.changes], "error": self.error,
                "missing_baseline": self.missing_baseline, "updated": self.updated}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AspectResult:
        """Inverse of `to_dict`."""
        data = dict(data)
        data["changes"] = [Change(**c) for c in data["changes"]]
        return cls(**data)
