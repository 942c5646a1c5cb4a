"""The report model: every aspect result of an image merged, and the spelling of its values,
which the JSON, Markdown, terminal and HTML renderings share."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import safetext
from harness.diff.change import Change
from harness.outcome.result import AspectResult


@dataclass
class ImageReport:
    """Every aspect result of one image, merged."""

    name: str
    ref: str
    arch: str | None = None
    image_id: str | None = None
    baseline: str | None = None
    aspects: dict[str, AspectResult] = field(default_factory=dict)

    @property
    def changes(self) -> list[Change]:
        """All changes of the image, breaks first."""
        out = [c for r in self.aspects.values() for c in r.changes]
        return sorted(out, key=Change.sort_key)

    @property
    def errors(self) -> list[str]:
        """One line per aspect that could not be judged."""
        return [f"{a}: {r.error}" for a, r in sorted(self.aspects.items()) if r.error]

    @property
    def verdict(self) -> str:
        """`error` beats `fail` beats `pass`; an error is never a pass."""
        verdicts = {r.verdict for r in self.aspects.values()}
        if "error" in verdicts:
            return "error"
        return "fail" if "fail" in verdicts else "pass"

    def counts(self) -> Counter[str]:
        """Changes per verdict, waived ones counted apart."""
        return Counter("waived" if c.waived else c.verdict for c in self.changes)


def build_reports(results: Iterable[AspectResult]) -> list[ImageReport]:
    """Group aspect results by image name, in the order images first appear."""
    images: dict[str, ImageReport] = {}
    for r in results:
        rep = images.setdefault(r.name, ImageReport(r.name, r.ref))
        rep.arch = rep.arch or r.arch
        rep.image_id = rep.image_id or r.image_id
        if r.baseline_path and not rep.baseline:
            rep.baseline = str(Path(r.baseline_path).parent)
        earlier = rep.aspects.get(r.aspect)
        # two results of one aspect (a family's probes from two tests): the worse one stands
        if earlier is None or _RANK[r.verdict] >= _RANK[earlier.verdict]:
            rep.aspects[r.aspect] = r
    return list(images.values())


_RANK = {"pass": 0, "fail": 1, "error": 2}


#: the terminal-safe spelling of image text
visible = safetext.terminal


_DIGEST = re.compile(r"^[0-9a-f]{40,}$")
#: where a change may list the objects that use what it removed (shown apart, not inline)
CONSUMER_KEYS = ("consumers", "used_by", "users")


def brief(value: Any) -> str:
    """A before/after value as one readable line: dicts as `key: value`, digests shortened."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:12] + "…" if _DIGEST.match(value) else value
    if isinstance(value, dict):
        return ", ".join(f"{k}: {brief(v)}" for k, v in value.items()
                         if v is not None and k not in CONSUMER_KEYS)
    if isinstance(value, (list, tuple)):
        return ", ".join(brief(v) for v in value)
    return json.dumps(value)
