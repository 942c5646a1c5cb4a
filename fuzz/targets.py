"""Fuzz targets: the readers of untrusted image content, each with its seeds and its contract.

A target takes bytes and must end normally or with one of its `allowed` errors (the reader's
documented ParseError, TarFormatError or SourceError); any other exception, a hang or a result
that does not serialise to JSON (it goes into baselines) is a finding. Shared by the bounded
hypothesis run in tests/test_fuzz_readers.py and the long run of fuzz/run.py.

Inputs holding several files separate them with `SPLIT` (e.g. a dpkg status and a file list).
"""

from __future__ import annotations

import functools
import io
import json
import random
import re
import sqlite3
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ParseError, SourceError
from harness.filetable import FileTable, as_plain
from harness.snapshot.rpmheader import RpmHeader
from harness.rootfs.tarstream import TarFormatError, TarReader

SPLIT = b"\n--8<--\n"
REPO = Path(__file__).resolve().parent.parent
RPM_FIXTURES = REPO.parent / "shared" / "fixtures" / "rpmdb"
#: rpm database paths, chosen by the first byte of an input
RPM_PATHS = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/Packages.db", "/var/lib/rpm/Packages")


@dataclass(frozen=True)
class Target:
    """One reader under fuzzing."""

    name: str
    run: Callable[[bytes], Any]
    allowed: tuple[type[BaseException], ...]
    seeds: Callable[[], list[bytes]]
    #: a line-oriented text format: the mutator also cuts, repeats and swaps lines
    text: bool = False


def _json(value: Any) -> Any:
    if isinstance(value, FileTable):  # a walk's records: each as a baseline renders it
        plain = as_plain(value)
        if FileTable(plain) != value or plain != value:
            raise AssertionError("a file record does not come back from its packed row")
        value = plain
    json.dumps(value, sort_keys=True, ensure_ascii=True)  # baselines must hold it
    return value


# -- rpm ------------------------------------------------------------------------------------

def exercise_header(h: RpmHeader) -> None:
    """Decode everything a reader may ask of a header."""
    from harness.snapshot import rpm

    try:
        _json(rpm.package_record(h))
    except ParseError:
        pass
    _json(h.files())
    _json(h.paths())
    for tag in list(h._entries):  # noqa: SLF001 - every tag, whatever its type
        for get in (h.strings, h.integers, h.binary, h.string, h.integer):
            try:
                get(tag)
            except ParseError:
                pass


def rpm_header(data: bytes) -> None:
    exercise_header(RpmHeader(data, "fuzz"))


def _rpm_reader() -> Any:
    from harness.snapshot.packages import READERS
    from harness.snapshot.managers import load_builtin_readers

    load_builtin_readers()
    return next(r for r in READERS if r.manager == "rpm")


def rpm_database(data: bytes) -> None:
    """The rpm reader of the packages registry; the first byte picks the backend's path."""
    from harness.snapshot import rpm

    reader = _rpm_reader()
    files = {RPM_PATHS[data[0] % 3] if data else RPM_PATHS[0]: data[1:]}
    _json(reader.read(files))
    _json(reader.file_lists(files))
    _json(rpm.read_dependencies(files))


@functools.cache
def _rpm_blobs() -> list[bytes]:
    from harness.snapshot import rpmdb_bdb, rpmdb_ndb

    blobs: list[bytes] = []
    bdb, ndb = RPM_FIXTURES / "libuuid-bdb" / "Packages", RPM_FIXTURES / "sle15-bci-ndb" / "Packages.db"
    if bdb.is_file():
        blobs += [b for _, b in rpmdb_bdb.iter_blobs(bdb.read_bytes(), "bdb")]
    if ndb.is_file():
        all_ndb = [b for _, b in rpmdb_ndb.iter_blobs(ndb.read_bytes(), "ndb")]
        blobs += sorted(all_ndb, key=len)[:3]
    return blobs


def _sqlite(blobs: list[bytes]) -> bytes:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    con.executemany("INSERT INTO Packages (blob) VALUES (?)", [(b,) for b in blobs])
    con.commit()
    data = con.serialize()
    con.close()
    return data


