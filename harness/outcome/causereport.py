"""Changes grouped under their root causes (harness.diff.causes), for every rendering: a release
upgrade's thousand breaks read as a few dozen causes, each with its verdict, why it matters,
its consequences counted by kind and the consumers in the image it breaks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.diff.change import Change
from harness.kinds import WHY

#: consequences a Markdown report lists under each cause (the JSON holds them all)
FIRST_FEW = 3


@dataclass
class CauseGroup:
    """One root cause and every change it explains (itself included, when present)."""

    aspect: str
    kind: str
    subject: str
    root: Change | None = None
    changes: list[Change] = field(default_factory=list)

    @property
    def consequences(self) -> list[Change]:
        """The changes the cause explains, besides itself."""
        return [c for c in self.changes if c is not self.root]

    def count(self, verdict: str) -> int:
        """Unwaived changes of one verdict (`waived`: the waived ones)."""
        if verdict == "waived":
            return sum(1 for c in self.changes if c.waived)
        return sum(1 for c in self.changes if c.verdict == verdict and not c.waived)

    @property
    def verdict(self) -> str:
        """The worst unwaived verdict of the cause and its consequences; `waived` when all
        its breaks and reviews are waived."""
        for verdict in ("break", "review"):
            if self.count(verdict):
                return verdict
        if any(c.waived for c in self.changes):
            return "waived"
        return "info"

    def by_kind(self, verdict: str | None = None) -> Counter[str]:
        """Consequences per kind (of one unwaived verdict, or all)."""
        return Counter(c.kind for c in self.consequences
                       if verdict is None or (c.verdict == verdict and not c.waived))

    @property
    def consumers(self) -> list[str]:
        """The objects in the image that a consequence names as broken users."""
        return sorted({c.consumer for c in self.changes
                       if c.consumer and c.verdict == "break" and c.kind != "needed-added"})

    @property
    def why(self) -> str:
        """Why the cause matters: its own kind's reason, else its most numerous break's."""
        if self.kind in WHY:
            return WHY[self.kind]
        breaks = self.by_kind("break") or self.by_kind("review")
        for kind, _ in breaks.most_common():
            if kind in WHY:
                return f"{kind}: {WHY[kind]}"
        return ""

    @property
    def waiver_reason(self) -> str | None:
        """The reason of the waiver on the cause, when one covers it."""
        if self.root is not None and self.root.waived:
            return self.root.reason
        return None

    def label(self) -> str:
        """`kind subject`, plus before -> after of the root when known."""
        return f"{self.kind} {self.subject}"


def group_causes(changes: Iterable[Change]) -> list[CauseGroup]:
    """Changes under their causes: the causes with the most unwaived breaks first, then
    reviews; every change is in exactly one group."""
    groups: dict[tuple[str, str, str], CauseGroup] = {}
    for c in changes:
        key = c.cause_key
        group = groups.get(key)
        if group is None:
            group = groups[key] = CauseGroup(*key)
        group.changes.append(c)
        if (c.aspect, c.kind, c.subject) == key and group.root is None:
            group.root = c
    rank = {v: i for i, v in enumerate(("break", "review", "waived", "info"))}
    # among equal counts the rarest kind first: 5 removed packages are not hidden behind
    # 3,000 removed files that nothing explains
    per_kind = Counter(g.kind for g in groups.values())
    return sorted(groups.values(), key=lambda g: (rank[g.verdict], -g.count("break"),
                                                  -g.count("review"), per_kind[g.kind], g.kind,
                                                  g.subject))


def headline(groups: list[CauseGroup]) -> str:
    """`N root causes -> M breaks` (unwaived), with the review-only causes counted apart."""
    breaking = [g for g in groups if g.count("break")]
    breaks = sum(g.count("break") for g in breaking)
    reviews = [g for g in groups if g.verdict == "review"]
    text = (f"{len(breaking):,} root cause{'s' if len(breaking) != 1 else ''} -> "
            f"{breaks:,} break{'s' if breaks != 1 else ''}") if breaking else "no breaks"
    if reviews:
        n = sum(g.count("review") for g in reviews)
        text += (f"; {len(reviews):,} {'more ' if breaking else ''}root "
                 f"cause{'s' if len(reviews) != 1 else ''} to review ({n:,} "
                 f"change{'s' if n != 1 else ''})")
    return text


def kinds_text(counts: Counter[str], most: int = 6) -> str:
    """`file-removed 799, symbol-removed 12, ...` (the most numerous first)."""
    parts = [f"{k} {n:,}" for k, n in counts.most_common(most)]
    if len(counts) > most:
        parts.append(f"+{len(counts) - most} kinds")
    return ", ".join(parts)


def terminal_lines(groups: list[CauseGroup], limit: int = 10) -> list[str]:
    """The terminal summary's causes: the headline, then the causes that block (bounded)."""
    if not any(g.verdict in ("break", "review") for g in groups):
        return []
    lines = [f"  {headline(groups)}"]
    blocking = [g for g in groups if g.count("break")]
    for g in blocking[:limit]:
        consumers = g.consumers
        used = f"; breaks {len(consumers)} consumer(s): {', '.join(consumers[:3])}" if consumers else ""
        if not g.consequences:
            lines.append(f"  BREAK {g.label()}{used}")
            continue
        lines.append(f"  BREAK {g.label()}: {g.count('break'):,} break(s) "
                     f"({kinds_text(g.by_kind('break'), 3)}){used}")
    if len(blocking) > limit:
        lines.append(f"  ... and {len(blocking) - limit} more root causes of breaks (see the report)")
    return lines


