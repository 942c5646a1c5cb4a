"""Failure messages that read like a review: what changed, why it breaks users, how to accept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.outcome.result import AspectResult
from harness.kinds import WHY
from harness.safetext import terminal

MAX_LISTED = 25


def _short(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return terminal(text if len(text) <= 60 else text[:57] + "...")


def _toml(text: str) -> str:
    """A TOML basic string of any text (JSON's escapes are TOML's), terminal-safe."""
    return terminal(json.dumps(text, ensure_ascii=True))


def failure_message(result: AspectResult, baselines: Path) -> str:
    """The text pytest shows for a failing aspect test (every value from the image or its
    baseline made terminal-safe: `harness.safetext.terminal`)."""
    t = terminal
    head = f"{t(result.name)} [{t(result.arch or '?')}] {t(result.aspect)}"
    update = (f"pytest --image {t(result.name)}={t(result.ref)} --baselines={t(baselines)} "
              "--update-baselines")
    if result.error:
        return f"{head}: cannot be judged: {t(result.error)}"
    lines: list[str] = []
    if result.missing_baseline:
        lines += [f"{head}: no baseline at {t(result.baseline_path)}",
                  "Create it from this image (then review and commit it):", f"    {update}"]
    breaks = [c for c in result.changes if c.blocking]
    if breaks:
        others = len(result.changes) - len(breaks)
        lines.append(f"{head}: {len(breaks)} unwaived break(s) against "
                     f"{t(result.baseline_path or 'the candidate alone')} ({others} other change(s))")
        for c in breaks[:MAX_LISTED]:
            where = f" in {t(c.consumer)}" if c.consumer else ""
            lines.append(f"  {t(c.kind):<24} {t(c.subject)}{where}: {_short(c.before)} -> "
                         f"{_short(c.after)}" + (f"  [{t(c.reason)}]" if c.reason else ""))
        if len(breaks) > MAX_LISTED:
            lines.append(f"  ... and {len(breaks) - MAX_LISTED} more (see --compat-report)")
        kinds = sorted({c.kind for c in breaks})
        lines.append("Why it breaks users:")
        lines += [f"  {k}: {WHY[k]}" for k in kinds if k in WHY]
        first = breaks[0]
        kind, subject = first.kind, first.subject
        if first.cause_key[1:] != (kind, subject):
            # a waiver on the root cause covers everything it explains
            _, kind, subject = first.cause_key
            lines.append(f"Root cause: {t(kind)} {t(subject)} (a waiver on it covers what it "
                         "explains)")
        lines += ["If intended, waive it with a reason in pyproject.toml:",
                  f"  [[tool.harness.waivers]]\n  image = {_toml(result.name)}\n"
                  f"  kind = {_toml(kind)}\n  subject = {_toml(subject)}\n"
                  '  reason = "..."',
                  f"or accept this release as the new baseline:\n    {update}"]
    return "\n".join(lines)