def rpm_header_seeds() -> list[bytes]:
    return _rpm_blobs()[:4] or [b"\0\0\0\1\0\0\0\0" + bytes(16)]


def rpm_database_seeds() -> list[bytes]:
    seeds = []
    bdb = RPM_FIXTURES / "libuuid-bdb" / "Packages"
    if bdb.is_file():
        seeds.append(b"\x02" + bdb.read_bytes())
    blobs = _rpm_blobs()
    if blobs:
        seeds.append(b"\x00" + _sqlite(blobs[:2]))
    ndb = RPM_FIXTURES / "sle15-bci-ndb" / "Packages.db"
    if ndb.is_file():  # the whole fixture is large: keep its first slots (a truncation)
        seeds.append(b"\x01" + ndb.read_bytes()[:65536])
    return seeds or [b"\x00SQLite format 3\x00" + bytes(100)]


# -- ELF ------------------------------------------------------------------------------------

def elf_collector(data: bytes) -> None:
    from harness.snapshot.elf import ElfCollector

    try:
        collector = ElfCollector(workers=0)  # type: ignore[call-arg]
    except TypeError:
        collector = ElfCollector()
    path = "/usr/lib/libfuzz.so.1"
    collector.take(path, data)
    files = {path: {"type": "file", "mode": "0755", "uid": 0, "gid": 0, "size": len(data)},
             "/usr/lib/libfuzz.so": {"type": "symlink", "target": "libfuzz.so.1"}}
    _json(collector.result(files, {}))


def elf_seeds() -> list[bytes]:
    seeds = []
    for name in ("/usr/lib/x86_64-linux-gnu/libutil.so.1", "/usr/lib/x86_64-linux-gnu/libanl.so.1",
                 "/usr/bin/true", "/usr/lib/x86_64-linux-gnu/libBrokenLocale.so.1"):
        path = Path(name)
        if path.is_file() and path.stat().st_size < 200_000:
            seeds.append(path.read_bytes())
    return seeds or [b"\x7fELF\x02\x01\x01" + bytes(57)]


# -- dpkg and apk -----------------------------------------------------------------------------

def dpkg_database(data: bytes) -> None:
    from harness.snapshot import dpkg

    status, _, listed = data.partition(SPLIT)
    files = {dpkg.STATUS: status}
    problems: list[str] = []
    _json(dpkg.read_database(files, problems))  # unreadable entries reported, the rest read
    _json(problems)
    _json(dpkg.read_database(files))  # without a list: the first unreadable one raises
    files[dpkg.INFO_DIR + "base-files.list"] = listed
    _json(dpkg.read_file_lists(files))
    _json(dpkg.read_database({dpkg.STATUS_D + "base-files": status}))


def dpkg_seeds() -> list[bytes]:
    status = Path("/var/lib/dpkg/status")
    text = status.read_bytes() if status.is_file() else b""
    stanzas = [s for s in text.split(b"\n\n") if s.strip()]
    listed = Path("/var/lib/dpkg/info/base-files.list")
    tail = listed.read_bytes()[:2000] if listed.is_file() else b"/.\n/etc\n/etc/issue\n"
    seeds = [b"\n\n".join(stanzas[i:i + 4]) + b"\n" + SPLIT + tail for i in range(0, 12, 4)]
    return [s for s in seeds if s.strip()] or [
        b"Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n"
        + SPLIT + tail]


APK_SEED = b"""\
C:Q1hdUpqRv5mYgJEqW52UmVsvmeedk=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Maintainer <maintainer@example.org>
t:1698074706
c:4ab8ad6a6c16f1b2da7ac57f0e2e32bbbf4c9d8b
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1ikhw2W0hBfgKwVs+9DfSSxJAnHk=
R:libc.musl-x86_64.so.1
Z:Q1jAaCoDTVSQSeJYH6bRYiPhBqjrk=
F:etc
M:0:0:755

C:Q1Zc8pi6Tg1zHQ6NoqrR1TcmiQwJE=
P:busybox
V:1.36.1-r15
A:x86_64
S:509568
I:959488
T:Size optimized toolbox of many common UNIX utilities
L:GPL-2.0-only
o:busybox
D:so:libc.musl-x86_64.so.1
p:/bin/sh cmd:busybox=1.36.1-r15 cmd:sh=1.36.1-r15
r:busybox-initscripts
F:bin
R:busybox
a:0:0:755
Z:Q2AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=

"""


