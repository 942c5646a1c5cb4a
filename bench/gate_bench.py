"""Gate time as a ratio to the floor `docker export <container> | cat >/dev/null`, measured
side by side in one run, plus peak memory. Never a timed assertion: figures to read.

    python3 bench/gate_bench.py [--rounds 3] [--image minbase] [--source engine]

`--source docker-archive` or `--source oci` gates the same image daemonless, from its
`docker save` output or an OCI layout made from it; the figures then also give the floor of
reading that archive once (`cat archive >/dev/null`, or every blob of the layout).

The interpreter counts on a small image, where start-up is a third of the gate: a Python
built without PGO and LTO and with a shared libpython (pyenv's default build) starts pytest
and the plugin about a quarter slower than Debian's python3, and an environment with the dev
extra installed also loads hypothesis's pytest plugin (0.6 s of every run, which
`-p no:hypothesispytest` spares). To time the gate as the README's set-up installs it
(scripts/setup: a venv of Debian's interpreter with the runtime dependencies only), run the
bench under that venv:

    ./scripts/setup      # or: /usr/bin/python3 -m venv .venv && .venv/bin/pip install -e .
    .venv/bin/python bench/gate_bench.py --peer
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import testimages  # noqa: E402
from testimages import debian  # noqa: E402

def _big(name: str) -> Callable[[], str]:
    def build() -> str:
        from testimages import big

        return testimages.build(getattr(big, name))
    return build


IMAGES: dict[str, Callable[[], str]] = {"minbase": lambda: testimages.build(debian.MINBASE),
                                        "jdk17-1g": _big("JDK17"),
                                        "synthetic-4g": _big("SYNTHETIC_4G")}

_MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter(); rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(time.perf_counter() - t, u.ru_maxrss, rc, u.ru_utime + u.ru_stime)\n"
)


#: Users' Python keeps byte-code caches; a session that disables them (as some sandboxes do)
#: would time the compiler, not the gate.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB of the command's process tree's largest process, exit)."""
    wall, rss, rc, _ = measure_cpu(cmd)
    return wall, rss, rc


def measure_cpu(cmd: list[str]) -> tuple[float, float, int, float]:
    """`measure`, and the CPU seconds (user and system) of the command's whole process tree
    (each process the tree reaped counts)."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True,
                         check=True, env=ENV).stdout.split()
    return float(out[0]), int(out[1]) / 1024, int(out[2]), float(out[3])


def archive_ref(source: str, tag: str, work: Path) -> tuple[str, list[Path]]:
    """The gate's reference of the image through `source`, and the files that hold it."""
    if source == "engine":
        return tag, []
    from testimages import layered

    saved = layered.save(tag, work / "saved.tar")
    if source == "docker-archive":
        return f"docker-archive:{saved}", [saved]
    layout = layered.write_index(work / "oci", [layered.oci_image(work / "oci", saved)],
                                 ref_name="latest")
    saved.unlink()
    return f"oci:{layout}", sorted(p for p in layout.rglob("*") if p.is_file())


def read_floor(files: list[Path]) -> float:
    """Wall time of reading the archive's files once to /dev/null."""
    t = time.perf_counter()
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def export_floor(tag: str) -> float:
    """Wall time of exporting a created container of the image to /dev/null."""
    cid = subprocess.run(["docker", "create", tag, "/x"], capture_output=True, text=True,
                         check=True).stdout.strip()
    try:
        t = time.perf_counter()
        subprocess.run(f"docker export {cid} | cat >/dev/null", shell=True, check=True)
        return time.perf_counter() - t
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


PYTHON = sys.executable
#: what is timed: the compat suite (the gate: snapshot, diff, verdict), or every suite (the
#: runtime suites also start the image)
SUITES = {"compat": REPO / "suites" / "compat", "all": REPO / "suites"}
SUITE = SUITES["compat"]
READ = "auto"


def gate_cmd(tag: str, baselines: Path, cache: Path, report: Path, *extra: str) -> list[str]:
    """The gate as a user runs it: pytest on the suites, one image."""
    return [PYTHON, "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider",
            "--rootdir", str(REPO), "--image", f"bench={tag}", f"--baselines={baselines}",
            f"--compat-cache={cache}", f"--compat-report={report}", f"--compat-read={READ}",
            *extra]


