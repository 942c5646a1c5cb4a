"""The packages aspect: whichever package databases the image holds, read from its files.

Readers are chosen by what the image contains (a small registry, as testinfra chooses its
modules): each declares which paths make up its database and how to read them. An absent
database is "no package database", never "zero packages"; a damaged one is an error naming
the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.errors import ParseError
from harness.limits import Limits, size_text
from harness.snapshot import dpkg


FileLists = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class PackageReader:
    """How to find and read one package manager's database in an image's files.

    `file_lists` (optional) gives each package's recorded files, from the database files and
    the auxiliary files `is_aux` accepts (dpkg keeps them apart, in info/*.list).
    """

    manager: str
    is_database: Callable[[str], bool]
    read: Callable[[dict[str, bytes]], list[dict[str, Any]]]
    file_lists: Callable[[dict[str, bytes]], FileLists] | None = None
    is_aux: Callable[[str], bool] | None = None


READERS: list[PackageReader] = [PackageReader("dpkg", dpkg.is_database, dpkg.read_database,
                                              dpkg.read_file_lists, dpkg.is_file_list)]


def register(reader: PackageReader) -> None:
    """Add a reader (rpm, apk and plugins register themselves on import)."""
    if all(r.manager != reader.manager for r in READERS):
        READERS.append(reader)


def package_key(record: dict[str, Any]) -> str:
    """Packages are keyed by name and arch: multilib images hold both `x86_64` and `i686`."""
    return f"{record['name']}:{record.get('arch') or ''}"


class PackagesCollector:
    """Collects the database files of every registered manager during the walk."""

    def __init__(self, limits: Limits | None = None) -> None:
        self._found: dict[str, dict[str, bytes]] = {}
        self._aux: dict[str, dict[str, bytes]] = {}
        self._limits = limits or Limits()
        #: manager -> files larger than the cap (the database cannot be read whole)
        self._refused: dict[str, list[str]] = {}

    def cap(self, path: str) -> int:
        return self._limits.package_db_bytes

    def refuse(self, path: str, size: int, cap: int) -> None:
        for reader in READERS:
            if reader.is_database(path) or (reader.is_aux is not None and reader.is_aux(path)):
                self._refused.setdefault(reader.manager, []).append(
                    f"{path}: {size_text(size)} ({size:,} bytes), larger than "
                    f"{self._limits.describe('package_db_bytes')}")
                return

    def wants(self, path: str, head: bytes, size: int) -> bool:
        return any(r.is_database(path) or (r.is_aux is not None and r.is_aux(path))
                   for r in READERS)

    def take(self, path: str, data: bytes) -> None:
        for reader in READERS:
            if reader.is_database(path):
                self._found.setdefault(reader.manager, {})[path] = data
            elif reader.is_aux is not None and reader.is_aux(path):
                self._aux.setdefault(reader.manager, {})[path] = data

    def file_lists(self) -> tuple[FileLists, list[str]]:
        """Every package's recorded files (key `name:arch`), and the errors of lists that
        could not be read (they never hide the packages themselves)."""
        lists: FileLists = {}
        errors: list[str] = []
        for reader in READERS:
            files = self._found.get(reader.manager)
            if not files or reader.file_lists is None:
                continue
            try:
                lists.update(reader.file_lists({**files, **self._aux.get(reader.manager, {})}))
            except ParseError as exc:
                errors.append(str(exc))
            except Exception as exc:  # a reader bug must not hide the other checks
                errors.append(f"{reader.manager} file lists unreadable ({type(exc).__name__}: {exc})")
        return lists, errors

    def result(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """(package records by key, one entry per database found with its count or error)."""
        records: dict[str, dict[str, Any]] = {}
        databases: list[dict[str, Any]] = []
        for reader in READERS:
            files = self._found.get(reader.manager)
            refused = self._refused.get(reader.manager)
            if refused:  # part of the database is missing: no count could be trusted
                databases.append({"manager": reader.manager, "paths": sorted(files or ()),
                                  "error": "; ".join(refused[:5])})
                continue
            if not files:
                continue
            entry: dict[str, Any] = {"manager": reader.manager, "paths": sorted(files)}
            try:
                found = reader.read(files)
            except ParseError as exc:
                entry["error"] = str(exc)
                databases.append(entry)
                continue
            except Exception as exc:  # a reader bug must not hide the other databases
                entry["error"] = f"{', '.join(sorted(files))}: unreadable ({type(exc).__name__}: {exc})"
                databases.append(entry)
                continue
            entry["count"] = len(found)
            databases.append(entry)
            for record in found:
                records[package_key(record)] = record
        return records, databases


def load_builtin_readers() -> None:
    """Import the optional readers so they register (kept lazy: each is a small module)."""
    import importlib

    for module in ("harness.snapshot.rpm", "harness.snapshot.apk"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