def apk_database(data: bytes) -> None:
    from harness.snapshot import apk

    files = {"/lib/apk/db/installed": data}
    _json(apk.read_database(files))
    _json(apk.read_file_lists(files))
    _json(apk.read_dependencies(files))


def apk_seeds() -> list[bytes]:
    return [APK_SEED, APK_SEED.split(b"\n\n")[0] + b"\n"]


# -- tar ----------------------------------------------------------------------------------------

def tar_reader(data: bytes) -> None:
    """The walk's tar reader alone (TarFormatError only), then the walk over it (which turns
    that into SourceError)."""
    from harness.snapshot.walk import walk

    reader = TarReader(io.BytesIO(data))
    for member in reader:
        member.name.encode("utf-8", "surrogateescape")
        if member.type not in (b"1", b"2", b"3", b"4", b"5", b"6"):
            for _ in reader.chunks():
                pass
    try:
        _json(walk(io.BytesIO(data), []))
    except SourceError:
        pass


def _tar(fmt: int, entries: list[tuple[str, bytes, dict[str, Any]]]) -> bytes:
    from testimages.hostile import tar_of

    return tar_of(entries, fmt)


SEED_ENTRIES: list[tuple[str, bytes, dict[str, Any]]] = [
    ("./", tarfile.DIRTYPE, {"mode": 0o755}),
    ("bin/busybox", tarfile.REGTYPE, {"data": b"\x7fELF" + bytes(60), "mode": 0o4755}),
    ("bin/sh", tarfile.SYMTYPE, {"linkname": "busybox"}),
    ("bin/ash", tarfile.LNKTYPE, {"linkname": "bin/busybox"}),
    ("usr/share/" + "long-" * 30 + "/x", tarfile.REGTYPE, {"data": b"x" * 700}),
    ("etc/.wh.gone", tarfile.REGTYPE, {"data": b""}),
    ("etc/caf\udce9", tarfile.REGTYPE, {"data": b"nonutf8", "uid": 70000, "gid": 3}),
    ("dev/null", tarfile.CHRTYPE, {"devmajor": 1, "devminor": 3}),
    ("run/fifo", tarfile.FIFOTYPE, {}),
]


def tar_seeds() -> list[bytes]:
    return [_tar(fmt, SEED_ENTRIES) for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT)] + [
        _tar(tarfile.USTAR_FORMAT, SEED_ENTRIES[:4])]


# -- the daemonless layer merge ---------------------------------------------------------------

