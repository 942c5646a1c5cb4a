"""Images whose own default command attacks the engine's host: it floods its log and fills
every writable place it can, for the runtime stage's bounds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from testimages import Recipe

APPLETS = ("sh", "yes", "dd", "sleep", "cat", "head", "true")
#: the default command: a log flood beside 1 GiB written to the root and to /tmp each
FLOOD = ("yes flood-the-engine-log-with-this-line & "
         "dd if=/dev/zero of=/fill bs=1M count=1024; dd if=/dev/zero of=/tmp/fill bs=1M count=1024; "
         "wait")


def _flood(root: Path) -> None:
    for d in ("bin", "etc", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc/passwd").write_text("root:x:0:0:root:/:/bin/sh\n")


FLOODING = Recipe("runaway-flood", _flood, changes=(
    "ENV PATH=/bin", f'CMD ["/bin/sh", "-c", "{FLOOD}"]'))


def _hanging_probe(root: Path) -> None:
    """`dpkg-query` never returns (the minimal suite runs it to compare with the snapshot)."""
    (root / "usr/local/bin").mkdir(parents=True, exist_ok=True)
    script = root / "usr/local/bin/dpkg-query"
    script.write_text("#!/bin/sh\nexec /bin/busybox sleep 100000\n")
    script.chmod(0o755)


def hanging_probe() -> Recipe:
    """The tiny image (a dpkg database), but its package tool hangs."""
    from testimages import tiny

    return Recipe("runaway-probe", _hanging_probe, parent=tiny.BASE,
                  changes=("ENV PATH=/usr/local/bin:/usr/bin:/bin",))
