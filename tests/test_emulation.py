"""Images of another architecture: whether the engine can run them (natively, or through a
qemu binfmt_misc handler with the F flag), and the runtime suites on an arm64 busybox image:
run under emulation where the machine has it, else every test skipped with the reason."""

from __future__ import annotations

import io
import os
import struct
import tarfile
from pathlib import Path
from typing import Any

import pytest

from harness import emulation
from harness.emulation import can_run, platform_of
from harness.source.engine import RUN_LABEL
from testimages import layered


#: what the kernel shows for Debian's qemu-user-static handler once registered
HANDLER = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""


def binfmt(tmp_path: Path, handlers: dict[str, str], status: str | None = "enabled") -> Path:
    """A stand-in for /proc/sys/fs/binfmt_misc (status None: not mounted, an empty folder)."""
    folder = tmp_path / "binfmt_misc"
    folder.mkdir()
    if status is not None:
        (folder / "status").write_text(status + "\n")
        (folder / "register").write_text("")
    for name, text in handlers.items():
        (folder / name).write_text(text)
    return folder


# -- the decision --------------------------------------------------------------------------------

def test_enabled_handler_with_f_runs_emulated(tmp_path: Path) -> None:
    verdict = can_run("aarch64", "x86_64", binfmt(tmp_path, {"qemu-aarch64": HANDLER}))
    assert verdict.ok and verdict.emulated
    assert verdict.reason == ("emulated by /usr/libexec/qemu-binfmt/aarch64-binfmt-P "
                              "(binfmt_misc qemu-aarch64)")
    assert verdict.time_scale == emulation.TIME_SCALE > 1


@pytest.mark.parametrize("handlers, status, missing", [
    ({}, "enabled", "no binfmt_misc handler qemu-aarch64 is registered"),
    ({"qemu-aarch64": HANDLER.replace("enabled", "disabled", 1)}, "enabled",
     "handler {folder}/qemu-aarch64 is registered but disabled"),
    ({"qemu-aarch64": HANDLER.replace("flags: POF", "flags: PO")}, "enabled",
     "lacks the F (fix-binary) flag, so a container cannot see its interpreter "
     "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"),
    ({"qemu-aarch64": HANDLER.replace("flags: POF", "flags: ")}, "enabled", "lacks the F"),
    ({"qemu-aarch64": HANDLER}, "disabled", "binfmt_misc is disabled ({folder}/status)"),
    ({}, None, "binfmt_misc is not mounted at {folder}"),
    ({"qemu-arm": HANDLER}, "enabled", "no binfmt_misc handler qemu-aarch64"),  # another arch's
], ids=["missing", "disabled", "no-F-flag", "no-flags", "binfmt-off", "not-mounted", "other-arch"])
def test_unusable_handler_says_what_is_missing(tmp_path: Path, handlers: dict[str, str],
                                               status: str | None, missing: str) -> None:
    folder = binfmt(tmp_path, handlers, status)
    verdict = can_run("aarch64", "x86_64", folder)
    assert not verdict.ok and verdict.emulated
    assert verdict.reason.startswith("cannot run aarch64 binaries on the x86_64 engine: ")
    assert missing.format(folder=folder) in verdict.reason
    assert "scripts/setup" in verdict.reason, "every reason says what fixes it"


@pytest.mark.parametrize("image, host", [("x86_64", "x86_64"), ("i686", "x86_64"),
                                         ("aarch64", "aarch64"), ("", "x86_64"), ("aarch64", "")])
def test_native_needs_no_handler(tmp_path: Path, image: str, host: str) -> None:
    verdict = can_run(image, host, tmp_path / "absent")
    assert verdict.ok and not verdict.emulated and verdict.time_scale == 1


def test_each_arch_asks_for_its_own_handler(tmp_path: Path) -> None:
    folder = binfmt(tmp_path, {"qemu-arm": HANDLER, "qemu-x86_64": HANDLER})
    assert can_run("armv7l", "aarch64", folder).ok
    assert can_run("x86_64", "aarch64", folder).ok
    assert "qemu-s390x" in can_run("s390x", "x86_64", folder).reason
    assert can_run("sparc", "x86_64", folder).reason.endswith("no emulator is known for sparc")


def test_env_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = binfmt(tmp_path, {"qemu-aarch64": HANDLER})
    monkeypatch.setenv(emulation.BINFMT_ENV, str(folder))
    assert emulation.binfmt_dir() == folder and can_run("aarch64", "x86_64").ok
    monkeypatch.delenv(emulation.BINFMT_ENV)
    assert emulation.binfmt_dir() == Path("/proc/sys/fs/binfmt_misc")


def test_platform_of_an_arch() -> None:
    assert platform_of("aarch64") == "linux/arm64"
    assert platform_of("aarch64", "linux", "v8") == "linux/arm64/v8"
    assert platform_of("armv6l") == "linux/arm/v6"
    assert platform_of("x86_64", "") == "linux/amd64"