class _OneLayer:
    """A blob store holding one layer (what `LayerMerge` reads)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def open(self, name: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self.data))  # type: ignore[arg-type]


def layer_merge(data: bytes) -> None:
    """A hostile layer (two, stacked: the input and a mutation of its upper half) merged and
    walked: SourceError only."""
    from harness.source.layermerge import LayerMerge, MergedReader
    from harness.snapshot.walk import walk

    upper, _, lower = data.partition(SPLIT)
    blobs = {"lower": _OneLayer(lower or upper), "upper": _OneLayer(upper)}

    class Store:
        def open(self, name: str) -> io.BufferedReader:
            return blobs[name].open(name)

    # a relative WorkingDir through the upper seed's symlink: the engine's create mirrored too
    merge = LayerMerge(Store(), [("lower", None), ("upper", None)], "fuzz",
                       workdir="lnk/wd/x", volumes=["/usr/share", "/etc/hosts/.."])
    reader = MergedReader(merge)
    try:  # a SourceError is the target's contract: the runner counts it, and learns its shape
        _json(walk(reader, []))
    finally:
        reader.close()


def layer_seeds() -> list[bytes]:
    base = _tar(tarfile.PAX_FORMAT, SEED_ENTRIES)
    upper = _tar(tarfile.GNU_FORMAT, [
        ("bin/.wh.sh", tarfile.REGTYPE, {"data": b""}),
        ("usr/.wh..wh..opq", tarfile.REGTYPE, {"data": b""}),
        ("bin/busybox", tarfile.REGTYPE, {"data": b"new"}),
        ("bin/zz", tarfile.LNKTYPE, {"linkname": "bin/busybox"}),
        ("../../etc/passwd", tarfile.REGTYPE, {"data": b"root"}),
        ("lnk", tarfile.SYMTYPE, {"linkname": "../usr/share"})])
    return [upper + SPLIT + base, base + SPLIT + upper]


# -- the bounds (harness.limits) -----------------------------------------------------------------

#: tiny bounds, so that every input meets them
FUZZ_LIMITS = dict(package_db_bytes=256, account_file_bytes=128, manifest_bytes=96,
                   expanded_bytes=1 << 16, sqlite_seconds=0.5, image_seconds=5.0)


def _limits() -> Any:
    from harness.limits import Limits

    return Limits(**FUZZ_LIMITS)  # type: ignore[arg-type]


def rpm_sqlite_bounded(data: bytes) -> None:
    """An rpmdb.sqlite of any schema (views, recursive ones, virtual tables, triggers) read
    under a query deadline: it ends, with records or a ParseError naming the file."""
    from harness.limits import budget

    with budget(_limits(), "fuzz"):
        _json(_rpm_reader().read({RPM_PATHS[0]: data}))


def sqlite_bytes(script: str) -> bytes:
    """The bytes of an SQLite database made by `script`."""
    con = sqlite3.connect(":memory:")
    con.executescript(script)
    data = con.serialize()
    con.close()
    return data


def rpm_sqlite_seeds() -> list[bytes]:
    db = sqlite_bytes
    blobs = _rpm_blobs()
    return [db("CREATE VIEW Packages AS WITH RECURSIVE f(hnum, blob) AS (SELECT 1, x'00' "
               "UNION ALL SELECT hnum + 1, blob FROM f) SELECT hnum, blob FROM f;"),
            db("CREATE TABLE t (hnum INTEGER, blob BLOB); CREATE VIEW Packages AS SELECT * FROM t;"),
            db("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB);"
               "CREATE TRIGGER x AFTER INSERT ON Packages BEGIN SELECT 1; END;"),
            *([_sqlite(blobs[:2])] if blobs else [])]


class _Capped:
    """Wraps a capped collector: a file handed over above its cap is a finding."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def take(self, path: str, data: bytes) -> None:
        if len(data) > self.inner.cap(path):
            raise AssertionError(f"{path}: {len(data)} bytes handed over, cap {self.inner.cap(path)}")
        self.inner.take(path, data)


def walk_capped(data: bytes) -> None:
    """A tar walked with the content collectors under tiny caps: none is handed more than
    its cap, and every refusal is recorded (SourceError only)."""
    from harness.snapshot.accounts import AccountsCollector
    from harness.snapshot.language import LanguageCollector
    from harness.snapshot.packages import PackagesCollector
    from harness.snapshot.managers import load_builtin_readers
    from harness.snapshot.walk import walk

    load_builtin_readers()
    limits = _limits()
    packages, accounts = PackagesCollector(limits), AccountsCollector(limits)
    language = LanguageCollector(limits)
    _json(walk(io.BytesIO(data), [_Capped(packages), _Capped(accounts), _Capped(language)]))
    _json(packages.result())
    _json([accounts.result(), accounts.errors, language.records, language.errors, language.refused])


