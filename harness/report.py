"""Outcome: the report model (per image, per aspect) and its renderings.

The model yields lines; the plugin prints them. JSON is the contract of compat-rules.md;
Markdown is for pull-request comments and is kept under GitHub's 65,536-character limit.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.diff.change import VERDICTS, Change
from harness.gate import AspectResult

REPORT_SCHEMA = 1
MARKDOWN_LIMIT = 65_536


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
        rep.aspects[r.aspect] = r
    return list(images.values())


def to_json(reports: list[ImageReport]) -> dict[str, Any]:
    """The JSON report contract (compat-rules.md)."""
    return {"schema": REPORT_SCHEMA, "images": [{
        "name": rep.name, "ref": rep.ref, "image_id": rep.image_id, "arch": rep.arch,
        "baseline": rep.baseline, "verdict": rep.verdict,
        "errors": rep.errors,
        "missing_baselines": sorted(a for a, r in rep.aspects.items() if r.missing_baseline),
        "changes": [c.to_dict() for c in rep.changes],
    } for rep in reports]}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = text.replace("|", "\\|").replace("\n", " ").replace("`", "'")
    return text if len(text) <= 80 else text[:77] + "..."


def to_markdown(reports: list[ImageReport], limit: int = MARKDOWN_LIMIT) -> str:
    """Summary table, then the breaks of each image; cut to `limit` with a note of the cut."""
    head = ["# Compatibility gate", "",
            "| image | arch | verdict | break | review | info | waived |",
            "|---|---|---|---:|---:|---:|---:|"]
    for rep in reports:
        n = rep.counts()
        head.append(f"| {rep.name} | {rep.arch or '?'} | **{rep.verdict}** | {n['break']} | "
                    f"{n['review']} | {n['info']} | {n['waived']} |")
    body: list[str] = []
    for rep in reports:
        body += ["", f"## {rep.name}: {rep.verdict}", ""]
        body += [f"- error: {_cell(e)}" for e in rep.errors]
        missing = sorted(a for a, r in rep.aspects.items() if r.missing_baseline)
        if missing:
            body.append(f"- no baseline for: {', '.join(missing)}")
        kinds = Counter((c.verdict, c.kind) for c in rep.changes if not c.waived)
        if kinds:
            body += ["", "| verdict | kind | count |", "|---|---|---:|"]
            body += [f"| {v} | {k} | {n} |" for (v, k), n in
                     sorted(kinds.items(), key=lambda i: (VERDICTS.index(i[0][0]), i[0][1]))]
        shown = [c for c in rep.changes if c.verdict in ("break", "review") or c.waived]
        if shown:
            body += ["", "| verdict | kind | subject | before | after | note |", "|---|---|---|---|---|---|"]
            for c in shown:
                note = (f"waived: {c.reason}" if c.waived else (c.reason or "")) + \
                    (f" (consumer {c.consumer})" if c.consumer else "")
                body.append(f"| {c.verdict} | {c.kind} | `{_cell(c.subject)}` | {_cell(c.before)} | "
                            f"{_cell(c.after)} | {_cell(note)} |")
    text = "\n".join(head)
    kept = 0
    for line in body:
        if len(text) + len(line) + 200 > limit:
            break
        text += "\n" + line
        kept += 1
    if kept < len(body):
        text += (f"\n\n_Cut to stay under {limit} characters: {len(body) - kept} more lines; "
                 "the JSON or HTML report has every change._")
    return text + "\n"


def write_report(path: Path, reports: list[ImageReport]) -> None:
    """Write one report file; the format follows the extension (.json, .md)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        text = json.dumps(to_json(reports), indent=1, sort_keys=False, ensure_ascii=True) + "\n"
    elif path.suffix == ".md":
        text = to_markdown(reports)
    elif path.suffix in (".html", ".htm"):
        from harness.html import to_html
        text = to_html(reports)
    else:
        raise ValueError(f"unknown report format {path.suffix!r} (use .json, .md or .html)")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def summary_lines(reports: list[ImageReport]) -> Iterator[str]:
    """Terminal summary: one line per image, then its breaks (bounded)."""
    for rep in reports:
        n = rep.counts()
        yield (f"{rep.name} [{rep.arch or '?'}] {rep.verdict.upper()}: {n['break']} break, "
               f"{n['review']} review, {n['info']} info, {n['waived']} waived")
        for err in rep.errors:
            yield f"  error: {err}"
        missing = sorted(a for a, r in rep.aspects.items() if r.missing_baseline)
        if missing:
            yield f"  no baseline for: {', '.join(missing)} (create with --update-baselines)"
        breaks = [c for c in rep.changes if c.blocking]
        for c in breaks[:10]:
            yield f"  BREAK {c.kind} {c.subject}" + (f" (consumer {c.consumer})" if c.consumer else "")
        if len(breaks) > 10:
            yield f"  ... and {len(breaks) - 10} more breaks (see the report)"
