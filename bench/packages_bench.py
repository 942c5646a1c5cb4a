"""How much of a gate reading the package databases costs: the readers and the ownership
check on the database files of an image, timed apart from the walk that collects them.

    python3 bench/packages_bench.py [--image minbase]
Compare the figure with gate_bench.py's cold gate time of the same image.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import testimages  # noqa: E402
from harness.source.engine import Engine  # noqa: E402
from harness.snapshot.ownership import verify  # noqa: E402
from harness.snapshot.packages import PackagesCollector  # noqa: E402
from harness.snapshot.managers import load_builtin_readers  # noqa: E402
from harness.snapshot.walk import walk  # noqa: E402
from testimages import debian  # noqa: E402


def main() -> int:
    """Collect the database files once, then time reading them (median of rounds)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    load_builtin_readers()
    engine = Engine.connect()
    info = engine.find_or_pull(testimages.build(debian.MINBASE))
    collector = PackagesCollector()
    with engine.export_rootfs(info.image_id, "bench-packages") as stream:
        files = walk(stream, [collector])
    read, owned = [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        records, _ = collector.result()
        read.append(time.perf_counter() - t)
        t = time.perf_counter()
        lists, _ = collector.file_lists()
        verify(files, lists, {}, {})
        owned.append(time.perf_counter() - t)
    print(json.dumps({"image": "minbase", "packages": len(records),
                      "read_databases_s": round(statistics.median(read), 4),
                      "file_lists_and_ownership_s": round(statistics.median(owned), 4)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
