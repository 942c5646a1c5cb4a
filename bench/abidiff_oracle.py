"""libabigail's own test pairs as an oracle for the ABI aspect's break / no-break.

    python3 bench/abidiff_oracle.py LIBABIGAIL_DIR [--markdown OUT.md] [--manifest OUT.json]

LIBABIGAIL_DIR is a checkout (or an extract holding `tests/*.cc` and `tests/data/`) of
libabigail. Every x86_64 shared-object pair (v0, v1) named by the specs of test-abidiff-exit,
test-abidiff, test-diff-filter, test-diff-dwarf, test-diff-suppr and test-abicompat is judged
twice:

- abidiff: `abidiff v0 v1` (no options, no suppressions); bit 8 of its exit status is an
  incompatible change;
- the gate's code path: each object in a root folder (`/usr/lib/SONAME`, or its v0 file name
  when it has no soname), the root read by the snapshot's own walk and ELF collector, v0's
  records rendered and parsed as a baseline file, diffed against v1 and judged by the policy.

A disagreement where the gate passes is classified DWARF-only when abidiff on debug-stripped
copies no longer reports an incompatible change (types and layout: a symbol-level gate cannot
see them); where the gate breaks and abidiff does not, by the gate's break kinds (policy
differences, listed in the README). Nothing here is timed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testimages.abi import gate_object_pair  # noqa: E402

SUITES = ("test-abidiff-exit", "test-abidiff", "test-diff-filter", "test-diff-dwarf",
          "test-diff-suppr", "test-abicompat")
INCOMPATIBLE = 8
ABIDIFF_TIMEOUT = 600
#: the gate's deliberate differences from abidiff, by the kind that breaks (README, ABI)
POLICY = {
    "symbol-size-changed": "a data object or vtable grew (copy relocations truncate it; abidiff: a change, bit 4)",
    "runpath-changed": "RPATH/RUNPATH now names folders outside the image",
}
_SPEC_PATH = re.compile(r'"(data/[^"]+)"')


@dataclass
class Row:
    """One pair's outcome."""

    suite: str
    v0: str
    v1: str
    abidiff: int | None
    gate_break: bool
    breaks: list[str] = field(default_factory=list)
    stripped: int | None = None
    agree: bool = True
    why: str = ""


def is_x86_64_shared_object(path: Path) -> bool:
    """An ELF64 little-endian ET_DYN object for x86-64."""
    try:
        head = path.read_bytes()[:20]
    except OSError:
        return False
    return (len(head) == 20 and head[:4] == b"\x7fELF" and head[4] == 2 and head[5] == 1
            and int.from_bytes(head[16:18], "little") == 3
            and int.from_bytes(head[18:20], "little") == 62)


def spec_pairs(checkout: Path) -> list[tuple[str, str, str]]:
    """(suite, v0, v1) paths relative to the checkout: per `{...}` spec of a suite's test
    program, its first two distinct shared objects, in the order the spec names them."""
    pairs: list[tuple[str, str, str]] = []
    for suite in SUITES:
        source = checkout / "tests" / f"{suite}.cc"
        if not source.is_file():
            raise SystemExit(f"{source} not found: LIBABIGAIL_DIR must hold tests/{suite}.cc")
        text = source.read_text(errors="replace")
        for block in re.split(r"\n\s*\{", text):
            objects: list[str] = []
            for rel in _SPEC_PATH.findall(block.split("}", 1)[0]):
                path = f"tests/{rel}"
                if f"/{suite}/" in path and path not in objects and is_x86_64_shared_object(checkout / path):
                    objects.append(path)
            if len(objects) >= 2 and (suite, objects[0], objects[1]) not in pairs:
                pairs.append((suite, objects[0], objects[1]))
        # objects the specs use alone (abicompat's --weak-mode) still have their v0 on disk
        for old in sorted((checkout / "tests/data" / suite).rglob("*v0*")):
            new = old.with_name("v1".join(old.name.rsplit("v0", 1)))
            rel_old, rel_new = (str(p.relative_to(checkout)) for p in (old, new))
            if (is_x86_64_shared_object(old) and is_x86_64_shared_object(new)
                    and not any(rel_old in pair or rel_new in pair for pair in pairs)):
                pairs.append((suite, rel_old, rel_new))
    return pairs


