"""The packages aspect: whichever package databases the image holds, read from its files.

Readers are chosen by what the image contains (a small registry, as testinfra chooses its
modules): each declares the folders its database lives in and which files there make it up.
A folder may be reached through the image's symlinks (rpm-ostree's `/var/lib/rpm ->
/usr/share/rpm`, merged-/usr trees): the walk keeps the files of every folder named as a
database folder is (`rpm`, `dpkg`, `apk/db`), and once the walk is done each known location
is resolved through the image's symlinks to the folder it lands on. Every database found is
read and named, several of one manager too.

One rule for every manager: an absent database is "no package database", never "zero
packages"; an existing empty one (an empty file, or a database of no entries) is 0 packages,
marked `empty`; an entry that cannot be read is skipped and listed in `malformed` (file and
line or record), the rest still read; a database that cannot be read at all, or whose every
entry is unreadable, is an error naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import ParseError
from harness.paths import SymlinkResolver
from harness.limits import Limits, size_text


FileLists = dict[str, list[dict[str, Any]]]
#: malformed entries listed per database (the count is always complete)
MAX_MALFORMED = 50


@dataclass(frozen=True)
class PackageReader:
    """How to find and read one package manager's database in an image's files.

    `locations` are the folders the database lives in, preferred first; `is_database` and
    `is_aux` take a file's path under one of them. `read(files, problems)` returns package
    records and appends what it skipped to `problems`; `file_lists` (optional) gives each
    package's recorded files, from the database files and the auxiliary files `is_aux`
    accepts (dpkg keeps them apart, in info/*.list).
    """

    manager: str
    is_database: Callable[[str], bool]
    read: Callable[..., list[dict[str, Any]]]
    file_lists: Callable[[dict[str, bytes]], FileLists] | None = None
    is_aux: Callable[[str], bool] | None = None
    locations: tuple[str, ...] = ()
    #: where a package's licence is written apart from the database (Debian's copyright
    #: file), and how to read it: the record's `license` is filled from it when empty
    licence_file: Callable[[dict[str, Any]], str] | None = None
    is_licence_file: Callable[[str], bool] | None = None
    read_licence: Callable[[bytes], str | None] | None = None


#: the readers of the registry of managers, in its order (the first database found of a
#: package key keeps it): `harness.snapshot.managers.load_builtin_readers` registers them
READERS: list[PackageReader] = []
#: a licence file larger than this is not read (a copyright file is a few KiB; the largest
#: in Debian are a few hundred)
MAX_LICENCE_FILE = 1 << 20
#: the licence expressions of all of an image's licence files, in characters, at most: far
#: above any distribution's (a few dozen a package), and a bound on an image of many large
#: licence files made to be held (each file is read alone, its expression kept)
MAX_LICENCE_TOTAL = 16 << 20


#: (licence reader, a licence file's bytes) -> the licence it reads: the members of a release
#: family hold their base's copyright files, read once by this process (and the children it
#: forks to take the members, harness.gate). At most `MAX_LICENCE_MEMO` bytes of files, past
#: which it starts again
_LICENCE_MEMO: dict[tuple[Callable[[bytes], str | None], bytes], str | None] = {}
MAX_LICENCE_MEMO = 8 << 20
_memo_bytes = [0]


def _licence_of(read: Callable[[bytes], str | None], data: bytes) -> str | None:
    """The licence a reader reads in a licence file's bytes; None when it reads none or
    fails (a licence reader's bug must not stop the walk)."""
    key = (read, data)
    if key in _LICENCE_MEMO:
        return _LICENCE_MEMO[key]
    try:
        licence = read(data)
    except Exception:  # noqa: BLE001 - any bug of a reader: the file names no licence
        licence = None
    if _memo_bytes[0] + len(data) > MAX_LICENCE_MEMO:
        _LICENCE_MEMO.clear()
        _memo_bytes[0] = 0
    _LICENCE_MEMO[key] = licence
    _memo_bytes[0] += len(data)
    return licence


def register(reader: PackageReader) -> None:
    """Add a reader (harness.snapshot.managers registers each manager's)."""
    if all(r.manager != reader.manager for r in READERS):
        READERS.append(reader)


def package_key(record: dict[str, Any]) -> str:
    """Packages are keyed by name and arch: multilib images hold both `x86_64` and `i686`."""
    return f"{record['name']}:{record.get('arch') or ''}"


def _tail(location: str) -> str:
    """What a copy of the folder must end in to be kept: `/rpm/`, `/dpkg/`, `/apk/db/`."""
    parts = location.strip("/").split("/")
    return "/" + "/".join(parts[-2:] if parts[-1] == "db" else parts[-1:]) + "/"


@dataclass
class Database:
    """One database found in an image: its manager, where it is, its files by the path the
    reader knows (`location` + name) and by the path the image holds them at."""

    reader: PackageReader
    location: str
    real: str
    files: dict[str, bytes]
    aux: dict[str, bytes]
    paths: list[str]

    def entry(self) -> dict[str, Any]:
        """The database as `package_dbs` lists it."""
        entry: dict[str, Any] = {"manager": self.reader.manager, "location": self.location,
                                 "paths": self.paths}
        if self.real != self.location:
            entry["real"] = self.real
        return entry


class PackagesCollector:
    """Collects the files of every registered manager's database folders during the walk."""

    def __init__(self, limits: Limits | None = None) -> None:
        self._taken: dict[str, bytes] = {}
        self._limits = limits or Limits()
        #: database files larger than the cap -> why (their database cannot be read whole)
        self._refused: dict[str, str] = {}
        #: licence files read as they pass (a licence, not the file, is kept)
        self._licences: dict[str, str | None] = {}
        #: licence files past MAX_LICENCE_TOTAL -> why their licence is not recorded
        self._licences_dropped: dict[str, str] = {}
        self._licence_chars = 0
        self._databases: list[Database] | None = None
        self._tails = tuple({_tail(loc) for r in READERS for loc in r.locations})
        #: files `wants` took notice of (harness.snapshot.walk `ContentCollector`)
        self.noticed = 0

    @staticmethod
    def _rerooted(path: str) -> list[tuple[PackageReader, str, str]]:
        """(reader, location, path under the location) for every way the file could belong
        to a database folder of the same name."""
        out = []
        for reader in READERS:
            for location in reader.locations:
                tail = _tail(location)
                start = path.find(tail)
                while start >= 0:
                    rel = path[start + len(tail):]
                    candidate = location.rstrip("/") + "/" + rel
                    if reader.is_database(candidate) or (
                            reader.is_aux is not None and reader.is_aux(candidate)):
                        out.append((reader, location, candidate))
                    start = path.find(tail, start + 1)
        return out

    def cap(self, path: str) -> int:
        return self._limits.package_db_bytes

    def refuse(self, path: str, size: int, cap: int) -> None:
        if self._rerooted(path):
            self._refused[path] = (f"{path}: {size_text(size)} ({size:,} bytes), larger than "
                                   f"{self._limits.describe('package_db_bytes')}")

    def wants(self, path: str, head: bytes, size: int) -> bool:
        if size <= MAX_LICENCE_FILE and any(
                r.is_licence_file is not None and r.is_licence_file(path) for r in READERS) or (
                any(t in path for t in self._tails) and self._rerooted(path)):
            self.noticed += 1
            return True
        return False

    def take(self, path: str, data: bytes) -> None:
        for reader in READERS:
            if (reader.is_licence_file is not None and reader.read_licence is not None
                    and reader.is_licence_file(path)):
                licence = _licence_of(reader.read_licence, data)
                self._licences[path] = self._kept_licence(path, licence)
                if not self._rerooted(path):
                    return
        self._taken[path] = data
        self._databases = None

    def _kept_licence(self, path: str, licence: str | None) -> str | None:
        """The licence to keep of a licence file, within MAX_LICENCE_TOTAL characters in all;
        past it None, and the file noted in `_licences_dropped`."""
        if licence is None:
            return None
        if self._licence_chars + len(licence) > MAX_LICENCE_TOTAL:
            self._licences_dropped[path] = (
                f"{path}: licence not recorded: the image's licence files name more than "
                f"{MAX_LICENCE_TOTAL:,} characters of licences in all")
            return None
        self._licence_chars += len(licence)
        return licence

    def _fill_licences(self, reader: PackageReader, records: list[dict[str, Any]],
                       resolver: SymlinkResolver | None, problems: list[str]) -> None:
        """Each record without a licence takes the one its licence file names, if any; a
        licence dropped past the bound is one of the database's `problems`."""
        if reader.licence_file is None or reader.read_licence is None:
            return
        for record in records:
            if record.get("license"):
                continue
            path: str | None = reader.licence_file(record)
            if resolver is not None and path is not None:
                path = resolver.real_path(path)
            licence = self._licences.get(path) if path is not None else None
            if licence is not None:
                record["license"] = licence
            elif path is not None and path in self._licences_dropped:
                problems.append(self._licences_dropped[path])

    def databases(self, files: Mapping[str, dict[str, Any]] | None = None) -> list[Database]:
        """Every database found: each reader's locations resolved through the image's
        symlinks (`files`: the walk's records; without them, locations are taken as they
        are); a folder reached from several locations is one database, named by the
        location that is the folder itself, else by the first that reaches it."""
        if self._databases is not None and files is None:
            return self._databases
        resolver = SymlinkResolver(files) if files is not None else None
        found: list[Database] = []
        for reader in READERS:
            reals: dict[str, list[str]] = {}
            for location in reader.locations:
                real = resolver.real_path(location) if resolver is not None else location
                if real is not None:
                    reals.setdefault(real, []).append(location)
            for real, locations in reals.items():
                name = real if real in locations else locations[0]
                prefix = real.rstrip("/") + "/"
                db: dict[str, bytes] = {}
                aux: dict[str, bytes] = {}
                paths: list[str] = []
                for path, data in self._taken.items():
                    if not path.startswith(prefix):
                        continue
                    as_read = name.rstrip("/") + "/" + path[len(prefix):]
                    if reader.is_database(as_read):
                        db[as_read] = data
                        paths.append(path)
                    elif reader.is_aux is not None and reader.is_aux(as_read):
                        aux[as_read] = data
                if db:
                    found.append(Database(reader, name, real, db, aux, sorted(paths)))
        self._databases = found
        return found

    def file_lists(self, files: Mapping[str, dict[str, Any]] | None = None
                   ) -> tuple[FileLists, list[str]]:
        """Every package's recorded files (key `name:arch`), and the errors of lists that
        could not be read (they never hide the packages themselves)."""
        lists: FileLists = {}
        errors: list[str] = []
        for database in self.databases(files):
            reader = database.reader
            if reader.file_lists is None:
                continue
            try:
                for key, entries in reader.file_lists({**database.files, **database.aux}).items():
                    lists.setdefault(key, entries)
            except ParseError as exc:
                errors.append(str(exc))
            except Exception as exc:  # a reader bug must not hide the other checks
                errors.append(f"{reader.manager} file lists of {database.location} unreadable "
                              f"({type(exc).__name__}: {exc})")
        return lists, errors

    def result(self, files: Mapping[str, dict[str, Any]] | None = None
               ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """(package records by key, one entry per database found with its count or error,
        and its malformed entries or emptiness). A key two databases hold keeps the record
        of the one found first (the preferred location)."""
        records: dict[str, dict[str, Any]] = {}
        databases: list[dict[str, Any]] = []
        resolver = SymlinkResolver(files) if files is not None else None
        refused = dict(self._refused)
        for database in self.databases(files):
            entry = database.entry()
            prefix = database.real.rstrip("/") + "/"
            too_large = [refused.pop(p) for p in sorted(refused) if p.startswith(prefix)]
            if too_large:  # part of the database is missing: no count could be trusted
                entry["error"] = "; ".join(too_large[:5])
                databases.append(entry)
                continue
            problems: list[str] = []
            try:
                found = database.reader.read(database.files, problems)
            except ParseError as exc:
                entry["error"] = str(exc)
                databases.append(entry)
                continue
            except Exception as exc:  # a reader bug must not hide the other databases
                entry["error"] = (f"{', '.join(database.paths)}: unreadable "
                                  f"({type(exc).__name__}: {exc})")
                databases.append(entry)
                continue
            self._fill_licences(database.reader, found, resolver, problems)
            entry["count"] = len(found)
            if problems:
                entry["malformed"] = problems[:MAX_MALFORMED]
                entry["malformed_count"] = len(problems)
            elif not found:
                entry["empty"] = True
            databases.append(entry)
            for record in found:
                records.setdefault(package_key(record), record)
        for path, why in sorted(refused.items()):  # a database all of whose files were refused
            reader, location, _ = self._rerooted(path)[0]
            databases.append({"manager": reader.manager, "location": location, "paths": [path],
                              "error": why})
        return records, databases
