"""Memory and time of the gate on an image of many small files: peak RSS, and wall time as a
ratio to the floor `docker export <container> | cat >/dev/null` measured in the same run.
Never a timed assertion: figures to read.

    .venv/bin/python bench/many_files_bench.py [--files 1000000] [--rounds 1]

The image (testimages/many.py): a static busybox and `--files` small files in the trees of a
Node and a Python application's dependencies, one layer made by `docker import`. A baseline
is recorded first; then, per round, cold (a fresh `--compat-cache`):
- `gate`: the compat suite as users run it (`pytest suites/compat --image ...`), against the
  recorded baseline: peak RSS and its ratio to the export floor;
- `snapshot`: the snapshot alone (the image read and every aspect taken, nothing diffed or
  written), in a fresh interpreter: the same figures.
Run it under the gate's interpreter (`.venv/bin/python`, as scripts/setup installs it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import gate_bench  # noqa: E402
from gate_bench import export_floor, gate_cmd, measure  # noqa: E402
from testimages import many  # noqa: E402

#: the snapshot alone, as the gate takes it (the engine's default read), in a fresh process
_SNAPSHOT = (
    "import sys\n"
    "from harness.source.engine import Engine\n"
    "from harness.source.sources import open_source\n"
    "from harness.snapshot import take_snapshot\n"
    "source = open_source(sys.argv[1], Engine.connect, None, 'auto')\n"
    "info = source.inspect()\n"
    "with source.rootfs('bench-many') as stream:\n"
    "    snap = take_snapshot(info, stream, lambda: source.rootfs('bench-many'))\n"
    "print(len(snap.files), file=sys.stderr)\n"
)


def main() -> int:
    """Build the image, record its baseline, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter of the gate (default: the one running the bench)")
    args = parser.parse_args()
    gate_bench.PYTHON = args.python
    tag = many.build(args.files)
    figures: dict[str, list[float]] = {k: [] for k in (
        "floor", "gate_s", "gate_rss", "snapshot_s", "snapshot_rss")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        baselines = work / "baselines"
        _, record_rss, rc = measure(gate_cmd(tag, baselines, work / "c0", work / "r.json",
                                             "--update-baselines"))
        if rc != 0:
            print(f"recording the baseline failed (exit {rc})")
            return 1
        for i in range(args.rounds):
            figures["floor"].append(export_floor(tag))
            wall, rss, rc = measure(gate_cmd(tag, baselines, work / f"cache{i}", work / "r.json"))
            if rc != 0:
                print(f"the gate failed on an unchanged image (exit {rc})")
                return 1
            figures["gate_s"].append(wall)
            figures["gate_rss"].append(rss)
            wall, rss, rc = measure([args.python, "-c", _SNAPSHOT, tag])
            if rc != 0:
                print(f"the snapshot failed (exit {rc})")
                return 1
            figures["snapshot_s"].append(wall)
            figures["snapshot_rss"].append(rss)
            figures["floor"].append(export_floor(tag))
        files_json = baselines / "bench" / "x86_64" / "files.json"
        stored = files_json.stat().st_size if files_json.exists() else None
    med = {k: statistics.median(v) for k, v in figures.items()}
    print(json.dumps({
        "files": args.files, "tag": tag, "python": args.python, "rounds": args.rounds,
        "export_floor_s": round(med["floor"], 2),
        "gate_cold_s": round(med["gate_s"], 2),
        "gate_to_floor": round(med["gate_s"] / med["floor"], 2),
        "gate_peak_rss_mib": round(max(figures["gate_rss"]), 1),
        "snapshot_s": round(med["snapshot_s"], 2),
        "snapshot_to_floor": round(med["snapshot_s"] / med["floor"], 2),
        "snapshot_peak_rss_mib": round(max(figures["snapshot_rss"]), 1),
        "record_baseline_peak_rss_mib": round(record_rss, 1),
        "files_baseline_bytes": stored,
        "floor_s": " ".join(f"{x:.2f}" for x in figures["floor"]),
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
