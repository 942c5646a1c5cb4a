"""Renderings of the report model (harness.outcome.model): JSON, Markdown, terminal lines.

The model yields lines; the plugin prints them. JSON is the contract of docs/compat-rules.md;
Markdown is for pull-request comments and is kept under GitHub's 65,536-character limit.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import safepath, safetext
from harness.diff.change import Change
from harness.outcome.causereport import by_cause, group_causes, markdown_table, terminal_lines
from harness.outcome.model import CONSUMER_KEYS, ImageReport, brief, build_reports, visible

REPORT_SCHEMA = 1
MARKDOWN_LIMIT = 65_536


def to_json(reports: list[ImageReport]) -> dict[str, Any]:
    """The JSON report contract (docs/compat-rules.md)."""
    return {"schema": REPORT_SCHEMA, "images": [{
        "name": rep.name, "ref": rep.ref, "image_id": rep.image_id, "arch": rep.arch,
        "baseline": rep.baseline, "verdict": rep.verdict,
        "errors": rep.errors,
        "missing_baselines": sorted(a for a, r in rep.aspects.items() if r.missing_baseline),
        "changes": [c.to_dict() for c in rep.changes],
    } for rep in reports]}


def _cell(value: Any, width: int = 80) -> str:
    """A table cell's code span: whatever the image's names hold stays literal text (no link,
    no HTML, no broken table), bounded to `width` characters."""
    text = visible(brief(value))
    if not text:
        return ""
    text = text if len(text) <= width else text[:width - 3] + "..."
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def _md_name(text: str) -> str:
    return safetext.markdown(text)


#: detail tables in the order they survive a cut: what blocks first, then what was waived
_DETAIL_ORDER = (("break", "breaks"), ("waived", "waived"), ("review", "review"))


def _detail_group(c: Change) -> str | None:
    if c.waived:
        return "waived"
    return c.verdict if c.verdict in ("break", "review") else None


def _kind_table(changes: list[Change]) -> list[str]:
    """Per aspect and kind: the count of each verdict (waived apart). Never cut."""
    per: dict[tuple[str, str], Counter[str]] = {}
    for c in changes:
        per.setdefault((c.aspect, c.kind), Counter())["waived" if c.waived else c.verdict] += 1
    order = sorted(per, key=lambda k: (-per[k]["break"], -per[k]["review"], k))
    lines = ["| aspect | kind | break | review | info | waived |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {_md_name(a)} | {_md_name(k)} | {per[a, k]['break']} | {per[a, k]['review']} | "
              f"{per[a, k]['info']} | {per[a, k]['waived']} |" for a, k in order]
    return lines


def _detail_row(c: Change) -> str:
    note = f"waived: {c.reason}" if c.waived else (c.reason or "")
    consumer = f" {_cell(c.consumer)}" if c.consumer else ""
    return (f"| {_md_name(c.kind)} | {_cell(c.subject, 120)} | {_cell(c.before)} | "
            f"{_cell(c.after)} | {_md_name(note)[:120]}{consumer} |")


def to_markdown(reports: list[ImageReport], limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: every count first (summary, then per image a table of each
    kind's counts: these always survive), then the detail rows of breaks, waivers and
    reviews, cut to stay under `limit` characters with a note of what the cut left out."""
    changes = {id(rep): rep.changes for rep in reports}  # the model sorts on every access
    head = ["# Compatibility gate", "",
            "| image | arch | verdict | break | review | info | waived |",
            "|---|---|---|---:|---:|---:|---:|"]
    for rep in reports:
        n = Counter("waived" if c.waived else c.verdict for c in changes[id(rep)])
        head.append(f"| {_md_name(rep.name)} | {_md_name(rep.arch or '?')} | **{rep.verdict}** | "
                    f"{n['break']} | {n['review']} | {n['info']} | {n['waived']} |")
    blocks: list[list[str]] = []
    for rep in reports:
        block = ["", f"## {_md_name(rep.name)}: {rep.verdict}"]
        bullets = [f"- error: {_cell(e, 300)}" for e in rep.errors]
        missing = sorted(a for a, r in rep.aspects.items() if r.missing_baseline)
        if missing:
            bullets.append(f"- no baseline for: {', '.join(missing)} (create with --update-baselines)")
        if bullets:
            block += ["", *bullets]
        if changes[id(rep)]:
            block += markdown_table(group_causes(changes[id(rep)]), _cell, _md_name,
                                    limit // (2 * len(reports)))
            block += ["", *_kind_table(changes[id(rep)])]
        blocks.append(block)
    sections: list[_Section] = []
    for group, title in _DETAIL_ORDER:
        for rep in reports:
            picked = [c for c in changes[id(rep)] if _detail_group(c) == group]
            # under each root cause its first few consequences: the causes all show before
            # a cut takes rows, and 1,000 removed files of one package are one line
            rows = [(c.kind, _detail_row(c)) if isinstance(c, Change) else
                    ("...", f"| ... | {c[1]:,} more of {_md_name(c[0])} | | | in the JSON report |")
                    for c in by_cause(picked)]
            if picked:
                sections.append(_Section(rep.name, title, rows, total=len(picked)))
    return _fit(head, blocks, sections, limit)


@dataclass
class _Section:
    """One detail table of the Markdown report: an image's rows of one verdict group."""

    image: str
    title: str
    rows: list[tuple[str, str]]
    cut: Counter[str] = field(default_factory=Counter)
    #: the changes of the table (rows hold the first few of each cause)
    total: int = 0

    def heading(self) -> str:
        count = self.total or len(self.rows)
        return "\n".join(["", f"### {_md_name(self.image)}: {self.title} ({count:,})", "",
                          "| kind | subject | before | after | note |", "|---|---|---|---|---|"])

    def note(self) -> str:
        kinds = ", ".join(f"{_md_name(k)} {n:,}" for k, n in self.cut.most_common(5))
        more = ", ..." if len(self.cut) > 5 else ""
        return f"{sum(self.cut.values()):,} {self.title} of {_md_name(self.image)} ({kinds}{more})"


def _cut_note(limit: int, sections: list[_Section], images_cut: int) -> str:
    cut = [s for s in sections if s.cut]
    total = sum(len(s.rows) for s in sections)
    text = f"_Cut to stay under {limit:,} characters:"
    if images_cut:
        text += f" the count tables of the last {images_cut:,} images;"
    if cut:
        parts = "; ".join(s.note() for s in cut[:20])
        more = f"; and {len(cut) - 20} more tables" if len(cut) > 20 else ""
        text += (f" {sum(sum(s.cut.values()) for s in cut):,} of {total:,} detail rows not shown "
                 f"({parts}{more}).")
    return text + " The counts above are complete; the JSON or HTML report has every change._"


def _fit(head: list[str], blocks: list[list[str]], sections: list[_Section], limit: int) -> str:
    """Join the parts: the count blocks whole, then as many detail rows as fit, then a note
    of what was cut, all under `limit` characters."""
    for section in sections:  # the longest note the cut can need: fewer cut rows shorten it
        section.cut = Counter(kind for kind, _ in section.rows)
    reserve = len(_cut_note(limit, sections, len(blocks))) + 4
    for section in sections:
        section.cut = Counter()
    out = ["\n".join(head)]
    size = len(out[0])

    def fits(part: str) -> bool:
        return size + 1 + len(part) + reserve < limit

    images_cut = 0
    for i, block in enumerate(blocks):
        part = "\n".join(block)
        if not fits(part):
            images_cut = len(blocks) - i
            break
        out.append(part)
        size += 1 + len(part)
    if sections and not images_cut:
        out.append("\n## Details")
        size += 12
    for section in sections:
        heading = section.heading()
        if images_cut or not fits(heading + "\n" + section.rows[0][1]):
            section.cut.update(kind for kind, _ in section.rows)
            continue
        out.append(heading)
        size += 1 + len(heading)
        for j, (_, row) in enumerate(section.rows):
            if not fits(row):
                section.cut.update(kind for kind, _ in section.rows[j:])
                break
            out.append(row)
            size += 1 + len(row)
    if images_cut or any(s.cut for s in sections):
        out.append("\n" + _cut_note(limit, sections, images_cut))
    return "\n".join(out) + "\n"


def write_report(path: Path, reports: list[ImageReport]) -> None:
    """Write one report file; the format follows the extension (.json, .md, .html)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        text = json.dumps(to_json(reports), indent=1, sort_keys=False, ensure_ascii=True) + "\n"
    elif path.suffix == ".md":
        text = to_markdown(reports)
    elif path.suffix in (".html", ".htm"):
        from harness.outcome.html import to_html
        text = to_html(reports)
    else:
        raise ValueError(f"unknown report format {path.suffix!r} (use .json, .md or .html)")
    safepath.replace_file(path, text.encode("utf-8"))


def summary_lines(reports: list[ImageReport]) -> Iterator[str]:
    """Terminal summary: one line per image, then its breaks (bounded)."""
    for rep in reports:
        n = rep.counts()
        yield (f"{visible(rep.name)} [{visible(rep.arch or '?')}] {rep.verdict.upper()}: {n['break']} break, "
               f"{n['review']} review, {n['info']} info, {n['waived']} waived")
        for err in rep.errors:
            yield f"  error: {visible(err)}"
        missing = sorted(a for a, r in rep.aspects.items() if r.missing_baseline)
        if missing:
            yield f"  no baseline for: {', '.join(missing)} (create with --update-baselines)"
        yield from (safetext.terminal(line) for line in terminal_lines(group_causes(rep.changes)))
