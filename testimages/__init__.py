"""Test images, built locally (no registry is reachable) and reused by the hash of their recipe.

A recipe is a function that fills a root folder, plus the `docker import --change` lines of its
config. Its tag is `harness-test/NAME:HASH`, HASH covering the recipe's source code, its
parent's hash and its changes: a second run finds the image and builds nothing; a changed
recipe gets a new tag. Root folders made by debootstrap are cached the same way on disk.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

REPO = "harness-test"
CACHE = Path(os.environ.get("HARNESS_TESTIMAGE_CACHE", "/var/tmp/harness-testimages"))


def debian_mirror() -> str:
    """The Debian mirror of this machine's apt sources (never hard-coded: it differs by site)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            m = re.match(r"deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and "security" not in m.group(2) and "debian" in m.group(1):
                return m.group(1)
            m = re.match(r"URIs:\s*(\S+)", line)
            if m and "debian" in m.group(1) and "security" not in m.group(1):
                return m.group(1)
    raise RuntimeError("no Debian mirror found in /etc/apt/sources.list{,.d}")


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    """Run a command, raising with its stderr when it fails."""
    proc = subprocess.run(cmd, capture_output=True, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                           f"{proc.stderr.decode(errors='replace')[-3000:]}")
    return proc  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Recipe:
    """How to make one image: a parent image's root folder (or an empty one), a function
    that changes it, and the image config as `docker import --change` lines."""

    name: str
    build: Callable[[Path], None]
    changes: tuple[str, ...] = ()
    parent: Recipe | None = None
    #: bump to force a rebuild when something outside the function's source changed
    version: str = "1"
    inherit_changes: bool = True
    extra: tuple[str, ...] = field(default=())

    @property
    def all_changes(self) -> tuple[str, ...]:
        """Config lines, the parent's first (a later line wins, as in a Dockerfile)."""
        if self.parent is not None and self.inherit_changes:
            return self.parent.all_changes + self.changes
        return self.changes

    @property
    def digest(self) -> str:
        """Hash of everything that decides the image's content."""
        h = hashlib.sha256()
        h.update(self.name.encode())
        h.update(self.version.encode())
        h.update(inspect.getsource(self.build).encode())
        for item in (*self.changes, *self.extra):
            h.update(item.encode())
        if self.parent is not None:
            h.update(self.parent.digest.encode())
        return h.hexdigest()[:12]

    @property
    def tag(self) -> str:
        """`harness-test/NAME:HASH`."""
        return f"{REPO}/{self.name}:{self.digest}"


def _image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def rootfs(recipe: Recipe) -> Path:
    """The recipe's root folder, built once and cached on disk by hash."""
    target = CACHE / f"{recipe.name}-{recipe.digest}"
    done = target / ".done"
    if done.exists():
        return target / "rootfs"
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if done.exists():
            return target / "rootfs"
        if target.exists():
            shutil.rmtree(target)
        work = Path(tempfile.mkdtemp(prefix=f".{recipe.name}-", dir=CACHE))
        root = work / "rootfs"
        if recipe.parent is not None:
            # cp -a keeps modes, owners, links and hard links
            run(["cp", "-a", str(rootfs(recipe.parent)), str(root)])
        else:
            root.mkdir()
        recipe.build(root)
        (work / ".done").write_text(recipe.tag + "\n")
        work.rename(target)
    return target / "rootfs"


def build(recipe: Recipe) -> str:
    """The recipe's image tag; imported into the engine when not there yet."""
    tag = recipe.tag
    if _image_exists(tag):
        return tag
    root = rootfs(recipe)
    with FileLock(str(CACHE / f"{recipe.name}-{recipe.digest}.import.lock")):
        if _image_exists(tag):
            return tag
        cmd = ["docker", "import"]
        for change in recipe.all_changes:
            cmd += ["--change", change]
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-cf", "-", "."],
                               stdout=subprocess.PIPE)
        try:
            run([*cmd, "-", tag], stdin=tar.stdout)
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            if tar.wait() != 0:
                raise RuntimeError(f"tar of {root} failed")
    return tag
