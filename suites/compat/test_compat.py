"""The compat suite users run: `pytest --image NAME[=REF]`, one test per image and aspect."""

from collections.abc import Callable

from harness.outcome.result import AspectResult

Check = Callable[[str], AspectResult]


def test_metadata(compat_check: Check) -> None:
    """User, entrypoint, cmd, workdir, env, ports, volumes, labels."""
    compat_check("metadata")


def test_files(compat_check: Check) -> None:
    """Every path: type, mode, owner, link target, content."""
    compat_check("files")


def test_packages(compat_check: Check) -> None:
    """Installed packages from the image's package databases."""
    compat_check("packages")


def test_security(compat_check: Check) -> None:
    """New setuid/world-writable files; accounts with empty passwords."""
    compat_check("security")


def test_abi(compat_check: Check) -> None:
    """Libraries, sonames, symbols and versions; the linkage closure of every ELF object."""
    compat_check("abi")
