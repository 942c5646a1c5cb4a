"""The gate outside pytest, on the same code paths:

    python -m harness snapshot IMAGE|docker-archive:PATH|oci:PATH|oci-archive:PATH -o snap.json
    python -m harness diff BASELINE.json CANDIDATE.json [--name NAME] [--report r.md ...]
    python -m harness report REPORT.json [MORE.json ...] -o review.md|.html|.json \\
        [--expect NAME/ARCH ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

from harness.config import load_config
from harness.source.engine import Engine
from harness.errors import HarnessError
from harness.outcome.merge import merge
from harness.aspects import ASPECTS, JUDGED_AGAINST, STORED_ASPECTS
from harness.judging import aspect_error, cause_index, judged_changes, stored_records
from harness.outcome.result import AspectResult
from harness.outcome.model import build_reports
from harness.outcome.report import summary_lines, write_report
from harness.safetext import terminal
from harness.snapshot import Snapshot, baseline_header, read_snapshot
from harness.source.sources import READ_MODES, open_source


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Snapshot one image into a JSON file: an engine image, or (as the plugin takes them)
    `docker-archive:PATH`, `oci:PATH`, `oci-archive:PATH`. Exit 3, naming the file, when a
    package database cannot be read (the snapshot is still written)."""
    source = open_source(args.image, Engine.connect, args.platform, args.read)
    info = source.inspect()
    run_id = f"cli-{uuid.uuid4().hex[:12]}"
    snap = read_snapshot(info, lambda: source.rootfs(run_id), in_place=source.reads_in_place)
    snap.dump(Path(args.output))
    print(f"{args.image}: {len(snap.files)} files, {len(snap.packages)} packages -> {args.output}")
    failed = 0
    for db in snap.package_dbs:
        # paths and entries are the image's text: spelled out (safetext.terminal)
        where = terminal(db.get("location") or ", ".join(db.get("paths", [])))
        if db.get("error"):
            print(f"error: {db.get('manager')} database {where} cannot be read: "
                  f"{terminal(db['error'])}", file=sys.stderr)
            failed = 3
        elif db.get("malformed_count"):
            print(f"warning: {db.get('manager')} database {where}: {db['malformed_count']} "
                  f"entries skipped, e.g. {terminal(db['malformed'][0])}", file=sys.stderr)
    return failed


def _load(path: str) -> Snapshot:
    snap = Snapshot.load(Path(path))
    if snap is None:
        raise HarnessError(f"{path} is not a snapshot of this harness version "
                           "(make it with `python -m harness snapshot`)")
    return snap


def cmd_diff(args: argparse.Namespace) -> int:
    """Judge a candidate snapshot against a baseline snapshot as the plugin judges an image
    against its baselines (`harness.judging.judged_changes`: size change and aspect errors
    included); exit 1 on an unwaived break or an aspect that cannot be judged."""
    config = load_config(Path(args.config))
    before, after = _load(args.baseline), _load(args.candidate)
    name = args.name or str(after.image.get("ref"))
    old = {a: stored_records(before, a, config) for a in STORED_ASPECTS}
    index = cause_index(old, after, config)
    results = []
    for aspect in ASPECTS:
        result = AspectResult(name, str(after.image.get("ref")), aspect, after.arch,
                              after.image.get("image_id"), args.baseline)
        result.error = aspect_error(aspect, after)
        if not result.error:
            as_baseline = (baseline_header(before), old[JUDGED_AGAINST[aspect]])
            result.changes = judged_changes(aspect, after, config, name, as_baseline, index)
        results.append(result)
    reports = build_reports(results)
    for line in summary_lines(reports):
        print(line)
    for path in args.report:
        write_report(Path(path), reports)
    return 1 if any(r.verdict != "pass" for r in reports) else 0


def cmd_report(args: argparse.Namespace) -> int:
    """Render one JSON report (the contract) as Markdown, HTML or JSON, or merge several
    (a CI matrix) into one review; exit 1 when an expected image is missing or reported
    twice (the merged report then holds that error too)."""
    reports, problems = merge([Path(p) for p in args.report], args.expect)
    write_report(Path(args.output), reports)
    for problem in problems:
        print(f"error: {terminal(problem)}", file=sys.stderr)  # names from the reports
    worst = ("error" if any(r.verdict == "error" for r in reports) else
             "fail" if any(r.verdict == "fail" for r in reports) else "pass")
    print(f"wrote {args.output}: {len(reports)} image(s) from {len(args.report)} report(s), "
          f"verdict {worst}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m harness`."""
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("snapshot", help="snapshot an image into a JSON file")
    p.add_argument("image", help="an engine image, docker-archive:PATH, oci:PATH or "
                                 "oci-archive:PATH")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--platform", help="linux/arm64: picks from a multi-arch index or pull")
    p.add_argument("--read", choices=READ_MODES, default="export",
                   help="how an engine image's files are read (default: export, any engine)")
    p.set_defaults(func=cmd_snapshot)
    p = sub.add_parser("diff", help="judge a candidate snapshot against a baseline snapshot")
    p.add_argument("baseline")
    p.add_argument("candidate")
    p.add_argument("--name")
    p.add_argument("--config", default="pyproject.toml")
    p.add_argument("--report", action="append", default=[])
    p.set_defaults(func=cmd_diff)
    p = sub.add_parser("report", help="render JSON reports as one .md, .html or .json review")
    p.add_argument("report", nargs="+", help="JSON reports (several: a CI matrix to merge)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--expect", action="append", default=[], metavar="NAME/ARCH",
                   help="an image the matrix must report (repeat it); missing is an error")
    p.set_defaults(func=cmd_report)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (HarnessError, OSError, ValueError) as exc:
        print(f"error: {terminal(exc)}", file=sys.stderr)  # it may quote an image's text
        return 2
