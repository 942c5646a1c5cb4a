"""Image-controlled text cannot restyle what the gate shows: in the Markdown report (parsed
here by markdown-it-py, a CommonMark/GFM parser) a hostile architecture, subject, value or
name adds no table row, heading, link or raw HTML; in the HTML report it is text; on the
terminal (the summary, pytest's failure messages) escape sequences, OSC 8 links, `\\r` and
bidi overrides are spelled out. End to end: an image whose file names carry them."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from harness.diff.change import Change
from harness.outcome.result import AspectResult
from harness.outcome.html import to_html
from harness.outcome.model import build_reports
from harness.outcome.report import summary_lines, to_markdown
from harness.outcome.messages import failure_message
from testimages import layered

EVIL = ["x86_64 | 1 | 2 |\n| forged | row |", "# Forged heading", "<img src=x onerror=alert(1)>",
        "[click](http://evil.example)", "\x1b[2J\x1b]0;title\x07", "\x1b]8;;http://evil\x1b\\link",
        "ok\rFORGED", "\u202eexe.txt", "\u2066isolate\u2069", "*bold* _em_ `code`"]
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _results(texts: list[str] = EVIL) -> list[AspectResult]:
    changes = [Change("security", "setuid-added", text, text, text, verdict="break",
                      consumer=text, reason=text) for text in texts]
    return [AspectResult("img", "ref", "security", texts[0], "sha256:1", "/b/img", changes),
            AspectResult("img", "ref", "files", texts[0], "sha256:1", "/b/img",
                         error="\n".join(texts))]


def _structure(text: str) -> tuple[list[str], int, set[str], int]:
    """Headings, table rows, token kinds and bold spans of a Markdown text, as a GFM
    parser reads them."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    rows = sum(t.type == "tr_open" for t in tokens)
    inner = [c for t in tokens for c in t.children or []]
    kinds = {t.type for t in tokens} | {c.type for c in inner}
    return headings, rows, kinds, sum(c.type == "strong_open" for c in inner)


def test_markdown_structure_survives() -> None:
    text = to_markdown(build_reports(_results()))
    # the same report of harmless names: the hostile one must have exactly its structure
    plain = to_markdown(build_reports(_results([f"name{i}" for i in range(len(EVIL))])))
    headings, rows, kinds, strong = _structure(text)
    assert headings == ["Compatibility gate", "img: error", "Details", "img: breaks (10)"], headings
    assert (headings, rows, strong) == _structure(plain)[0:2] + _structure(plain)[3:]
    # the summary (head + 1), the cause table (head + 10), the kind table (head + 1), the
    # breaks table (head + its rows): more than the hostile values could forge
    assert rows >= 2 + 11 + 2 + 11, rows
    assert not kinds & {"html_block", "html_inline", "link_open", "em_open"}, kinds
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<img" not in html and "<a " not in html
    assert not RAW.search(text)


def test_terminal_output_spells_out_controls() -> None:
    results = _results()
    lines = list(summary_lines(build_reports(results)))
    messages = [failure_message(r, Path("/b")) for r in results]
    for text in [*lines, *messages]:
        assert not RAW.search(text), repr(text)
    joined = "\n".join([*lines, *messages])
    for spelled in ("\\x1b[2J", "\\x1b]8;;http://evil", "ok\\rFORGED", "\\u202eexe.txt",
                    "\\u2066isolate\\u2069"):
        assert spelled in joined, spelled
    assert all("\n" not in line for line in lines)


def test_a_failure_message_spells_out_its_root_cause() -> None:
    """The `Root cause:` line names a cause an image chose (a package or path name)."""
    evil_package = "libfoo\x1b]0;owned\x07\u202e"
    change = Change("files", "file-removed", "/usr/lib/libfoo.so.1", verdict="break",
                    cause={"aspect": "packages", "kind": "package-removed\x1b[2J",
                           "subject": evil_package})
    result = AspectResult("img", "ref", "files", "x86_64", "sha256:1", "/b/img", [change])
    message = failure_message(result, Path("/b"))
    assert "Root cause: " in message
    assert not RAW.search(message), repr(message)
    assert "libfoo\\x1b]0;owned\\x07\\u202e" in message
    assert "package-removed\\x1b[2J" in message


def test_html_keeps_values_as_text() -> None:
    text = to_html(build_reports(_results()))
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert not RAW.search(text)


def _tar(entries: list[tuple[str, bytes, int]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_hostile_file_names_end_to_end(run_gate: Any, tmp_path: Path) -> None:
    base = [("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)]
    names = ["usr/bin/\x1b]8;;http://evil\x1b\\su\x1b]8;;\x1b\\", "usr/bin/ok\rFORGED",
             "usr/bin/\u202egpj.sh", "usr/bin/a | b |\n| c"]
    cand = base + [(n, b"x", 0o4755) for n in names]
    old = layered.docker_archive(tmp_path / "old.tar", [_tar(base)], "x/old:1")
    new = layered.docker_archive(tmp_path / "new.tar", [_tar(cand)], "x/new:1")
    b = tmp_path / "b"
    run_gate({"img": f"docker-archive:{old}"}, "--update-baselines", baselines=b)
    md = tmp_path / "r.md"
    gate = run_gate({"img": f"docker-archive:{new}"}, f"--compat-report={md}", baselines=b)
    out = gate.result.stdout.str() + gate.result.stderr.str()
    assert gate.result.ret == 1
    assert "\\x1b]8;;http:/evil" in out and "ok\\rFORGED" in out and "\\u202egpj.sh" in out
    assert not RAW.search(out), [line for line in out.splitlines() if RAW.search(line)]
    tokens = MarkdownIt("commonmark").enable("table").parse(md.read_text())
    breaks = [c for c in gate.image("img")["changes"] if c["kind"] == "setuid-added"]
    assert len(breaks) == len(names)
    rows = [t for t in tokens if t.type == "tr_open"]
    # summary, root causes, kind table (file-added and setuid-added), breaks table
    changes = gate.image("img")["changes"]
    kinds = {(c["aspect"], c["kind"]) for c in changes}
    detail = [c for c in changes if c["verdict"] in ("break", "review") or c["waived"]]
    causes = {(c["cause"]["aspect"], c["cause"]["kind"], c["cause"]["subject"]) for c in detail}
    sections = {("break" if c["verdict"] == "break" else "review") for c in detail}
    assert len(rows) == (2 + (1 + len(causes)) + (1 + len(kinds)) + len(sections)
                         + len(detail)), len(rows)
    assert not RAW.search(md.read_text())