def markdown_table(groups: list[CauseGroup], cell: Callable[[Any, int], str],
                   name: Callable[[str], str], budget: int = 30_000) -> list[str]:
    """Every cause that holds a break, a review or a waiver, one row each, within `budget`
    characters (then a count of the causes left out): its verdict, why it matters, its
    consequences by kind and the consumers it breaks. `cell` and `name` escape
    image-controlled text as the report does."""
    shown = [g for g in groups if g.verdict != "info"]
    if not shown:
        return []
    lines = ["", f"**{headline(groups)}**", "",
             "| # | root cause | verdict | why | consequences | breaks in the image |",
             "|---:|---|---|---|---|---|"]
    for i, g in enumerate(shown, 1):
        verdict = g.verdict
        if verdict in ("break", "review"):
            verdict = f"**{verdict}** {g.count(verdict):,}"
        elif g.waiver_reason:
            verdict = f"waived: {name(g.waiver_reason)[:80]}"
        change = ""
        if g.root is not None and g.root.before is not None and g.root.after is not None:
            change = f" {cell(g.root.before, 30)} -> {cell(g.root.after, 40)}"
        elif g.root is not None and (g.root.before or g.root.after) is not None:
            change = f" {cell(g.root.before if g.root.before is not None else g.root.after, 40)}"
        consumers = g.consumers
        used = ", ".join(cell(c, 60) for c in consumers[:2])
        if len(consumers) > 2:
            used += f" +{len(consumers) - 2:,}"
        row = (f"| {i} | {name(g.kind)} {cell(g.subject, 120)}{change} | {verdict} | "
               f"{name(g.why)[:90]} | {name(kinds_text(g.by_kind(), 3))} | {used} |")
        budget -= len(row) + 1
        if budget < 0:
            rest = shown[i - 1:]
            lines += ["", f"_{len(rest):,} more root causes ({sum(g.count('break') for g in rest):,} "
                      "breaks) are in the JSON and HTML reports._"]
            break
        lines.append(row)
    info = len(groups) - len(shown)
    if info:
        lines += ["", f"{info:,} more root causes with info changes only."]
    return lines


def by_cause(changes: list[Change], first: int = FIRST_FEW) -> list[Change | tuple[str, int]]:
    """The first few changes of each cause, in the causes' order, each cause's followed by
    (its label, how many more) when some are left out (the JSON report lists them all)."""
    out: list[Change | tuple[str, int]] = []
    for g in group_causes(changes):
        out += g.changes[:first]
        if len(g.changes) > first:
            out.append((g.label(), len(g.changes) - first))
    return out
