"""Report rendering time for 10,000 changes, as ratios to writing the same reports as JSON
(the floor: the data, serialised once) measured in the same run. Never a timed assertion.

    python3 bench/report_bench.py [--changes 10000] [--rounds 5]
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
sys.path.insert(0, str(REPO / "tests"))

from harness.outcome.html import to_html  # noqa: E402
from harness.outcome.report import to_json, to_markdown  # noqa: E402
from test_html_report import synthetic_reports  # noqa: E402


def timed(render: object, reports: object) -> float:
    """Seconds one call of render(reports) takes."""
    start = time.perf_counter()
    render(reports)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    """Print the median seconds of each format and its ratio to the JSON floor."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    reports = synthetic_reports(args.changes)
    formats = {"json": lambda r: json.dumps(to_json(r)), "markdown": to_markdown, "html": to_html}
    seconds = {name: statistics.median(timed(render, reports) for _ in range(args.rounds))
               for name, render in formats.items()}
    print(json.dumps({"changes": args.changes, "rounds": args.rounds,
                      **{f"{k}_s": round(v, 3) for k, v in seconds.items()},
                      **{f"{k}_to_json": round(v / seconds["json"], 2)
                         for k, v in seconds.items() if k != "json"}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
