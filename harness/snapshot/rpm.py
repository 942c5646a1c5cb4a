"""rpm databases, read from the image's files in all three backends rpm has used.

- sqlite `rpmdb.sqlite` (rpm >= 4.16: Fedora, RHEL 9, OpenCloudOS 9), table Packages(hnum, blob);
- ndb `Packages.db` (SUSE): `harness.snapshot.rpmdb_ndb`;
- Berkeley DB hash `Packages` (rpm < 4.16: CentOS 7/8, RHEL 8): `harness.snapshot.rpmdb_bdb`.

Each yields one header blob per package (`harness.snapshot.rpmheader`). The database lives in
`/usr/lib/sysimage/rpm/`, `/var/lib/rpm/` or (rpm-ostree) `/usr/share/rpm/`; one is often a
symlink to another, resolved by the packages collector. The image's own rpm is never run.

Package records stay small and flat (they go into baselines, one line each); provides/requires
names and per-file lists are read by `read_dependencies` and `read_file_lists`. A damaged,
truncated or foreign database is a ParseError naming the file; an empty file or a database
of no packages is 0 packages; a package header that cannot be read is skipped and reported,
unless no header can be read.
"""

from __future__ import annotations

import functools
import sqlite3
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from harness import limits as bounds
from harness.snapshot import rpmdb_bdb, rpmdb_ndb
from harness.snapshot import rpmheader as tags
from harness.errors import ParseError
from harness.limits import Limits
from harness.snapshot.rpmheader import RpmHeader
from harness.snapshot.packages import PackageReader, package_key
from harness.snapshot.manager import Manager
from harness.versions import rpm_compare, rpm_record_compare

DB_DIRS = ("/usr/lib/sysimage/rpm/", "/var/lib/rpm/", "/usr/share/rpm/")
LOCATIONS = tuple(d.rstrip("/") for d in DB_DIRS)
#: file name -> backend, in the order rpm's own backend detection probes them (lib/backend/dbi.c)
BACKENDS = {"rpmdb.sqlite": "sqlite", "Packages.db": "ndb", "Packages": "bdb"}
WAL = "-wal"
T = TypeVar("T")
_PATHS = frozenset(d + n + s for d in DB_DIRS for n in BACKENDS
                   for s in ("", WAL) if s == "" or n == "rpmdb.sqlite")
SQLITE_MAGIC = b"SQLite format 3\x00"


def is_database(path: str) -> bool:
    """True for the files that make up an rpm database (the sqlite WAL included)."""
    return path in _PATHS


def select_database(files: dict[str, bytes]) -> tuple[str, str]:
    """(backend, path) of the database rpm would read among the files collected.

    Should an image hold several (the older ones are leftovers of a backend migration), the
    first in rpm's detection order wins, then `/usr/lib/sysimage/rpm`, the current location.
    """
    for name, backend in BACKENDS.items():
        for directory in DB_DIRS:
            if directory + name in files:
                return backend, directory + name
    raise ParseError(f"{', '.join(sorted(files))}: a write-ahead log without its rpm database")


def iter_blobs(files: dict[str, bytes]) -> Iterator[tuple[str, bytes]]:
    """(origin, header blob) for every package of the selected database."""
    backend, path = select_database(files)
    data = files[path]
    if not data:
        return  # an empty file: a database of no packages
    if backend == "sqlite":
        blobs = _sqlite_blobs(path, data, files.get(path + WAL))
    elif backend == "ndb":
        blobs = rpmdb_ndb.iter_blobs(data, path)
    else:
        blobs = rpmdb_bdb.iter_blobs(data, path)
    for number, blob in blobs:
        yield f"{path}: package #{number}", blob


def _guarded(read: Callable[..., T]) -> Callable[..., T]:
    """A slip past the parsers' own checks still becomes a ParseError naming the files."""

    @functools.wraps(read)
    def guarded(files: dict[str, bytes], *args: Any) -> T:
        try:
            return read(files, *args)
        except (struct.error, IndexError, ValueError, OverflowError, MemoryError) as exc:
            names = ", ".join(sorted(files))
            raise ParseError(f"{names}: damaged rpm database ({type(exc).__name__}: {exc})") \
                from exc

    return guarded


