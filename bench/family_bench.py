"""A release family gated in one run, against its largest member gated alone, and a rebuilt
member over an unchanged base against its own top layer's export floor: ratios measured side
by side in one run. Never a timed assertion: figures to read.

    .venv/bin/python bench/family_bench.py [--rounds 3]

The family (testimages/family.py): Debian bookworm minbase and seven images built FROM it,
each adding one layer of unpacked Debian packages (python3.11, node's libnode, php8.2, perl,
busybox, libraries, curl and openssl). Figures, all cold (a fresh `--compat-cache`), the
baselines recorded before:
- `family_to_largest`: the whole family (base and members, one pytest run) against the
  largest member alone (target: <= 2);
- `family_to_sum`: the family run against the sum of each member gated alone in runs of its own;
- `rebuilt_to_top_layer_floor`: the gate of a rebuilt member (its layer again, plus a marker
  file: a new image id over the same base) with the family's cache kept, against exporting
  only that layer (`docker save` of the image, its top layer's tar read to /dev/null);
- the export floor of the largest member, and each ratio against it;
- `startup_s`: the gate's fixed start (pytest and the plugin collecting the rebuilt member's
  tests, nothing judged): no rebuilt member can cost less, whatever its layer;
- `family_cpu_s`, `family_cores_busy`: the family run's CPU (user and system, every process
  of it) and that over its wall time: near `cores`, the run is bound by its work, not by
  waiting.
Run it under the gate's interpreter (`.venv/bin/python`, as scripts/setup installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from gate_bench import ENV, export_floor, measure, measure_cpu  # noqa: E402
from testimages import family  # noqa: E402

PYTHON = sys.executable


def gate(images: dict[str, str], baselines: Path, cache: Path, *extra: str) -> list[str]:
    """One pytest run of the compat suite over `images` (name -> ref)."""
    return [PYTHON, "-m", "pytest", str(REPO / "suites" / "compat"), "-q", "-p",
            "no:cacheprovider", "--rootdir", str(REPO),
            *(f"--image={name}={ref}" for name, ref in images.items()),
            f"--baselines={baselines}", f"--compat-cache={cache}", *extra]


def top_layer_floor(tag: str, work: Path) -> float:
    """Wall time of reading the image's top layer's tar once (from `docker save` output,
    unpacked beforehand: the floor of reading just that layer)."""
    saved = work / "saved.tar"
    subprocess.run(["docker", "save", "-o", str(saved), tag], check=True)
    with tarfile.open(saved) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    top = manifest[0]["Layers"][-1]
    subprocess.run(["tar", "-C", str(work), "-xf", str(saved), top], check=True)
    saved.unlink()
    t = time.perf_counter()
    subprocess.run(["cat", str(work / top)], stdout=subprocess.DEVNULL, check=True)
    took = time.perf_counter() - t
    shutil.rmtree(work / top.split("/")[0]) if "/" in top else (work / top).unlink()
    return took


def size(tag: str) -> int:
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", tag],
                         capture_output=True, text=True, check=True).stdout
    return int(out)


def main() -> int:
    """Run the benchmark and print its ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base, members = family.build_family()
    images = {"base": base, **members}
    largest = max(members, key=lambda n: size(members[n]))
    rebuilt_name = "rt-python"
    rebuilt = family.build_member(rebuilt_name, salt="rebuilt")
    r: dict[str, list[float]] = {k: [] for k in (
        "floor", "family", "largest", "sum", "rebuilt", "top_floor", "rss_family", "startup",
        "cpu_family")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        baselines = work / "baselines"
        _, _, rc = measure(gate(images, baselines, work / "c0", "--update-baselines"))
        _, _, rc2 = measure(gate({rebuilt_name: rebuilt}, baselines, work / "c0"))
        if rc or rc2:
            print(f"recording the baselines failed (exit {rc}, {rc2})")
            return 1
        for i in range(args.rounds):
            r["floor"].append(export_floor(members[largest]))
            wall, _, rc = measure(gate({largest: members[largest]}, baselines, work / f"l{i}"))
            r["largest"].append(wall)
            cache = work / f"f{i}"
            wall, rss, rc3, cpu = measure_cpu(gate(images, baselines, cache))
            r["family"].append(wall)
            r["rss_family"].append(rss)
            r["cpu_family"].append(cpu)
            # the rebuilt member over the kept cache: what a CI run after a runtime rebuild pays
            wall, _, rc4 = measure(gate({rebuilt_name: rebuilt}, baselines, cache))
            r["rebuilt"].append(wall)
            r["top_floor"].append(top_layer_floor(rebuilt, work))
            wall, _, _ = measure(gate({rebuilt_name: rebuilt}, baselines, work / f"z{i}", "--co"))
            r["startup"].append(wall)
            if i == 0:
                total = 0.0
                for name, ref in images.items():
                    wall, _, _ = measure(gate({name: ref}, baselines, work / f"s{i}-{name}"))
                    total += wall
                r["sum"].append(total)
            if rc or rc3 or rc4:
                print(f"the gate failed on an unchanged image (exit {rc}, {rc3}, {rc4})")
                return 1
    med = {k: statistics.median(v) for k, v in r.items() if v}
    print(json.dumps({
        "python": f"{sys.version.split()[0]} ({sys.executable})",
        "members": {n: size(t) >> 20 for n, t in images.items()}, "largest": largest,
        "rounds": args.rounds,
        "largest_export_floor_s": round(med["floor"], 3),
        "largest_alone_s": round(med["largest"], 3), "family_s": round(med["family"], 3),
        "sum_alone_s": round(med["sum"], 3),
        "family_to_largest": round(med["family"] / med["largest"], 2),
        "family_to_sum": round(med["family"] / med["sum"], 2),
        "largest_to_floor": round(med["largest"] / med["floor"], 2),
        "rebuilt_s": round(med["rebuilt"], 3), "top_layer_floor_s": round(med["top_floor"], 3),
        "rebuilt_to_top_layer_floor": round(med["rebuilt"] / med["top_floor"], 2),
        "rebuilt_to_largest_floor": round(med["rebuilt"] / med["floor"], 2),
        "startup_s": round(med["startup"], 3),
        "startup_to_top_layer_floor": round(med["startup"] / med["top_floor"], 2),
        "family_peak_rss_mib": round(max(r["rss_family"]), 1),
        # what bounds the family: its CPU (all its processes) against the cores' time
        "family_cpu_s": round(med["cpu_family"], 2),
        "family_cores_busy": round(med["cpu_family"] / med["family"], 2),
        "cores": os.cpu_count(),
        "rounds_s": {k: " ".join(f"{x:.3f}" for x in r[k]) for k in (
            "floor", "largest", "family", "rebuilt", "top_floor", "startup")},
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
