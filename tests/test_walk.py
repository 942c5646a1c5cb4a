"""The one-pass walk and its tar reader, against archives written by Python's tarfile in
every format, including long, non-UTF-8 and hostile names."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from harness import baseline
from harness.errors import SourceError
from harness.snapshot.walk import walk


def _archive(fmt: int, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def _file(name: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid = len(data), mode, uid, gid
    return info, data


def _entry(name: str, kind: bytes, **attrs: object) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, None


LONG = "usr/share/" + "/".join(["deep" * 10] * 6) + "/file.txt"
NON_UTF8 = b"etc/caf\xe9-\xff.conf".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT],
                         ids=["gnu", "pax", "ustar"])
def test_walk_reads_every_entry_type(fmt: int) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB: spans buffer refills
    entries = [
        _entry("./", tarfile.DIRTYPE, mode=0o755),
        _entry("bin", tarfile.DIRTYPE, mode=0o755),
        _file("bin/busybox", big, mode=0o4755),
        _entry("bin/sh", tarfile.SYMTYPE, linkname="busybox", mode=0o777),
        _entry("bin/ash", tarfile.LNKTYPE, linkname="bin/busybox", mode=0o4755),
        _entry("tmp", tarfile.DIRTYPE, mode=0o1777),
        _entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
        _entry("run/fifo", tarfile.FIFOTYPE, mode=0o600),
        _file("etc/empty", b"", uid=1000, gid=1001),
        _file(".dockerenv", b""),
    ]
    if fmt != tarfile.USTAR_FORMAT:
        entries.append(_file(LONG, b"long\n"))
        entries.append(_file(NON_UTF8, b"x"))
    files = walk(_archive(fmt, entries), [])
    assert files["/bin/busybox"] == {"type": "file", "mode": "4755", "uid": 0, "gid": 0,
                                     "size": len(big), "sha256": hashlib.sha256(big).hexdigest()}
    assert files["/bin/sh"]["target"] == "busybox" and files["/bin/sh"]["type"] == "symlink"
    assert files["/bin/ash"]["link"] == "/bin/busybox"
    assert files["/bin/ash"]["sha256"] == files["/bin/busybox"]["sha256"]
    assert files["/tmp"]["mode"] == "1777"
    assert files["/dev/null"] == {"type": "char", "mode": "0666", "uid": 0, "gid": 0, "dev": "1,3"}
    assert files["/run/fifo"]["type"] == "fifo"
    assert files["/etc/empty"]["uid"] == 1000 and files["/etc/empty"]["gid"] == 1001
    assert "/.dockerenv" not in files and "/" not in files
    if fmt != tarfile.USTAR_FORMAT:
        assert files["/" + LONG]["size"] == 5
        assert "/" + NON_UTF8 in files


def test_non_utf8_names_survive_the_baseline_round_trip(tmp_path: Path) -> None:
    files = walk(_archive(tarfile.GNU_FORMAT, [_file(NON_UTF8, b"x")]), [])
    baseline.write(tmp_path, "img", "x86_64", "files", {}, files)
    text = (tmp_path / "img/x86_64/files.json").read_text(encoding="ascii")
    json.loads(text)  # plain ASCII JSON any tool can read
    _, records = baseline.load(tmp_path, "img", "x86_64", "files")
    assert records == files
    (name,) = records
    assert name.encode("utf-8", "surrogateescape") == b"/etc/caf\xe9-\xff.conf"


def test_collectors_get_whole_content_of_what_they_want() -> None:
    class Want:
        def __init__(self) -> None:
            self.got: dict[str, bytes] = {}

        def wants(self, path: str, head: bytes, size: int) -> bool:
            return head.startswith(b"\x7fELF") or path == "/etc/empty"

        def take(self, path: str, data: bytes) -> None:
            self.got[path] = data

    elf = b"\x7fELF" + b"z" * (3 << 20)
    collector = Want()
    walk(_archive(tarfile.PAX_FORMAT, [_file("a.txt", b"a" * 1000), _file("lib/x.so", elf),
                                       _file("etc/empty", b"")]), [collector])
    assert collector.got == {"/lib/x.so": elf, "/etc/empty": b""}


def test_truncated_stream_is_a_source_error() -> None:
    data = _archive(tarfile.GNU_FORMAT, [_file("a", b"x" * 5000)]).getvalue()
    with pytest.raises(SourceError, match="ends inside"):
        walk(io.BytesIO(data[:2000]), [])


def test_garbage_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="checksum"):
        walk(io.BytesIO(b"this is not a tar stream at all" * 100), [])


def test_dotdot_names_are_recorded_not_resolved() -> None:
    files = walk(_archive(tarfile.GNU_FORMAT, [_file("../../etc/passwd", b"x")]), [])
    assert list(files) == ["/../../etc/passwd"]


class _Counting(io.BytesIO):
    """A seekable stream that counts the bytes read out of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_bytes = 0

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        got = super().readinto(buffer)
        self.read_bytes += got
        return got


def _tar_of(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_headers_only_pass_seeks_past_member_data() -> None:
    from harness.rootfs.tarstream import TarReader

    data = _tar_of([("a", b"x" * 5), ("big", b"\1" * (8 << 20)), ("z", b"zz")])
    stream = _Counting(data)
    names = [(m.name, m.size) for m in TarReader(stream, seek=True)]
    assert names == [("a", 5), ("big", 8 << 20), ("z", 2)]
    assert stream.read_bytes < 3 << 20  # the 8 MiB member was skipped, not read
    plain = _Counting(data)
    assert [(m.name, m.size) for m in TarReader(plain)] == names
    assert plain.read_bytes == len(data)


def test_a_seek_past_the_end_is_a_truncated_member() -> None:
    from harness.rootfs.tarstream import TarFormatError, TarReader

    data = _tar_of([("big", b"\1" * (8 << 20))])[: 4 << 20]  # the member ends past the stream
    with pytest.raises(TarFormatError, match="ends inside a member's data"):
        list(TarReader(_Counting(data), seek=True))


def test_wants_is_shown_the_first_wants_head_bytes_of_every_file() -> None:
    """The head `wants` sees is the file's first min(size, WANTS_HEAD) bytes, whatever the
    file's size (what the layer cache keeps of a known file is that much, no more); a key
    header within it is found, one past it is not."""
    from harness.snapshot.secrets import SecretsCollector
    from harness.snapshot.walk import WANTS_HEAD

    from conftest import Heads

    key = b"-----BEGIN PRIVATE KEY-----"
    datas = {"/small": b"abc", "/large": bytes(range(256)) * 4096,
             "/key-in-head": b"#" * (WANTS_HEAD - len(key)) + key + b"\n",
             "/key-past-head": b"#" * (WANTS_HEAD - len(key) + 1) + key + b"\n",
             # the secrets collector looks for a key header in the first 256 bytes: the
             # head must hold them
             "/key-at-200": b"#" * 200 + key + b"\n"}
    heads, secrets = Heads(), SecretsCollector()
    walk(_archive(tarfile.PAX_FORMAT, [_file(p[1:], d) for p, d in datas.items()]),
         [heads, secrets])
    assert heads.seen == {p: d[:WANTS_HEAD] for p, d in datas.items()}
    assert secrets.result() == {"/key-at-200": "private-key", "/key-in-head": "private-key"}
