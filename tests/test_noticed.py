"""The count each real collector keeps of the files it took notice of
(harness.snapshot.walk `ContentCollector.noticed`): a walk replaying another's members
(harness.snapshot.subtrees) shows a file again only when it moved some count, so a collector
that wanted a file, or kept anything of one it declined, must have counted it. Also the
memos a family's later members read their base's files through: licences by the licence
file's bytes, ELF facts decoded once the layer cache learnt them."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from harness.limits import Limits
from harness.snapshot import layercache, packages
from harness.snapshot.accounts import AccountsCollector
from harness.snapshot.elf import ElfCollector
from harness.snapshot.language import LanguageCollector
from harness.snapshot.managers import load_builtin_readers
from harness.snapshot.osrelease import OsReleaseCollector
from harness.snapshot.packages import PackagesCollector
from harness.snapshot.secrets import SecretsCollector

ELF = b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x03\x00\x3e\x00" + bytes(40)
KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n"
#: (path, head, size): files each collector takes, declines but notes, or ignores
PROBES = [
    ("/etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 26),
    ("/etc/group", b"root:x:0:\n", 10),
    ("/etc/os-release", b"ID=debian\n", 10),
    ("/usr/lib/os-release", b"ID=debian\n", 10),
    ("/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n", 33),
    ("/etc/ld.so.conf.d/x86_64-linux-gnu.conf", b"/usr/lib/x86_64-linux-gnu\n", 26),
    ("/usr/lib/x86_64-linux-gnu/libc.so.6", ELF, 2_000_000),
    ("/usr/lib/debug/.build-id/ab/cdef.debug", ELF, 9_000_000),
    ("/usr/lib/php/20220829/opcache.so", ELF, 300_000),
    ("/usr/share/doc/libc6/copyright", b"Format: https://www.debian.org/doc/packaging-manuals/"
     b"copyright-format/1.0/\n", 5000),
    ("/var/lib/dpkg/status", b"Package: libc6\n", 100_000),
    ("/var/lib/dpkg/info/libc6:amd64.list", b"/.\n/usr\n", 9000),
    ("/var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\x00", 5_000_000),
    ("/lib/apk/db/installed", b"C:Q1\nP:musl\n", 9000),
    ("/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
     b"Metadata-Version: 2.1\nName: six\n", 1000),
    ("/usr/lib/node_modules/npm/package.json", b'{"name": "npm"}', 15),
    ("/usr/share/java/x.jar", b"PK\x03\x04", 4000),
    ("/usr/lib/jvm/java-17/release", b'JAVA_VERSION="17"\n', 18),
    ("/root/.ssh/id_ed25519", KEY, len(KEY)),
    ("/home/u/.npmrc", b"//registry/:_authToken=x\n", 24),
    ("/root/.docker/config.json", b'{"auths": {}}', 13),
    ("/usr/share/zoneinfo/UTC", b"TZif2" + bytes(40), 114),
    ("/usr/bin/script.sh", b"#!/bin/sh\necho\n", 15),
    ("/usr/share/man/man1/ls.1.gz", b"\x1f\x8b\x08", 3000),
]


def _collectors() -> list[Any]:
    load_builtin_readers()
    limits = Limits()
    return [PackagesCollector(limits), AccountsCollector(limits), SecretsCollector(),
            LanguageCollector(limits), OsReleaseCollector(), ElfCollector(workers=0)]


@pytest.mark.parametrize("index", range(6))
def test_a_collector_counts_every_file_it_wanted_or_kept_anything_of(index: int) -> None:
    moved = set()
    for path, head, size in PROBES:
        collector = _collectors()[index]
        before = copy.deepcopy({k: v for k, v in vars(collector).items()
                                if k not in ("noticed", "_limits", "_pool", "_inflight")})
        wanted = collector.wants(path, head, size)
        after = {k: v for k, v in vars(collector).items()
                 if k not in ("noticed", "_limits", "_pool", "_inflight")}
        if wanted or after != before:
            moved.add(path)
            assert collector.noticed == 1, (type(collector).__name__, path)
        else:
            assert collector.noticed == 0, (type(collector).__name__, path)
    assert moved  # every collector takes notice of some probe


def test_the_probes_move_each_kind_of_collector() -> None:
    """What the counts cover: wanted files, a debug object's header, a PHP extension's
    record and a private key's finding (each declined); a time zone and a man page none."""
    noticed = {}
    for path, head, size in PROBES:
        collectors = _collectors()
        for collector in collectors:
            collector.wants(path, head, size)
        noticed[path] = sum(c.noticed for c in collectors)
    assert noticed["/usr/lib/debug/.build-id/ab/cdef.debug"] == 1
    assert noticed["/usr/lib/php/20220829/opcache.so"] == 2  # the ELF parser and a record
    assert noticed["/root/.ssh/id_ed25519"] == 1
    assert noticed["/usr/share/zoneinfo/UTC"] == noticed["/usr/share/man/man1/ls.1.gz"] == 0


def test_a_licence_file_is_read_once_per_content(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "_LICENCE_MEMO", {})
    monkeypatch.setattr(packages, "_memo_bytes", [0])
    calls: list[bytes] = []

    def read(data: bytes) -> str | None:
        calls.append(data)
        if data == b"bad":
            raise ValueError("a reader's bug")
        return data.decode().upper()

    assert packages._licence_of(read, b"mit") == "MIT"
    assert packages._licence_of(read, b"mit") == "MIT"
    assert packages._licence_of(read, b"bad") is None
    assert packages._licence_of(read, b"bad") is None
    assert calls == [b"mit", b"bad"]
    monkeypatch.setattr(packages, "MAX_LICENCE_MEMO", 4)
    packages._licence_of(read, b"gpl-2")  # past the bound: the memo starts again
    assert packages._licence_of(read, b"mit") == "MIT" and calls[-1] == b"mit"


def test_facts_learnt_are_decoded_once_for_later_walks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The facts a walk learnt serve later walks (and forked children) without decoding
    the entry again, equal to what decoding it gives."""
    monkeypatch.setattr(layercache, "_decoded", {})
    layer = tmp_path / "overlay2" / "l1" / "diff"
    (layer / "usr/lib").mkdir(parents=True)
    # a real object: one the parser reads without error, as the cache keeps only those
    (layer / "usr/lib/libx.so").write_bytes(Path(os.path.realpath("/bin/true")).read_bytes())
    from harness.snapshot.walk import walk
    from harness.source.layerdirs import LayerDirsReader

    elf = ElfCollector(workers=0)
    with layercache.using(tmp_path / "cache") as cache:
        files = walk(LayerDirsReader([layer], "test"), [elf])
        objects = elf.result(files, {})["objects"]
        cache.learn(files, objects)
        cache.save()
    digest = files["/usr/lib/libx.so"]["sha256"]
    decoded = layercache._decoded[(tmp_path / "cache", digest)]
    entry = layercache._loaded_shard(next((tmp_path / "cache").glob("*.layer")))["usr/lib/libx.so"]
    import marshal
    assert decoded == marshal.loads(entry[6])
