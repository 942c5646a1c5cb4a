"""Whether the engine's machine can run an image of another architecture, and how.

A static snapshot never runs the image, so an aarch64 candidate is gated on an x86_64 machine
like any other. The runtime suites start it: that needs the engine's kernel to run its binaries,
natively (same architecture, or one the CPU runs as well) or through a binfmt_misc handler
for it (Debian's qemu-user-static registers `qemu-aarch64` and the like). In a container
the handler's interpreter must have been opened at registration (the `F`, fix-binary flag):
without it the kernel looks the interpreter path up inside the container's root, where it is
not, and every command fails with a misleading `no such file or directory`.

The binfmt folder read is this machine's: right for a local engine (or one reached over
loopback or ssh to this machine). For an engine on another machine set `HARNESS_BINFMT_DIR` to
a copy of that machine's folder; a start that still fails with `exec format error` is skipped,
never failed (`harness.plugin`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import requests.exceptions

from harness.source.dockersdk import docker
from harness.source.engine import ARCH_NAMES, Engine, uname_arch
from harness.errors import EngineUnavailable

#: where the kernel shows binfmt_misc (mounted there by systemd, or by scripts/setup)
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
#: overrides BINFMT_DIR: an engine on another machine, or a test forcing a verdict
BINFMT_ENV = "HARNESS_BINFMT_DIR"
#: `uname -m` name -> the name qemu gives its user-mode emulator (its handler is `qemu-NAME`)
QEMU_NAMES = {"aarch64": "aarch64", "armv7l": "arm", "armv6l": "arm", "i686": "i386",
              "x86_64": "x86_64", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
              "mips64le": "mips64el", "loongarch64": "loongarch64"}
#: what a host runs natively besides its own architecture (a 64-bit x86 kernel runs 32-bit x86)
NATIVE = {"x86_64": frozenset({"i686"})}
#: qemu-user runs typical code several times slower than the CPU: the runtime's time bounds
#: (a container's life, the wait for a default command) stretch by this much under emulation
TIME_SCALE = 5
#: what to do about a missing or unusable handler
HINT = ("install qemu-user-static and register its binfmt handlers with the F flag "
        "(scripts/setup does both)")


@dataclass(frozen=True)
class Runnable:
    """The verdict: `ok` whether the engine can run the image; `emulated` whether that takes a
    binfmt handler; `reason` what is missing when not ok, else how it runs; `platform` the
    image's platform to start it with when emulated (the plugin fills it in)."""

    ok: bool
    emulated: bool
    reason: str
    platform: str | None = None

    @property
    def time_scale(self) -> int:
        """Factor for the runtime's time bounds."""
        return TIME_SCALE if self.emulated else 1


def binfmt_dir() -> Path:
    """The binfmt_misc folder to read: `HARNESS_BINFMT_DIR`, else the kernel's."""
    return Path(os.environ.get(BINFMT_ENV) or BINFMT_DIR)


def can_run(image_arch: str, host_arch: str, folder: Path | None = None) -> Runnable:
    """Whether a host of `host_arch` runs binaries of `image_arch` (both `uname -m` names),
    reading the binfmt_misc handlers in `folder` (default: `binfmt_dir()`) for a foreign one.

    An image (or engine) without a recorded architecture is taken as native: its start then
    decides.
    """
    if (not image_arch or not host_arch or image_arch == host_arch
            or image_arch in NATIVE.get(host_arch, ())):
        return Runnable(True, False, f"native ({host_arch or 'the engine names no arch'})")
    folder = binfmt_dir() if folder is None else folder

    def cannot(missing: str) -> Runnable:
        return Runnable(False, True, f"cannot run {image_arch} binaries on the {host_arch} "
                                     f"engine: {missing}")

    qemu = QEMU_NAMES.get(image_arch)
    if qemu is None:
        return cannot(f"no emulator is known for {image_arch}")
    status = _read(folder / "status")
    if status is None:
        return cannot(f"binfmt_misc is not mounted at {folder}; {HINT}")
    if status.strip() != "enabled":
        return cannot(f"binfmt_misc is disabled ({folder / 'status'}); {HINT}")
    handler = folder / f"qemu-{qemu}"
    text = _read(handler)
    if text is None:
        return cannot(f"no binfmt_misc handler {handler.name} is registered (in {folder}); "
                      f"{HINT}")
    lines = text.splitlines()
    # `enabled`, then `interpreter PATH`, `flags: POF`, `offset N`, `magic HEX`, `mask HEX`
    fields = {key.rstrip(":"): value.strip() for key, _, value in
              (line.partition(" ") for line in lines[1:])}
    interpreter = fields.get("interpreter", "?")
    if not lines or lines[0].strip() != "enabled":
        return cannot(f"binfmt_misc handler {handler} is registered but disabled; "
                      f"enable it (echo 1 > {handler}) or run scripts/setup")
    if "F" not in fields.get("flags", ""):
        return cannot(f"binfmt_misc handler {handler} lacks the F (fix-binary) flag, so a "
                      f"container cannot see its interpreter {interpreter}; {HINT}")
    return Runnable(True, True, f"emulated by {interpreter} (binfmt_misc {handler.name})")


def engine_arch(engine: Engine) -> str:
    """The engine's architecture as `uname -m` names it (`x86_64`)."""
    try:
        version = engine.client.api.version()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(f"the engine does not tell its architecture: {exc}") from exc
    return uname_arch(str(version.get("Arch") or ""))


def platform_of(arch: str, os_name: str = "linux", variant: str | None = None) -> str:
    """The engine's platform string (`linux/arm64/v8`) of an image's `uname -m` arch."""
    go_arch = {uname: go for go, uname in ARCH_NAMES.items()}.get(arch, arch)
    if arch == "armv6l":
        go_arch, variant = "arm", variant or "v6"
    return "/".join([os_name or "linux", go_arch, *([variant] if variant else [])])


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
