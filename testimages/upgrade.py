"""A real distribution upgrade as an image pair: Debian bookworm minbase (the release) against
trixie minbase (the candidate), both debootstrapped from this machine's Debian mirror.

Hundreds of real changes of every aspect: packages upgraded and renamed (the 64-bit time_t
transition renamed many libraries, so their bookworm packages are removed), sonames bumped,
symbols added and removed, thousands of files modified. `pair()` falls back to bookworm
minbase against bookworm with extra packages when the mirror cannot bootstrap trixie.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from testimages import Recipe, build, debian_mirror, run
from testimages.debian import MINBASE

CANDIDATE_SUITE = "trixie"
#: packages the fallback candidate adds to bookworm minbase (libraries, setuid programs)
FALLBACK_PACKAGES = "openssl,curl,procps,passwd,login,libxml2,libsqlite3-0"


def _trixie_minbase(root: Path) -> None:
    run(["debootstrap", "--variant=minbase", "trixie", str(root), debian_mirror()])
    run(["sh", "-c", f"rm -rf {root}/var/cache/apt/archives/*.deb {root}/var/lib/apt/lists/*"])


def _bookworm_extra(root: Path) -> None:
    run(["debootstrap", "--variant=minbase", f"--include={FALLBACK_PACKAGES}", "bookworm",
         str(root), debian_mirror()])
    run(["sh", "-c", f"rm -rf {root}/var/cache/apt/archives/*.deb {root}/var/lib/apt/lists/*"])


TRIXIE = Recipe("debian-trixie-minbase", _trixie_minbase, changes=('CMD ["/bin/bash"]',),
                extra=(CANDIDATE_SUITE,))
BOOKWORM_EXTRA = Recipe("debian-bookworm-extra", _bookworm_extra, changes=('CMD ["/bin/bash"]',),
                        extra=(FALLBACK_PACKAGES,))


@dataclass(frozen=True)
class Pair:
    """A baseline tag, a candidate tag, and what the candidate is (for messages)."""

    baseline: str
    candidate: str
    description: str
    fallback: bool = False


def pair() -> Pair:
    """Build (or reuse) the bookworm -> trixie pair; the bookworm-with-extras fallback when
    trixie cannot be bootstrapped from this mirror (the reason is kept in the description)."""
    baseline = build(MINBASE)
    try:
        return Pair(baseline, build(TRIXIE), "Debian bookworm minbase -> trixie minbase")
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown"
        return Pair(baseline, build(BOOKWORM_EXTRA),
                    f"Debian bookworm minbase -> bookworm + {FALLBACK_PACKAGES} "
                    f"(trixie could not be bootstrapped: {reason})", fallback=True)
