"""Damaged and hostile rpm databases: every failure is a ParseError naming the file, never
IndexError, struct.error, MemoryError or a silent "0 packages".

Mutations are seeded (a failure reproduces) and start from the real fixture databases:
truncations, flipped bytes where the structure lives, and absurd counts and offsets.
"""

from __future__ import annotations

import random
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.snapshot import rpmdb_bdb, rpmdb_ndb
from harness.errors import ParseError
from harness.snapshot.rpmheader import MAGIC, RpmHeader
from harness.snapshot import rpm
from harness.snapshot.packages import PackagesCollector
from harness.snapshot.managers import load_builtin_readers

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "rpmdb"


def fixture(name: str) -> bytes:
    """A fixture database's bytes, or skip saying where it was looked for."""
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"rpmdb fixtures not found at {FIXTURES} (shared/ must sit beside the repo)")
    return path.read_bytes()


def small_blob() -> bytes:
    """The one header of the Berkeley DB fixture (libuuid: a real, complete header)."""
    return next(rpmdb_bdb.iter_blobs(fixture("libuuid-bdb/Packages"), "Packages"))[1]


def exercise(header: RpmHeader) -> None:
    """Decode everything a reader may ask of a header."""
    rpm.package_record(header)
    header.files()
    for tag in list(header._entries):  # noqa: SLF001 - every tag, whatever its type
        for get in (header.strings, header.integers, header.binary):
            try:
                get(tag)
            except ParseError:
                pass


def only_parse_errors(action: Callable[[], Any]) -> str:
    """Run `action`; return "ok" or "error", letting any other exception fail the test."""
    try:
        action()
    except ParseError:
        return "error"
    return "ok"


def test_header_reads_with_and_without_magic() -> None:
    """Blobs in a database lack the 8-byte magic; blobs from a package file carry it."""
    blob = small_blob()
    assert RpmHeader(blob, "x").string(1000) == RpmHeader(MAGIC + blob, "x").string(1000)


def test_truncated_headers_raise_parse_error() -> None:
    """Every prefix of a header blob is an error naming where it came from."""
    blob = small_blob()
    for length in range(0, len(blob), 7):
        with pytest.raises(ParseError, match="origin-x"):
            RpmHeader(blob[:length], "origin-x")


def test_bogus_counts_and_offsets_raise_parse_error() -> None:
    """Entry counts and offsets far past the data never allocate or index blindly."""
    blob = bytearray(small_blob())
    il, _dl = struct.unpack_from(">II", blob)
    for index in range(il):
        for field, value in ((8, 0x7FFFFFF0), (12, 0xFFFFFFFF), (8, -16), (4, 99)):
            bad = bytearray(blob)
            fmt = ">i" if value < 0 else ">I"
            struct.pack_into(fmt, bad, 8 + 16 * index + field, value)
            only_parse_errors(lambda: exercise(RpmHeader(bytes(bad), "h")))
    for il_value, dl_value in ((0, 0), (0xFFFFFFFF, 0), (1, 0xFFFFFFFF), (0x10000, 16)):
        bad = bytearray(blob)
        struct.pack_into(">II", bad, 0, il_value, dl_value)
        with pytest.raises(ParseError):
            RpmHeader(bytes(bad), "h")


def test_flipped_header_bytes_never_escape_as_other_errors() -> None:
    """Random damage to the index and data: parse or ParseError, nothing else."""
    rng = random.Random(61)
    blob = small_blob()
    il, = struct.unpack_from(">I", blob)
    outcomes = set()
    for _ in range(3000):
        bad = bytearray(blob)
        for _ in range(rng.randint(1, 4)):
            # mostly the index, where offsets, counts and types live
            pos = rng.randrange(8 + 16 * il) if rng.random() < 0.8 else rng.randrange(len(bad))
            bad[pos] = rng.randrange(256)
        outcomes.add(only_parse_errors(lambda: exercise(RpmHeader(bytes(bad), "h"))))
    assert outcomes == {"ok", "error"}