def abidiff(old: Path, new: Path) -> int | None:
    """abidiff's exit status, None when it ran out of time."""
    try:
        proc = subprocess.run(["abidiff", str(old), str(new)], capture_output=True, timeout=ABIDIFF_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None
    return proc.returncode


def stripped_abidiff(old: Path, new: Path, work: Path) -> int | None:
    """abidiff's exit status on copies without debug information (ELF symbols only)."""
    copies = []
    for side, path in (("v0", old), ("v1", new)):
        copy = work / f"{side}-{path.name}"
        shutil.copy2(path, copy)
        subprocess.run(["strip", "--strip-debug", str(copy)], check=True, capture_output=True)
        copies.append(copy)
    return abidiff(*copies)


def judge_pair(checkout: Path, suite: str, v0: str, v1: str, work: Path) -> Row:
    old, new = checkout / v0, checkout / v1
    status = abidiff(old, new)
    breaks = gate_object_pair(old, new, work)
    row = Row(suite, v0, v1, status, bool(breaks), breaks)
    incompatible = status is not None and bool(status & INCOMPATIBLE)
    row.agree = status is not None and not status & 3 and incompatible == row.gate_break
    if row.agree:
        return row
    if status is None or status & 3:
        row.why = "abidiff error or timeout"
    elif incompatible:
        row.stripped = stripped_abidiff(old, new, work)
        dwarf_only = row.stripped is not None and not row.stripped & INCOMPATIBLE
        row.why = "DWARF-only" if dwarf_only else "unexplained: abidiff sees it in the ELF symbols"
    else:
        row.why = "policy: " + "; ".join(POLICY.get(kind, kind) for kind in sorted({b.split()[0] for b in breaks}))
    return row


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(checkout: Path, rows: list[Row], commit: str, max_bytes: int) -> dict[str, Any]:
    """What a test needs to re-judge the small pairs: provenance, licence, digests, and the
    outcomes measured here (abidiff's exit status, the gate's breaks, why they differ)."""
    pairs = []
    for r in rows:
        old, new = checkout / r.v0, checkout / r.v1
        if old.stat().st_size + new.stat().st_size > max_bytes:
            continue
        pairs.append({"suite": r.suite, "v0": r.v0, "v1": r.v1, "sha256_v0": _sha256(old),
                      "sha256_v1": _sha256(new), "abidiff_exit": r.abidiff, "gate_breaks": r.breaks,
                      "agree": r.agree, "why": r.why})
    return {"repository": "libabigail (sourceware), as mirrored on GitHub: woodard/libabigail",
            "commit": commit, "licence": "Apache-2.0 WITH LLVM-exception",
            "note": "binaries of libabigail's tests/data, copied into tests/fixtures/libabigail/ "
                    "(or read from $HARNESS_SHARED_FIXTURES/libabigail/ when set)",
            "pairs": pairs}


def markdown(rows: list[Row], commit: str) -> str:
    agree = sum(r.agree for r in rows)
    lines = [f"# abidiff as an oracle: {len(rows)} x86_64 shared-object pairs of libabigail {commit}",
             "", f"The gate agrees with abidiff's incompatible bit on {agree} of {len(rows)}.", "",
             "| suite | v0 | v1 | abidiff | stripped | gate | agree | why |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gate_text = "break: " + "; ".join(r.breaks[:3]) + (" ..." if len(r.breaks) > 3 else "") if r.breaks else "pass"
        base = f"tests/data/{r.suite}/"
        lines.append(f"| {r.suite} | {r.v0.removeprefix(base)} | {r.v1.removeprefix(base)} | {r.abidiff} | "
                     f"{'' if r.stripped is None else r.stripped} | {gate_text} | "
                     f"{'yes' if r.agree else 'no'} | {r.why} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--commit", default="", help="the libabigail commit, for the table's title")
    parser.add_argument("--manifest", type=Path,
                        help="write the pairs of at most --manifest-bytes as a test manifest")
    parser.add_argument("--manifest-bytes", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    if shutil.which("abidiff") is None:
        raise SystemExit("abidiff not found (Debian: abigail-tools)")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for suite, v0, v1 in spec_pairs(args.checkout):
            rows.append(judge_pair(args.checkout, suite, v0, v1, Path(tmp)))
            r = rows[-1]
            print(f"{'ok ' if r.agree else 'DIFF'} {suite} {Path(v0).name} -> {Path(v1).name}: "
                  f"abidiff {r.abidiff}, gate {'break' if r.gate_break else 'pass'} {r.why}", flush=True)
    agree = sum(r.agree for r in rows)
    print(f"agree: {agree}/{len(rows)}")
    if args.markdown:
        args.markdown.write_text(markdown(rows, args.commit))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    if args.manifest:
        args.manifest.write_text(json.dumps(manifest(args.checkout, rows, args.commit,
                                                     args.manifest_bytes), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