def main() -> int:
    """Run the benchmark and print ratios to the export floor."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image", choices=sorted(IMAGES), default="minbase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter of the gate (e.g. a venv with only the harness's "
                             "runtime dependencies, as a CI gate job installs them)")
    parser.add_argument("--suite", choices=sorted(SUITES), default="compat",
                        help="time the compat suite (the gate) or every suite (default: compat)")
    parser.add_argument("--read", choices=("auto", "export", "layers"), default="auto",
                        help="the gate's --compat-read (default: auto)")
    parser.add_argument("--source", choices=("engine", "docker-archive", "oci"), default="engine",
                        help="read the image through the engine, or daemonless from its "
                             "`docker save` output or an OCI layout (default: engine)")
    parser.add_argument("--peer", action="store_true",
                        help="also time the naive peer (testinfra + find/sha256sum + DeepDiff)")
    args = parser.parse_args()
    global PYTHON, SUITE, READ
    PYTHON, SUITE, READ = args.python, SUITES[args.suite], args.read
    tag = IMAGES[args.image]()
    results: dict[str, list[float]] = {"floor": [], "cold": [], "warm": [], "rss_cold": [],
                                       "startup": [], "archive_floor": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ref, held_in = archive_ref(args.source, tag, work)
        baselines = work / "baselines"
        wall, _, rc = measure(gate_cmd(ref, baselines, work / "c0", work / "r.json", "--update-baselines"))
        if rc != 0:
            print(f"recording the baseline failed (exit {rc})")
            return 1
        for i in range(args.rounds):
            results["floor"].append(export_floor(tag))
            if held_in:
                results["archive_floor"].append(read_floor(held_in))
            cache = work / f"cache{i}"
            wall, rss, rc = measure(gate_cmd(ref, baselines, cache, work / "r.json"))
            if rc != 0:
                print(f"the gate failed on an unchanged image (exit {rc})")
                return 1
            results["cold"].append(wall)
            results["rss_cold"].append(rss)
            wall, _, _ = measure(gate_cmd(ref, baselines, cache, work / "r.json"))
            results["warm"].append(wall)
            # pytest's own start-up and collection, the fixed cost of any pytest plugin
            wall, _, _ = measure(gate_cmd(ref, baselines, cache, work / "r.json", "--collect-only"))
            results["startup"].append(wall)
    if args.peer:
        import naive_peer

        baseline = naive_peer.collect(tag)
        results["peer"] = [naive_peer.gate(baseline, tag)[0] for _ in range(args.rounds)]
    med = {k: statistics.median(v) for k, v in results.items() if v}
    summary = {
        "image": args.image, "tag": tag, "source": args.source, "rounds": args.rounds,
        "suite": args.suite, "read": args.read,
        "export_floor_s": round(med["floor"], 3), "gate_cold_s": round(med["cold"], 3),
        "gate_warm_s": round(med["warm"], 3), "pytest_startup_s": round(med["startup"], 3),
        "cold_to_floor": round(med["cold"] / med["floor"], 2),
        # each round's gate against the floor measured just before it: a machine whose
        # speed drifts during the run moves both
        "cold_to_floor_paired": round(statistics.median(
            c / f for c, f in zip(results["cold"], results["floor"])), 2),
        "rounds_s": {k: " ".join(f"{x:.3f}" for x in results[k]) for k in ("floor", "cold", "warm")},
        "warm_to_cold": round(med["warm"] / med["cold"], 3),
        "peak_rss_mib": round(max(results["rss_cold"]), 1),
    }
    if "archive_floor" in med:
        summary["archive_read_floor_s"] = round(med["archive_floor"], 3)
        summary["cold_to_archive_read"] = round(med["cold"] / med["archive_floor"], 2)
    if "peer" in med:
        summary["naive_peer_s"] = round(med["peer"], 3)
        summary["peer_to_cold"] = round(med["peer"] / med["cold"], 2)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