@_guarded
def read_headers(files: dict[str, bytes], problems: list[str] | None = None) -> list[RpmHeader]:
    """Every readable package header of the database (a header lacking name, version or
    release is unreadable too). Unreadable ones go to `problems` ("file: package #N: why");
    when none is readable, or `problems` is None, the first is a ParseError."""
    headers: list[RpmHeader] = []
    found: list[str] = []
    for origin, blob in iter_blobs(files):
        try:
            header = RpmHeader(blob, origin)
            package_record(header)
        except ParseError as exc:
            if problems is None:
                raise
            found.append(str(exc))
            continue
        except (struct.error, IndexError, ValueError, OverflowError) as exc:
            if problems is None:
                raise
            found.append(f"{origin}: damaged header ({type(exc).__name__}: {exc})")
            continue
        headers.append(header)
    if found and not headers:
        raise ParseError(f"{found[0]} (no readable package header: {len(found)} unreadable)")
    if problems is not None:
        problems.extend(found)
    return headers


@_guarded
def read_database(files: dict[str, bytes], problems: list[str] | None = None
                  ) -> list[dict[str, Any]]:
    """Package records (the registry's reader function), one per `name:arch`."""
    return merge_instances([package_record(h) for h in read_headers(files, problems)])


def merge_instances(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per `name:arch`: install-only packages (kernels) and imported keys
    (`gpg-pubkey`, all without arch) can hold several versions of one name and arch. The
    newest stands for them, the others listed in its `other_evrs`, so none is lost silently."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(package_key(record), []).append(record)
    merged: list[dict[str, Any]] = []
    for group in groups.values():
        if len(group) == 1:
            merged.append(group[0])
            continue
        group.sort(key=functools.cmp_to_key(_evr_order))
        merged.append({**group[-1], "other_evrs": [r["evr"] for r in group[:-1]]})
    return merged


def _evr_order(a: dict[str, Any], b: dict[str, Any]) -> int:
    return rpm_compare((a["epoch"], a["version"], a["release"]),
                       (b["epoch"], b["version"], b["release"]))


@_guarded
def read_file_lists(files: dict[str, bytes]) -> dict[str, list[dict[str, Any]]]:
    """`name:arch` -> the files its package owns (path, mode, size, digest, user, group,
    link, flags, state). Several installed versions of one name:arch (install-only packages
    such as kernels) own the union of their files."""
    lists: dict[str, list[dict[str, Any]]] = {}
    for h in read_headers(files, []):
        lists.setdefault(package_key(package_record(h)), []).extend(h.files())
    return lists


@_guarded
def read_dependencies(files: dict[str, bytes]) -> dict[str, dict[str, list[str]]]:
    """`name:arch` -> {"provides": names, "requires": names}, as the header lists them."""
    deps: dict[str, dict[str, list[str]]] = {}
    for h in read_headers(files, []):
        entry = deps.setdefault(package_key(package_record(h)), {"provides": [], "requires": []})
        entry["provides"] += h.strings(tags.PROVIDENAME)
        entry["requires"] += h.strings(tags.REQUIRENAME)
    return deps


def package_record(h: RpmHeader) -> dict[str, Any]:
    """The flat record of one package, in the shape every reader returns; rpm adds `vendor`
    and `sourcerpm` (the source package file as rpm prints it; `source` is its name)."""
    name, version, release = h.string(tags.NAME), h.string(tags.VERSION), h.string(tags.RELEASE)
    if not name or version is None or release is None:
        raise ParseError(f"{h.origin}: header lacks name, version or release")
    epoch = h.integer(tags.EPOCH)
    sourcerpm = h.string(tags.SOURCERPM)
    if sourcerpm == "(none)":  # rpm writes its spelling of "absent" into gpg-pubkey headers
        sourcerpm = None
    size = h.integer(tags.LONGSIZE) if h.has(tags.LONGSIZE) else h.integer(tags.SIZE)
    return {
        "manager": "rpm",
        "name": name,
        "arch": h.string(tags.ARCH) or "",
        "epoch": epoch,
        "version": version,
        "release": release,
        "evr": (f"{epoch}:" if epoch is not None else "") + f"{version}-{release}",
        "source": source_name(sourcerpm),
        "sourcerpm": sourcerpm,
        "license": h.string(tags.LICENSE),
        "vendor": h.string(tags.VENDOR),
        "size": size,
    }


def source_name(sourcerpm: str | None) -> str | None:
    """`util-linux-2.32.1-42.el8.src.rpm` -> `util-linux` (name-version-release.src.rpm)."""
    if not sourcerpm:
        return None
    stem = sourcerpm
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if stem.endswith(suffix):
            stem = stem[:-len(suffix)]
            break
    parts = stem.rsplit("-", 2)
    return parts[0] if len(parts) == 3 and parts[0] else stem


# --- sqlite -------------------------------------------------------------------------------

def _sqlite_blobs(path: str, data: bytes, wal: bytes | None) -> Iterator[tuple[int, bytes]]:
    if not data.startswith(SQLITE_MAGIC) or len(data) < 100:
        raise ParseError(f"{path}: not an SQLite database (unknown format)")
    _check_sqlite_size(path, data)
    try:
        if wal:
            rows = _rows_with_wal(data, wal)
        else:
            rows = _rows_in_memory(data)
    except sqlite3.Error as exc:
        raise ParseError(f"{path}: unreadable SQLite rpm database: {exc}") from exc
    for number, blob in rows:
        if not isinstance(blob, bytes):
            raise ParseError(f"{path}: package #{number} is not a blob")
        yield number, blob


def _check_sqlite_size(path: str, data: bytes) -> None:
    """A truncated file must not pass for a smaller database."""
    page_size, = struct.unpack_from(">H", data, 16)
    page_size = 65536 if page_size == 1 else page_size
    pages, = struct.unpack_from(">I", data, 28)
    change, valid_for = struct.unpack_from(">I", data, 24)[0], struct.unpack_from(">I", data, 92)[0]
    # the in-header page count is trusted only when its "valid for" counter is current
    if pages and change == valid_for and len(data) < pages * page_size:
        raise ParseError(f"{path}: truncated: {len(data)} bytes, the header counts {pages} pages "
                         f"of {page_size}")


_QUERY = "SELECT hnum, blob FROM Packages ORDER BY hnum"


def _rows_in_memory(data: bytes) -> list[tuple[int, Any]]:
    # A database in WAL mode (header bytes 18-19 = 2) cannot be deserialized; with no WAL
    # content to replay, marking it a rollback-journal database reads the same pages.
    image = bytearray(data)
    if image[18] == 2 and image[19] == 2:
        image[18] = image[19] = 1
    con = sqlite3.connect(":memory:")
    try:
        con.deserialize(bytes(image))
        return _query(con)
    finally:
        con.close()


def _rows_with_wal(data: bytes, wal: bytes) -> list[tuple[int, Any]]:
    # the WAL holds committed transactions not yet checkpointed: sqlite replays it only from
    # files on disk, in a folder it may write (-shm)
    with tempfile.TemporaryDirectory(prefix="harness-rpmdb-") as tmp:
        db = Path(tmp) / "rpmdb.sqlite"
        db.write_bytes(data)
        Path(str(db) + WAL).write_bytes(wal)
        con = sqlite3.connect(db)
        try:
            return _query(con)
        finally:
            con.close()


def _query(con: sqlite3.Connection) -> list[tuple[int, Any]]:
    """The Packages rows, from a table only (a view, a recursive one above all, or a virtual
    table runs whatever the image wrote), within the query's time bound."""
    running = bounds.current()
    limits = running.limits if running is not None else Limits()
    seconds = limits.sqlite_seconds if running is None else min(limits.sqlite_seconds,
                                                                running.seconds_left())
    deadline = time.monotonic() + seconds
    con.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    try:
        con.execute("PRAGMA trusted_schema = OFF")
        found = con.execute("SELECT type, sql FROM sqlite_master WHERE name = 'Packages' "
                            "COLLATE NOCASE").fetchall()
        if found and (found[0][0] != "table"
                      or str(found[0][1] or "").lstrip().upper().startswith("CREATE VIRTUAL")):
            kind = "a virtual table" if found[0][0] == "table" else f"a {found[0][0]}"
            raise sqlite3.DatabaseError(f"its Packages is {kind}, not a table: refused")
        return list(con.execute(_QUERY))
    except sqlite3.OperationalError as exc:
        if time.monotonic() > deadline:
            raise sqlite3.DatabaseError(f"the query took longer than "
                                        f"{limits.describe('sqlite_seconds')}") from None
        raise sqlite3.DatabaseError(f"no rpm Packages table ({exc})") from exc
    finally:
        con.set_progress_handler(None, 0)


#: rpm in the registry of managers (harness.snapshot.managers)
MANAGER = Manager("rpm", rpm_record_compare, purl_type="rpm", distro=True,
                  reader=PackageReader("rpm", is_database, read_database, read_file_lists,
                                       locations=LOCATIONS))