def _jar(manifest: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as jar:
        jar.writestr("META-INF/MANIFEST.MF", manifest)
    return out.getvalue()


def walk_capped_seeds() -> list[bytes]:
    status = b"Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n"
    small_jar = _jar(b"Implementation-Title: a\nImplementation-Version: 1\n")
    entries: list[tuple[str, bytes, dict[str, Any]]] = [
        ("var/lib/dpkg/status", tarfile.REGTYPE, {"data": status}),
        ("var/lib/dpkg/status.d/big", tarfile.REGTYPE, {"data": status * 8}),
        ("etc/shadow", tarfile.REGTYPE, {"data": b"root::1:0:99999:7:::\n" * 8}),
        ("etc/passwd", tarfile.REGTYPE, {"data": b"root:x:0:0::/root:/bin/sh\n"}),
        ("app/a.jar", tarfile.REGTYPE, {"data": small_jar}),
        ("app/b.jar", tarfile.REGTYPE, {"data": _jar(b"Implementation-Version: 1\n" + b"x" * 4096)}),
        ("app/c.jar", tarfile.REGTYPE, {"data": _jar(b"Implementation-Version: 2\n", zipfile.ZIP_BZIP2)}),
        ("usr/lib/python3/dist-packages/a.dist-info/METADATA", tarfile.REGTYPE,
         {"data": b"Name: a\nVersion: 1\n" + b"x" * 200}),
    ]
    return [_tar(tarfile.PAX_FORMAT, entries), _tar(tarfile.GNU_FORMAT, entries[:4])]


def layers_budget(data: bytes) -> None:
    """A compressed layer (gzip, bzip2, xz; the first byte picks) merged and walked under a
    budget of 64 KiB expanded: it ends, with a snapshot or a SourceError."""
    from harness.limits import budget

    with budget(_limits(), "fuzz"):
        layer_merge(data)


def layers_budget_seeds() -> list[bytes]:
    import bz2
    import gzip
    import lzma

    base = _tar(tarfile.PAX_FORMAT, SEED_ENTRIES)
    big = _tar(tarfile.GNU_FORMAT, [("zeros", tarfile.REGTYPE, {"data": bytes(1 << 17)})])
    return [gzip.compress(base, mtime=0) + SPLIT + bz2.compress(base),
            gzip.compress(big, mtime=0) + SPLIT + gzip.compress(base, mtime=0),
            bz2.compress(base) + SPLIT + bz2.compress(big),
            lzma.compress(big) + SPLIT + base]


# -- baselines --------------------------------------------------------------------------------

_ASPECT = re.compile(rb'"aspect": "(files|abi|packages|metadata)"')


@functools.cache
def _baselines() -> Path:
    return Path(tempfile.mkdtemp(prefix="fuzz-baselines-"))


def baseline_file(data: bytes) -> None:
    """A baseline file as stored in git (hand-edited, damaged): the block reader of
    `baseline.load` must give exactly what the whole file read by `json.loads` gives (the same
    header and records, or BaselineCorrupt from both); read as the aspect its header names."""
    from harness import baseline
    from harness.errors import BaselineCorrupt

    named = _ASPECT.search(data[:400])
    aspect = named.group(1).decode() if named else "files"
    root = _baselines()
    path = baseline.aspect_path(root, "img", "x86_64", aspect)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    baseline._LOADED.clear()
    baseline._DIGESTS.clear()
    # every other input read against a snapshot's file table: a files baseline is then
    # held as what differs from it (harness.filetable), and must read the same
    like = _judged_files() if len(data) % 2 else None
    # reads that end anywhere in a line, as a large file's do
    chunk, baseline._CHUNK = baseline._CHUNK, 1 + len(data) % 61
    try:
        got: Any = baseline.load(root, "img", "x86_64", aspect, like)
    except BaselineCorrupt:
        got = None
    finally:
        baseline._CHUNK = chunk
    try:
        want: Any = baseline._checked(path, baseline._json(path, data.decode("ascii")), aspect)
    except (BaselineCorrupt, UnicodeDecodeError):
        want = None
    if got != want or (got is not None and dict(got[1].items()) != want[1]):
        raise AssertionError(f"the block reader and json.loads differ: {got!r:.200} != {want!r:.200}")


@functools.cache
def _judged_files() -> FileTable:
    """A snapshot's files, partly as the seeds' files baseline holds them."""
    table = FileTable({f"/usr/lib/f{i}": {
        "type": "file", "mode": "0644", "uid": 0, "gid": 0, "size": i,
        "sha256": format(i, "064x"), **({"package": "libc6"} if i % 3 else {})}
        for i in range(0, 60, 2)})
    table["/bin"] = {"type": "symlink", "mode": "0777", "uid": 0, "gid": 0, "target": "usr/bin"}
    table["/p/00001"] = {"type": "dir", "mode": "0755", "uid": 0, "gid": 0}
    return table


def baseline_seeds() -> list[bytes]:
    from harness import baseline

    files = {f"/usr/lib/f{i}": {"type": "file", "mode": "0644", "uid": 0, "gid": 0, "size": i,
                                "sha256": format(i, "064x"), "package": "libc6"} for i in range(40)}
    files["/bin"] = {"type": "symlink", "mode": "0777", "uid": 0, "gid": 0, "target": "usr/bin"}
    abi = {"libc.so.6": {"arch": "x86_64", "paths": ["/usr/lib/libc.so.6"], "needed": [],
                         "versions": ["GLIBC_2.34"], "packages": ["libc6"]},
           "libc.so.6:printf@@GLIBC_2.34": {"type": "FUNC", "bind": "GLOBAL", "default": True},
           "libc.so.6:environ@@GLIBC_2.34": {"type": "OBJECT", "bind": "WEAK", "size": 8,
                                               "default": True}}
    image = {"image_id": "sha256:" + "0" * 64, "arch": "x86_64", "size": 1}
    seeds = [baseline.render("files", image, files).encode()]
    seeds.append(baseline.render("abi", image, abi).encode())
    seeds.append(baseline.render("files", image, {}).encode())
    # the block reader cuts every 4,096 lines: a seed long enough to cross cuts
    many = {f"/p/{i:05d}": {"type": "dir", "mode": "0755", "uid": 0, "gid": 0} for i in range(9000)}
    seeds.append(baseline.render("files", image, many).encode())
    return seeds


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("rpmheader", rpm_header, (ParseError,), rpm_header_seeds),
    Target("rpmdb", rpm_database, (ParseError,), rpm_database_seeds),
    Target("elf", elf_collector, (ParseError,), elf_seeds),
    Target("dpkg", dpkg_database, (ParseError,), dpkg_seeds, text=True),
    Target("apk", apk_database, (ParseError,), apk_seeds, text=True),
    Target("tar", tar_reader, (TarFormatError,), tar_seeds),
    Target("layers", layer_merge, (SourceError,), layer_seeds),
    Target("rpmdb-bounded", rpm_sqlite_bounded, (ParseError,), rpm_sqlite_seeds),
    Target("walk-capped", walk_capped, (SourceError,), walk_capped_seeds),
    Target("layers-budget", layers_budget, (SourceError,), layers_budget_seeds),
    Target("baseline", baseline_file, (), baseline_seeds, text=True),
]}


