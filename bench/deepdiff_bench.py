"""Should the metadata aspect compare image configs with deepdiff? Its cost against the gate's
own keyed diff, on a config of 100,000 labels (an image config is the gate's one nested
structure; everything else is already a keyed record), measured in the same run.

    python3 bench/deepdiff_bench.py [--labels 100000] [--rounds 5]

The floor is the keyed diff the metadata aspect uses (`flatten_config` + `diff_metadata`: the
config flattened to one record per contract subject, then a diff of key sets). DeepDiff is
timed on the nested configs as the engine returns them (`DeepDiff(before, after)`), and both
must find the same changed subjects. Printed: seconds (median), the ratio to the floor, and
the import time of each module (a cost every gate run would pay).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.diff.metadata import diff_metadata  # noqa: E402
from harness.source.engine import ImageInfo  # noqa: E402
from harness.snapshot.meta import flatten_config  # noqa: E402


def configs(labels: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A release config and a candidate with one label removed, one added, one changed and
    the default user changed."""
    before = {"User": "app", "Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
              "Labels": {f"org.example.label{i}": f"value {i}" for i in range(labels)}}
    after = {**before, "User": "root", "Labels": dict(before["Labels"])}
    del after["Labels"]["org.example.label1"]
    after["Labels"]["org.example.label2"] = "changed"
    after["Labels"]["org.example.new"] = "added"
    return before, after


def info(config: dict[str, Any]) -> ImageInfo:
    """An ImageInfo carrying `config`, as the engine would give it."""
    return ImageInfo(ref="bench", image_id="sha256:" + "0" * 64, arch="x86_64", os="linux",
                     variant="", config=config, size=0)


def keyed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """The changed subjects as the metadata aspect finds them."""
    changes = diff_metadata(flatten_config(info(before)), flatten_config(info(after)))
    return {change.subject for change in changes}


def deep(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """The changed subjects as DeepDiff finds them, mapped to the contract's spelling."""
    from deepdiff import DeepDiff

    found = DeepDiff(before, after, view="tree")
    subjects = set()
    for items in found.values():
        for item in items:
            path = item.path(output_format="list")
            subjects.add(".".join(str(part) for part in path[:2]))
    return subjects


def import_seconds(module: str) -> float:
    """Seconds a fresh interpreter takes to import `module`, less its bare start-up."""
    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
        return time.perf_counter() - start
    bare = min(run("pass") for _ in range(3))
    return min(run(f"import {module}") for _ in range(3)) - bare


def main() -> int:
    """Print both diffs' medians, their ratio and the import costs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    try:
        import deepdiff  # noqa: F401
    except ImportError:
        print("deepdiff is not installed (the gate does not depend on it): pip install deepdiff")
        return 2
    before, after = configs(args.labels)
    want = {"User", "Labels.org.example.label1", "Labels.org.example.label2",
            "Labels.org.example.new"}
    assert keyed(before, after) == want, keyed(before, after)
    seconds = {}
    for name, diff in (("keyed", keyed), ("deepdiff", deep)):
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            diff(before, after)
            times.append(time.perf_counter() - start)
        seconds[name] = statistics.median(times)
    print(f"python {sys.version.split()[0]} ({sys.executable}), {args.labels} labels, "
          f"median of {args.rounds}")
    for name, value in seconds.items():
        print(f"{name:9s} {value:8.3f} s  {value / seconds['keyed']:7.1f}x the keyed diff")
    print(f"deepdiff subjects (first path parts): {len(deep(before, after))}")
    for module in ("harness.diff.metadata", "deepdiff"):
        print(f"import {module}: {import_seconds(module):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
