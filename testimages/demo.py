"""The built-in demo: build a release image and a candidate, record the release as the
baseline, gate the candidate (it is blocked) and write the reports to out/demo/.

    python3 -m testimages.demo      (scripts/demo does the set-up first)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import testimages
from testimages import Recipe, tiny
from testimages.debs import dpkg, make_deb

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "out" / "demo"


def _candidate(root: Path) -> None:
    """A slimming pass gone wrong, plus a legitimate addition."""
    dpkg(root, "--purge", "--force-depends", "libdemo1")      # a library package dropped
    (root / "usr/bin/hello-demo").chmod(0o4755)               # a new setuid program
    with tempfile.TemporaryDirectory() as tmp:                 # a new package: info only
        dpkg(root, "-i", str(make_deb(Path(tmp), "extra-tool", "0.1-1",
                                      {"/usr/bin/extra-tool": "#!/bin/sh\n"})))


RELEASE = tiny.BASE
CANDIDATE = Recipe("demo-candidate", _candidate, parent=tiny.BASE, changes=("USER nobody",))


def _pytest(*args: str) -> int:
    cmd = [sys.executable, "-m", "pytest", str(REPO / "suites"), "-p", "no:cacheprovider",
           "--rootdir", str(REPO), *args]
    print("$ pytest " + " ".join(args), flush=True)
    return subprocess.call(cmd, cwd=REPO)


def main() -> int:
    """Run the demo; exit 0 when the candidate was blocked as it should be."""
    release, candidate = testimages.build(RELEASE), testimages.build(CANDIDATE)
    print(f"demo: release image {release}, candidate image {candidate}")
    if OUT.exists():
        shutil.rmtree(OUT)
    baselines = OUT / "baselines"
    rc = _pytest("-q", "--image", f"demo={release}", f"--baselines={baselines}",
                 "--update-baselines")
    if rc != 0:
        print(f"demo: recording the baseline failed (pytest exit {rc})")
        return 1
    rc = _pytest("-q", "--no-header", "--image", f"demo={candidate}",
                 f"--baselines={baselines}", f"--compat-report={OUT / 'report.json'}",
                 f"--compat-report={OUT / 'report.md'}", f"--compat-report={OUT / 'report.html'}")
    if rc == 1:
        print(f"\ndemo: the candidate release is BLOCKED (pytest exit {rc}); reports: "
              f"{OUT / 'report.md'}, {OUT / 'report.html'} and {OUT / 'report.json'}")
        return 0
    print(f"demo: expected the gate to block the candidate, pytest exited {rc}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
