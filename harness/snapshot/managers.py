"""The registry of package managers and language ecosystems (`harness.snapshot.manager`):
the packages diff orders versions by it, the SBOM names its packages by it, and loading it
registers every manager's database reader. Adding a manager: its module (its `MANAGER`,
reader included) and one entry in `managers()`."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from harness.snapshot.manager import Manager
from harness.snapshot.packages import register
from harness.versions import dpkg_record_compare

#: a manager the registry does not know (a baseline of a newer harness) orders as dpkg does
_UNKNOWN = Manager("unknown", dpkg_record_compare)


@functools.cache
def managers() -> dict[str, Manager]:
    """Every manager by name. Imported on first use: a warm run, whose verdicts are all
    known, never reads a database nor orders a version."""
    from harness.snapshot import apk, dpkg, language, rpm  # noqa: PLC0415

    return {m.name: m for m in (dpkg.MANAGER, rpm.MANAGER, apk.MANAGER, *language.MANAGERS)}


def load_builtin_readers() -> None:
    """Every manager's reader registered with `harness.snapshot.packages`, in the
    registry's order."""
    for entry in managers().values():
        if entry.reader is not None:
            register(entry.reader)


def manager(name: str) -> Manager | None:
    """The registry's entry of a manager; None for one it does not know."""
    return managers().get(name)


def compare_versions(manager: str, before: Mapping[str, object], after: Mapping[str, object]) -> int:
    """Order two package records of one manager by its own version rules (-1, 0, 1)."""
    return managers().get(manager, _UNKNOWN).compare(before, after)

