"""The HTML report by root cause: each cause folded with its changes inside (listed once:
the verdict sections keep what no cause explains), usable at 10,000 changes in a real
headless Chromium (expand a cause, filter across causes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_html_report import (VISIBLE_ROWS, _errors, _open, _results, _type, chromium, parse,  # noqa: F401
                              synthetic_changes)

from harness.diff.change import Change
from harness.outcome.html import to_html
from harness.outcome.model import build_reports
from harness.outcome.report import write_report


def linked_changes(n: int) -> list[Change]:
    """`synthetic_changes(n)` with the causes the gate links: each file change under its
    owning package's change, each symbol change under its library's package."""
    changes = synthetic_changes(n)
    packages = {c.subject: c for c in changes if c.aspect == "packages"}
    for c in changes:
        owner = None
        for side in (c.before, c.after):
            if isinstance(side, dict) and side.get("package") in packages:
                owner = packages[side["package"]]
        if c.kind.startswith("symbol-"):
            owner = packages[f"lib{int(c.subject[len('libkeep'):].split('.')[0]) * 7}"]
        c.cause = (owner or c).self_cause()
    return changes


def _report(n: int) -> list[Any]:
    return build_reports(_results("big", linked_changes(n)))


def test_each_change_is_listed_once_under_its_cause() -> None:
    reports = _report(3_000)
    changes = reports[0].changes
    doc = parse(to_html(reports))
    big = next(s for s in doc.iter("section") if s.attrs["data-image"] == "big")
    causes = list(big.iter("details", class_="cause"))
    assert causes and not any("open" in d.attrs for d in causes), "causes start folded"
    rows = sum(1 for _ in big.iter("tr", class_="c"))
    assert rows == len(changes) + 300  # + the size table: no change listed twice
    heading = next(big.iter("h3", class_="causes")).text()
    breaking = {c.cause_key for c in changes if c.blocking}
    assert heading.startswith(f"Root causes: {len(breaking)} root causes -> "
                              f"{sum(1 for c in changes if c.blocking):,} breaks")
    lib0 = next(d for d in causes if d.attrs["data-c"] == "lib0")
    inside = [r.children[2].text() for r in lib0.iter("tr", class_="c")]  # type: ignore[union-attr]
    assert inside[0] == "lib0" and len(inside) == sum(1 for c in changes if c.cause_key[2] == "lib0")
    assert "package-removed" in next(lib0.iter("summary")).text()


def test_browser_ten_thousand_changes_by_cause(chromium: Any, tmp_path: Path) -> None:
    path = tmp_path / "causes.html"
    write_report(path, _report(10_000))
    _open(chromium, path)
    assert chromium.execute_script("return harnessReport.ready") > 0
    assert _errors(chromium) == []
    causes = chromium.execute_script("return document.querySelectorAll('details.cause').length")
    assert causes > 100
    before = chromium.execute_script(VISIBLE_ROWS)
    # expanding a cause shows its changes
    chromium.execute_script("document.querySelector('details.cause[data-c=lib50] > summary').click()")
    opened = chromium.execute_script(VISIBLE_ROWS)
    n = chromium.execute_script(
        "return document.querySelectorAll('details.cause[data-c=lib50] tr.c').length")
    assert n > 5 and opened == before + n
    # a filter narrows the rows inside the causes too, and says how many of each match
    _type(chromium, "file-00450")
    assert chromium.execute_script("return harnessReport.lastFilter.matched") == 1
    label = chromium.execute_script(
        "return Array.from(document.querySelectorAll('details.cause'))"
        ".filter(d => !d.hidden).map(d => d.querySelector('summary .n').textContent)")
    assert label == ["1 of " + label[0].split(" of ")[1]], label
    assert chromium.execute_script(VISIBLE_ROWS) == 1
    assert _errors(chromium) == []