# -- mutation -----------------------------------------------------------------------------------

INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFF, 0x10000, 0x1000, 512, 4096)


def mutate(data: bytes, rng: random.Random, corpus: list[bytes] | None = None,
           text: bool = False) -> bytes:
    """1-8 random mutations: bit flips, interesting integers (both byte orders), byte runs
    cut, repeated or inserted, a splice with another input, and line edits for text."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(10 if text else 8)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[min(pos, len(buf) - 1)] = rng.choice((0, 0xFF, 0x7F, 0x80, 0x20, 0x0A))
        elif op == 2:
            size = rng.choice((2, 4, 8))
            value = rng.choice(INTERESTING) % (1 << (8 * size))
            buf[pos:pos + size] = value.to_bytes(size, rng.choice(("big", "little")))
        elif op == 3:
            del buf[pos:pos + rng.choice((1, 4, 16, 512, 4096))]
        elif op == 4 and buf:
            start = rng.randrange(len(buf))
            chunk = buf[start:start + rng.choice((1, 8, 64, 512))]
            buf[pos:pos] = chunk * rng.choice((1, 2, 16))
        elif op == 5:
            buf[pos:pos] = rng.randbytes(rng.choice((1, 4, 32)))
        elif op == 6:
            del buf[pos:]
        elif op == 7 and corpus:
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            buf = buf[:pos] + bytearray(other[cut:])
        elif op >= 8:  # line edits
            lines = bytes(buf).split(b"\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            choice = rng.randrange(4)
            if choice == 0:
                del lines[i]
            elif choice == 1:
                lines.insert(i, lines[j])
            elif choice == 2:
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines[i] = lines[i][:rng.randrange(len(lines[i]) + 1)] + rng.choice(
                    (b":", b" ", b"\t", b"\xff", b"=", b"\x00", b"Package:", b"R:", b"F:"))
            buf = bytearray(b"\n".join(lines))
    return bytes(buf)