def _mutations(data: bytes, rng: random.Random, hot: int, count: int) -> list[bytes]:
    """Truncations and byte flips, the flips mostly within the first `hot` bytes."""
    out = [data[:rng.randrange(len(data))] for _ in range(count // 4)]
    for _ in range(count - len(out)):
        bad = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            limit = min(hot, len(bad)) if rng.random() < 0.7 else len(bad)
            pos = rng.randrange(limit)
            bad[pos] = rng.randrange(256)
        out.append(bytes(bad))
    return out


def _read_all(blobs: Callable[[], Any]) -> None:
    # headers are only parsed here: decoding them is the header tests' business
    for origin_or_number, blob in blobs():
        RpmHeader(blob, str(origin_or_number))


def test_damaged_berkeley_db_raises_parse_error() -> None:
    """Metadata, hash pages and overflow chains damaged at random."""
    data = fixture("libuuid-bdb/Packages")
    rng = random.Random(5)
    outcomes = {only_parse_errors(lambda: _read_all(lambda: rpmdb_bdb.iter_blobs(bad, "P")))
                for bad in _mutations(data, rng, hot=3 * 4096, count=1500)}
    assert "error" in outcomes


def test_berkeley_db_overflow_loop_is_caught() -> None:
    """An overflow page pointing back at itself is a bad chain, not an endless loop."""
    data = bytearray(fixture("libuuid-bdb/Packages"))
    pagesize = struct.unpack_from("<I", data, 20)[0]
    for pgno in range(1, len(data) // pagesize):
        if data[pgno * pagesize + 25] == rpmdb_bdb.P_OVERFLOW:
            struct.pack_into("<I", data, pgno * pagesize + 16, pgno)
            break
    else:
        pytest.fail("the fixture has no overflow page")
    with pytest.raises(ParseError, match="overflow"):
        list(rpmdb_bdb.iter_blobs(bytes(data), "P"))


def test_damaged_ndb_raises_parse_error() -> None:
    """Slots, blob heads and tails damaged at random; checksums catch damaged contents."""
    data = fixture("sle15-bci-ndb/Packages.db")
    rng = random.Random(9)
    outcomes = {only_parse_errors(lambda: _read_all(lambda: rpmdb_ndb.iter_blobs(bad, "P")))
                for bad in _mutations(data, rng, hot=4096, count=160)}
    assert "error" in outcomes
    flipped = bytearray(data)
    flipped[300 * 16 + 100] ^= 0xFF  # inside the first package's blob
    with pytest.raises(ParseError, match="checksum"):
        list(rpmdb_ndb.iter_blobs(bytes(flipped), "P"))


def test_damaged_sqlite_raises_parse_error() -> None:
    """Truncated and scribbled-over sqlite databases."""
    data = fixture("cbl-mariner2-sqlite/rpmdb.sqlite")
    rng = random.Random(3)
    path = "/var/lib/rpm/rpmdb.sqlite"
    for bad in _mutations(data, rng, hot=len(data), count=24):
        only_parse_errors(lambda: rpm.read_database({path: bad}))
    with pytest.raises(ParseError, match="truncated"):
        rpm.read_database({path: data[: len(data) // 2]})


@pytest.mark.parametrize("path", ["/var/lib/rpm/rpmdb.sqlite", "/var/lib/rpm/Packages",
                                  "/usr/lib/sysimage/rpm/Packages.db"])
@pytest.mark.parametrize("content", [b"\0" * 4096, b"not a database at all" * 100])
def test_unknown_database_names_the_file(path: str, content: bytes) -> None:
    """Never zero packages: a foreign file is an error naming it."""
    with pytest.raises(ParseError, match=path.replace(".", r"\.")):
        rpm.read_database({path: content})


@pytest.mark.parametrize("path", ["/var/lib/rpm/rpmdb.sqlite", "/var/lib/rpm/Packages",
                                  "/usr/lib/sysimage/rpm/Packages.db"])
def test_empty_file_is_an_empty_database(path: str) -> None:
    """The rule of every manager: an existing empty database is 0 packages (the collector
    marks it empty, reported as info)."""
    assert rpm.read_database({path: b""}, []) == []
    collector = _collector({path: b""})
    assert collector.result()[1][0]["empty"] is True


def _collector(files: dict[str, bytes]) -> PackagesCollector:
    load_builtin_readers()
    collector = PackagesCollector()
    for path, data in files.items():
        assert collector.wants(path, data[:4096], len(data))
        collector.take(path, data)
    return collector


def test_database_of_no_packages_is_empty(tmp_path: Path) -> None:
    """A valid rpm database holding nothing is 0 packages; one without rpm's table is an
    error."""
    db = tmp_path / "rpmdb.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB)")
    con.commit()
    con.close()
    assert rpm.read_database({"/var/lib/rpm/rpmdb.sqlite": db.read_bytes()}, []) == []
    con = sqlite3.connect(db)
    con.execute("DROP TABLE Packages")
    con.commit()
    con.close()
    with pytest.raises(ParseError, match="Packages table"):
        rpm.read_database({"/var/lib/rpm/rpmdb.sqlite": db.read_bytes()})


def test_collector_reports_a_damaged_database_as_an_error() -> None:
    """Through the registry: the database entry carries the error, no package is invented."""
    load_builtin_readers()
    collector = PackagesCollector()
    path = "/var/lib/rpm/Packages"
    assert collector.wants(path, b"", 0)
    collector.take(path, fixture("libuuid-bdb/Packages")[:5000])
    records, databases = collector.result()
    assert records == {}
    assert databases == [{"manager": "rpm", "location": "/var/lib/rpm", "paths": [path],
                          "error": databases[0]["error"]}]
    assert path in databases[0]["error"]


def test_collector_reads_an_intact_database() -> None:
    """Through the registry, keyed `name:arch`, with the count in the database entry."""
    load_builtin_readers()
    collector = PackagesCollector()
    collector.take("/usr/lib/sysimage/rpm/Packages.db", fixture("sle15-bci-ndb/Packages.db"))
    records, databases = collector.result()
    assert databases == [{"manager": "rpm", "location": "/usr/lib/sysimage/rpm",
                          "paths": ["/usr/lib/sysimage/rpm/Packages.db"], "count": 35}]
    assert records["glibc:x86_64"]["evr"] == "2.31-9.3.2"


def test_one_damaged_header_is_skipped_and_named(tmp_path: Path) -> None:
    """One scribbled-over package header: the others are read, the bad one named by file and
    number (a package-record-malformed finding); all of them bad is an error."""
    db = tmp_path / "rpmdb.sqlite"
    db.write_bytes(fixture("cbl-mariner2-sqlite/rpmdb.sqlite"))
    con = sqlite3.connect(db)
    [(first,)] = con.execute("SELECT min(hnum) FROM Packages").fetchall()
    con.execute("UPDATE Packages SET blob = ? WHERE hnum = ?", (b"\x00" * 64, first))
    con.commit()
    con.close()
    path = "/var/lib/rpm/rpmdb.sqlite"
    problems: list[str] = []
    records = rpm.read_database({path: db.read_bytes()}, problems)
    assert len(records) == 128
    assert len(problems) == 1 and problems[0].startswith(f"{path}: package #{first}: ")
    con = sqlite3.connect(db)
    con.execute("UPDATE Packages SET blob = ?", (b"\x00" * 64,))
    con.commit()
    con.close()
    with pytest.raises(ParseError, match="no readable package header"):
        rpm.read_database({path: db.read_bytes()}, [])
