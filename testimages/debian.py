"""Realistic Debian images made with debootstrap from this machine's Debian mirror."""

from __future__ import annotations

from pathlib import Path

from testimages import Recipe, debian_mirror, run

SUITE = "bookworm"


def _minbase(root: Path) -> None:
    run(["debootstrap", "--variant=minbase", SUITE, str(root), debian_mirror()])
    # debootstrap leaves the downloaded .debs and apt lists: volatile, and not in real images
    run(["sh", "-c", f"rm -rf {root}/var/cache/apt/archives/*.deb {root}/var/lib/apt/lists/*"])


MINBASE = Recipe("debian-minbase", _minbase, changes=('CMD ["/bin/bash"]',), extra=(SUITE,))
