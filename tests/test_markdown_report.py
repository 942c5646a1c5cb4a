"""The Markdown report (pull-request comments): under GitHub's 65,536-character limit at any
size, every count kept (the summary and each image's per-kind table come first and are never
cut), detail rows cut with a note that says what is missing, and names that stay text."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from harness.diff.change import Change
from harness.outcome.result import AspectResult
from harness.outcome.model import ImageReport, build_reports
from harness.outcome.report import MARKDOWN_LIMIT, to_markdown, write_report

from test_html_report import synthetic_reports

CUT = re.compile(r"_Cut to stay under ([\d,]+) characters:(?: the count tables of the last "
                 r"([\d,]+) images;)?(?: ([\d,]+) of ([\d,]+) detail rows not shown)?")


def _report(name: str, changes: list[Change]) -> list[AspectResult]:
    aspects = sorted({"metadata", "files", "packages", "abi"} | {c.aspect for c in changes})
    return [AspectResult(name, name, a, "x86_64", "sha256:1", None,
                         [c for c in changes if c.aspect == a]) for a in aspects]


def _kind_rows(text: str, image: str) -> dict[tuple[str, str], list[int]]:
    """The per-kind count table of one image: (aspect, kind) -> [break, review, info, waived]."""
    block = text.split(f"## {image}: ", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 6 and cells[2].isdigit():
            rows[cells[0], cells[1]] = [int(c) for c in cells[2:]]
    return rows


def _expected(rep: ImageReport) -> dict[tuple[str, str], list[int]]:
    per: dict[tuple[str, str], Counter[str]] = {}
    for c in rep.changes:
        per.setdefault((c.aspect, c.kind), Counter())["waived" if c.waived else c.verdict] += 1
    return {k: [n["break"], n["review"], n["info"], n["waived"]] for k, n in per.items()}


def _detail_rows(text: str) -> int:
    details = text.split("\n## Details\n", 1)[1] if "\n## Details\n" in text else ""
    return sum(1 for line in details.splitlines() if line.startswith("| ") and not line.startswith("| kind |"))


def test_ten_thousand_changes_fit_with_every_count_and_a_note() -> None:
    reports = synthetic_reports(10_000)
    text = to_markdown(reports)
    assert len(text) < MARKDOWN_LIMIT
    for rep in reports:
        n = rep.counts()
        assert (f"| {rep.name} | x86_64 | **{rep.verdict}** | {n['break']} | {n['review']} | "
                f"{n['info']} | {n['waived']} |") in text
        if rep.changes:
            assert _kind_rows(text, rep.name) == _expected(rep)
    note = CUT.search(text)
    assert note is not None, text[-500:]
    hidden, total = (int(g.replace(",", "")) for g in note.group(3, 4))
    detail = [c for rep in reports for c in rep.changes if c.waived or c.verdict in ("break", "review")]
    assert total == len(detail)
    assert total - hidden == _detail_rows(text) > 100
    assert text.rstrip().endswith("the JSON or HTML report has every change._")


def test_breaks_of_every_image_come_before_any_review() -> None:
    noisy = [Change("files", "file-removed", f"/var/lib/x/{i:05d}", {"type": "file"}, verdict="review")
             for i in range(10_000)]
    quiet = [Change("packages", "package-removed", "libssl3", "3.0 amd64", verdict="break"),
             Change("abi", "library-removed", "libssl.so.3", {"paths": ["/usr/lib/libssl.so.3"]},
                    verdict="break")]
    text = to_markdown(build_reports([*_report("noisy", noisy), *_report("quiet", quiet)]))
    assert len(text) < MARKDOWN_LIMIT
    assert "### quiet: breaks (2)" in text
    assert "`libssl3`" in text and "`libssl.so.3`" in text
    assert text.index("### quiet: breaks") < text.index("### noisy: review")
    assert _kind_rows(text, "noisy") == {("files", "file-removed"): [0, 10_000, 0, 0]}
    assert "review of noisy (file-removed " in text


def test_rarest_kinds_are_listed_first() -> None:
    changes = [Change("files", "file-removed", f"/usr/bin/t{i:04d}", verdict="break") for i in range(3_000)]
    changes += [Change("packages", "package-removed", f"pkg{i}", "1.0 amd64", verdict="break")
                for i in range(5)]
    text = to_markdown(build_reports(_report("x", changes)))
    rows = [line for line in text.splitlines() if line.startswith("| package-removed |")]
    assert len(rows) == 5
    details = text.split("## Details", 1)[1]
    assert details.index("\n| package-removed |") < details.index("\n| file-removed |")
    assert "breaks of x (file-removed " in text


def test_small_report_is_whole() -> None:
    changes = [Change("metadata", "user-changed", "User", "", "nobody", verdict="break"),
               Change("security", "setuid-added", "/usr/bin/su", None, "4755", verdict="break",
                      waived=True, reason="allowed: REL-7"),
               Change("files", "file-added", "/etc/new", None, {"type": "file"})]
    text = to_markdown(build_reports(_report("x", changes)))
    assert "_Cut" not in text
    assert "### x: breaks (1)" in text and "### x: waived (1)" in text
    assert "| setuid-added | `/usr/bin/su` |  | `4755` | waived: allowed: REL-7 |" in text
    assert "/etc/new" not in text  # info is counted, not listed
    assert _kind_rows(text, "x")[("files", "file-added")] == [0, 0, 1, 0]


@pytest.mark.parametrize("limit", [3_000, 10_000, 30_000])
def test_any_limit_is_kept(limit: int) -> None:
    text = to_markdown(synthetic_reports(3_000), limit=limit)
    assert len(text) < limit
    assert CUT.search(text) is not None


def test_many_images_cut_count_tables_last_and_say_so() -> None:
    results = []
    for i in range(400):
        results += _report(f"img{i:03d}", [Change("files", f"kind-{k}", f"/p{k}", verdict="break")
                                           for k in range(12)])
    text = to_markdown(build_reports(results))
    assert len(text) < MARKDOWN_LIMIT
    assert all(f"| img{i:03d} | x86_64 | **fail** | 12 |" in text for i in range(400))
    note = CUT.search(text)
    assert note is not None and note.group(2) is not None
    shown = text.count("\n## img")
    assert shown + int(note.group(2).replace(",", "")) == 400


def test_hostile_names_stay_text(tmp_path: Path) -> None:
    nasty = "/srv/a|b`c\n[x](http://evil.invalid)<img src=x>\udcff\u202e"
    changes = [Change("files", "file-removed", nasty, {"type": "file"}, verdict="break",
                      consumer="/usr/bin/`|`")]
    path = tmp_path / "r.md"
    write_report(path, build_reports(_report("x", changes)))
    text = path.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| file-removed |"))
    assert row == ("| file-removed | `/srv/a\\|b'c\\n[x](http://evil.invalid)<img src=x>\\xff\\u202e` | "
                   "`type: file` |  |  `/usr/bin/'\\|'` |")
    assert len(re.findall(r"(?<!\\)\|", row)) == 6, "a name broke the table"
