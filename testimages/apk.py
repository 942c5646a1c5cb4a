"""A tiny Alpine-like image: static busybox plus an apk database, `lib/apk/db/installed`.

Debian has no apk-tools, so the database is written here, in apk's documented installed-db
format (one stanza per package: `C P V A S I T U L o m t c D p r` then per directory `F` with
its `M` acl and per file `R` with its `a` acl and `Z` checksum), for files that really are in
the image with those checksums. The catalog below is the test's oracle.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from testimages import Recipe

INSTALLED = "lib/apk/db/installed"
CATALOG_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


@dataclass(frozen=True)
class ApkFile:
    """A file in a package: name in its directory, content, optional `uid:gid:mode` acl."""

    name: str
    content: bytes
    acl: str | None = None


@dataclass(frozen=True)
class ApkDir:
    """A directory (no leading `/`), its optional acl and files."""

    path: str
    files: tuple[ApkFile, ...] = ()
    acl: str | None = None


@dataclass(frozen=True)
class ApkPackage:
    """One installed package, as apk records it."""

    name: str
    version: str
    arch: str = "x86_64"
    license: str = "MIT"
    origin: str | None = None
    depends: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    installed_size: int = 4096
    dirs: tuple[ApkDir, ...] = ()


def _busybox() -> bytes:
    return Path("/bin/busybox").read_bytes()


CATALOG = (
    ApkPackage("musl", "1.2.4-r2", origin="musl", installed_size=622592,
               provides=("so:libc.musl-x86_64.so.1=1",),
               dirs=(ApkDir("lib", (ApkFile("ld-musl-x86_64.so.1", b"not really musl\n",
                                            "0:0:755"),)),)),
    ApkPackage("busybox", "1.36.1-r2", license="GPL-2.0-only", installed_size=946176,
               depends=("so:libc.musl-x86_64.so.1",), provides=("cmd:busybox=1.36.1-r2",),
               dirs=(ApkDir("bin", (ApkFile("busybox", b"", "0:0:755"),)),
                     ApkDir("etc", (ApkFile("securetty", b"console\n"),)))),
    ApkPackage("alpine-baselayout-data", "3.4.3-r1", license="GPL-2.0-only",
               origin="alpine-baselayout",
               dirs=(ApkDir("etc", (ApkFile("hostname.sample", b"localhost\n"),
                                    ApkFile("shadow.sample", b"root:*::0:::::\n",
                                            "0:42:640:Q1AAAAAAAAAAAAAAAAAAAAAAAAA="))),
                     ApkDir("var/empty", acl="0:0:555"))),
    ApkPackage("ca-certificates-bundle", "20230506-r0", license="MPL-2.0 AND MIT",
               origin="ca-certificates",
               dirs=(ApkDir("etc/ssl/certs", (ApkFile("ca-certificates.crt", b"-----\n"),)),)),
    ApkPackage("alpine-keys", "2.4-r1", arch="noarch",
               dirs=(ApkDir("usr/share/apk/keys", (ApkFile("alpine.rsa.pub", b"key\n"),)),)),
    ApkPackage("demo-rc", "1.0-r0", license="BSD-3-Clause",
               dirs=(ApkDir("usr/bin", (ApkFile("demo-rc", b"#!/bin/sh\n", "0:0:755"),)),)),
)


def _checksum(content: bytes) -> str:
    """apk's `Q1` checksum: base64 of the sha1."""
    return "Q1" + base64.b64encode(hashlib.sha1(content).digest()).decode()


def installed_db(packages: tuple[ApkPackage, ...]) -> str:
    """The `installed` file apk would write for these packages."""
    stanzas = []
    for pkg in packages:
        lines = [f"C:{_checksum(pkg.name.encode() + pkg.version.encode())}", f"P:{pkg.name}",
                 f"V:{pkg.version}", f"A:{pkg.arch}", f"S:{pkg.installed_size // 3}",
                 f"I:{pkg.installed_size}", f"T:{pkg.name} for the harness tests",
                 "U:https://example.invalid/", f"L:{pkg.license}", f"o:{pkg.origin or pkg.name}",
                 "m:Harness Tests <tests@example.invalid>", "t:1700000000",
                 "c:0123456789abcdef0123456789abcdef01234567"]
        if pkg.depends:
            lines.append("D:" + " ".join(pkg.depends))
        if pkg.provides:
            lines.append("p:" + " ".join(pkg.provides))
        for directory in pkg.dirs:
            lines.append(f"F:{directory.path}")
            if directory.acl:
                lines.append(f"M:{directory.acl}")
            for f in directory.files:
                lines.append(f"R:{f.name}")
                if f.acl:
                    lines.append(f"a:{f.acl}")
                lines.append(f"Z:{_checksum(_content(directory, f))}")
        stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas) + "\n"


def _content(directory: ApkDir, f: ApkFile) -> bytes:
    return _busybox() if (directory.path, f.name) == ("bin", "busybox") else f.content


def write_packages(root: Path, packages: tuple[ApkPackage, ...]) -> None:
    """Put every package's files in the root and the database describing them."""
    for pkg in packages:
        for directory in pkg.dirs:
            folder = root / directory.path
            folder.mkdir(parents=True, exist_ok=True)
            if directory.acl:
                folder.chmod(int(directory.acl.split(":")[2], 8))
            for f in directory.files:
                target = folder / f.name
                target.write_bytes(_content(directory, f))
                target.chmod(int(f.acl.split(":")[2], 8) if f.acl else 0o644)
    db = root / INSTALLED
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_text(installed_db(packages))


def _base(root: Path) -> None:
    for d in ("etc/apk", "tmp", "root", "lib/apk/db"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    write_packages(root, CATALOG)
    for applet in ("sh", "ls", "cat"):
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc/os-release").write_text('ID=alpine\nVERSION_ID=3.19.0\n')
    (root / "etc/apk/world").write_text("busybox\nalpine-baselayout-data\nca-certificates-bundle\n")
    for name in ("triggers", "scripts.tar", "lock"):
        (root / "lib/apk/db" / name).touch()


BASE = Recipe("apk-base", _base, changes=('CMD ["/bin/sh"]',), extra=(CATALOG_DIGEST,))


def _bump(versions: dict[str, str]) -> tuple[ApkPackage, ...]:
    return tuple(replace(p, version=versions.get(p.name, p.version)) for p in CATALOG)


def _upgrade(root: Path) -> None:
    # r10 after r2: a string comparison would call this a downgrade
    (root / INSTALLED).write_text(installed_db(_bump({"busybox": "1.36.1-r10"})))


def _downgrade(root: Path) -> None:
    # a release candidate sorts before the release it precedes
    (root / INSTALLED).write_text(installed_db(_bump({"demo-rc": "1.0_rc1-r0"})))


UPGRADED = Recipe("apk-upgraded", _upgrade, parent=BASE)
DOWNGRADED = Recipe("apk-downgraded", _downgrade, parent=BASE)
PLANTED = {
    UPGRADED: ("package-upgraded", "busybox", "info"),
    DOWNGRADED: ("package-downgraded", "demo-rc", "break"),
}