# -- the runtime suites on an arm64 image --------------------------------------------------------

@pytest.fixture(scope="module")
def arm64_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Debian's arm64 busybox-static as an image (its own tag: test_daemonless loads the same
    bytes, and a shared tag could move under it)."""
    work = tmp_path_factory.mktemp("arm64")
    archive = layered.docker_archive(work / "arm64.tar", [layered.tar_root(layered.arm64_root())],
                                     "harness-test/busybox-arm64-emu:1", arch="arm64",
                                     variant="v8")
    return layered.load(archive)


@pytest.fixture
def host_arch(docker_engine: Any) -> str:
    arch = emulation.engine_arch(docker_engine)
    if arch == "aarch64":
        pytest.skip("the engine runs arm64 natively: nothing to emulate")
    return arch


def _no_container_left(docker_engine: Any) -> None:
    run_id = os.environ["HARNESS_RUN_ID"]
    left = docker_engine.client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    assert left == [], "every container of a run is removed at its end"


@pytest.mark.docker
def test_arm64_runtime_suites_run_emulated(runtime_suite, arm64_image: str, host_arch: str,
                                           docker_engine: Any, tmp_path: Path) -> None:
    verdict = can_run("aarch64", host_arch)
    if not verdict.ok:
        pytest.skip(f"this machine cannot emulate arm64 ({verdict.reason})")
    record = runtime_suite(arm64_image, tmp_path, "--update-baselines")
    # the default command, the shell, the busybox applets: run by qemu-aarch64
    record.assert_outcomes(passed=3, skipped=11)
    probes = (tmp_path / "img" / "aarch64" / "probes.busybox.json").read_text()
    assert '"busybox:applet:ls": true' in probes and not (tmp_path / "img" / "x86_64").exists()
    gate = runtime_suite(arm64_image, tmp_path)
    gate.assert_outcomes(passed=3, skipped=11)
    assert "exec format error" not in gate.stdout.str()
    _no_container_left(docker_engine)


@pytest.mark.docker
def test_arm64_runtime_suites_skip_without_emulation(runtime_suite, arm64_image: str,
                                                     host_arch: str, docker_engine: Any,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = binfmt(tmp_path, {})  # binfmt_misc mounted, no qemu-aarch64 handler
    monkeypatch.setenv(emulation.BINFMT_ENV, str(folder))
    result = runtime_suite(arm64_image, tmp_path / "baselines")
    result.assert_outcomes(skipped=14)
    # one reason for every runtime test, from the one place that decides
    reason = (f"img (aarch64): runtime suites skipped: cannot run aarch64 binaries on the "
              f"{host_arch} engine: no binfmt_misc handler qemu-aarch64 is registered (in "
              f"{folder}); install qemu-user-static and register its binfmt handlers with the "
              "F flag (scripts/setup does both)")
    skipped = [line for line in result.outlines if line.startswith("SKIPPED ")]
    assert len(skipped) == 14 and all(line.endswith(": " + reason) for line in skipped), skipped
    assert "exec format error" not in result.stdout.str()
    assert not docker_engine.client.api.containers(
        all=True, filters={"label": f"{RUN_LABEL}={os.environ['HARNESS_RUN_ID']}"})



def _unrunnable_root() -> bytes:
    """A layer whose /bin/sh is a 64-bit ELF for a machine no kernel or emulator knows
    (e_machine 0x9999): its exec fails with `exec format error` whatever handlers exist."""
    elf = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHI", 2, 0x9999, 1) + bytes(44)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data, mode in (("bin/sh", elf, 0o755),
                                 ("etc/passwd", b"root:x:0:0::/:/bin/sh\n", 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.docker
def test_a_start_failing_with_exec_format_error_is_skipped(runtime_suite, host_arch: str,
                                                           docker_engine: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's handlers said yes, yet the engine cannot run the image (as with an engine
    on another machine): a skip naming that, not an `exec format error` failure."""
    archive = layered.docker_archive(tmp_path / "bad.tar", [_unrunnable_root()],
                                     "harness-test/arm64-unrunnable:1", arch="arm64", variant="v8")
    image = layered.load(archive)
    monkeypatch.setenv(emulation.BINFMT_ENV, str(binfmt(tmp_path, {"qemu-aarch64": HANDLER})))
    result = runtime_suite(image, tmp_path / "baselines", "test_common.py")
    result.assert_outcomes(skipped=2)
    skipped = [line for line in result.outlines if line.startswith("SKIPPED ")]
    assert len(skipped) == 2 and all(
        "img (aarch64): runtime suites skipped: the engine cannot run its binaries (exec format "
        "error), although on this machine they are emulated by" in line
        for line in skipped), skipped
    _no_container_left(docker_engine)
