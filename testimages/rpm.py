"""A tiny RPM-based image: static busybox plus packages built with the real rpmbuild and
installed with the real rpm (Debian's, which writes an sqlite rpmdb), and candidates that each
carry one planted package change, for the rpm reader's oracle and end-to-end tests.

The base holds what real RPM images hold: an epoch, a noarch package, one name installed for
two architectures (multilib), config and doc files, a symlink, provides/requires, and two
imported signing keys (`gpg-pubkey`: packages of one name and no architecture).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from testimages import CACHE, Recipe, run

DBPATH = "/var/lib/rpm"
APPLETS = ("sh", "ls", "cat", "rm", "echo", "true", "env")


@dataclass(frozen=True)
class Rpm:
    """One binary package to build: NEVRA, metadata and content."""

    name: str
    version: str
    release: str
    arch: str = "x86_64"
    epoch: int | None = None
    license: str = "MIT"
    vendor: str = "Harness Tests"
    files: tuple[tuple[str, str], ...] = ()
    symlinks: tuple[tuple[str, str], ...] = ()
    config: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    modes: tuple[tuple[str, str], ...] = ()
    dirs: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        """The file rpmbuild writes: NAME-VERSION-RELEASE.ARCH.rpm."""
        return f"{self.name}-{self.version}-{self.release}.{self.arch}.rpm"


_HELLO = (("/usr/bin/hello-rpm", "#!/bin/sh\necho hello\n"),
          ("/usr/share/doc/hello-rpm/README", "hello docs\n"))
_LIB_DOC = ("/usr/share/doc/libdemo/README", "libdemo docs\n")

CATALOG = (
    Rpm("hello-rpm", "1.0", "1", files=_HELLO + (("/etc/hello.conf", "greeting=hi\n"),),
        symlinks=(("/usr/bin/hello", "hello-rpm"),), config=("/etc/hello.conf",),
        requires=("libdemo",), provides=("hello = 1.0",)),
    Rpm("hello-rpm", "1.1", "1", files=_HELLO + (("/etc/hello.conf", "greeting=hello\n"),),
        symlinks=(("/usr/bin/hello", "hello-rpm"),), config=("/etc/hello.conf",),
        requires=("libdemo",), provides=("hello = 1.1",)),
    Rpm("hello-rpm", "1.0", "1", arch="noarch", files=_HELLO,
        symlinks=(("/usr/bin/hello", "hello-rpm"),)),
    Rpm("libdemo", "2.0", "1", files=(("/usr/lib64/libdemo.so.2", "x86_64 lib\n"), _LIB_DOC),
        license="LGPLv2+", provides=("libdemo.so.2()(64bit)",)),
    Rpm("libdemo", "2.0", "1", arch="i686", files=(("/usr/lib/libdemo.so.2", "i686 lib\n"),
                                                   _LIB_DOC),
        license="LGPLv2+", provides=("libdemo.so.2",)),
    Rpm("libdemo", "1.9", "1", files=(("/usr/lib64/libdemo.so.2", "old x86_64 lib\n"),
                                      _LIB_DOC), license="LGPLv2+"),
    Rpm("demo-data", "1.0", "1", arch="noarch", epoch=1, license="MIT and BSD",
        files=(("/usr/share/demo/data.txt", "data\n"), ("/usr/share/demo/secret", "s\n")),
        modes=(("/usr/share/demo/secret", "0600"),), dirs=("/usr/share/demo",)),
    Rpm("demo-data", "1.0", "2", arch="noarch", epoch=1, license="GPLv3+",
        files=(("/usr/share/demo/data.txt", "data\n"), ("/usr/share/demo/secret", "s\n"))),
    Rpm("tool", "0.5", "2", epoch=3, files=(("/usr/bin/tool", "#!/bin/sh\n"),)),
    Rpm("tool", "0.4", "1", epoch=4, files=(("/usr/bin/tool", "#!/bin/sh\n"),)),
    Rpm("tool", "0.9", "1", epoch=2, files=(("/usr/bin/tool", "#!/bin/sh\n"),)),
)
#: covers the catalog and how it is built: a change rebuilds the packages and every image
CATALOG_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def _spec(pkg: Rpm, srcroot: Path) -> str:
    lines = [f"Name: {pkg.name}", f"Version: {pkg.version}", f"Release: {pkg.release}",
             f"Summary: {pkg.name} test package", f"License: {pkg.license}",
             f"Vendor: {pkg.vendor}", "AutoReqProv: no"]
    if pkg.epoch is not None:
        lines.append(f"Epoch: {pkg.epoch}")
    if pkg.arch == "noarch":
        lines.append("BuildArch: noarch")
    lines += [f"Requires: {r}" for r in pkg.requires] + [f"Provides: {p}" for p in pkg.provides]
    lines += ["%description", f"{pkg.name} for the harness tests.", "%install",
              f"cp -a {srcroot}/. %{{buildroot}}/", "%files"]
    modes = dict(pkg.modes)
    for path, _content in pkg.files:
        prefix = "%config(noreplace) " if path in pkg.config else ""
        prefix += "%doc " if "/doc/" in path else ""
        mode = modes.get(path, "0755" if "/bin/" in path else "0644")
        lines.append(f"%attr({mode},root,root) {prefix}{path}")
    lines += [path for path, _target in pkg.symlinks] + [f"%dir {d}" for d in pkg.dirs]
    return "\n".join(lines) + "\n"


def build_rpm(pkg: Rpm, out_dir: Path) -> Path:
    """Build one package with rpmbuild into `out_dir`."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        for path, content in pkg.files:
            target = src / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        for path, link in pkg.symlinks:
            target = src / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(link, target)
        spec = Path(tmp) / f"{pkg.name}.spec"
        spec.write_text(_spec(pkg, src))
        target_arch = [] if pkg.arch == "noarch" else ["--target", pkg.arch]
        run(["rpmbuild", "-bb", "--quiet", *target_arch, "--define", f"_topdir {tmp}/top",
             "--define", "__os_install_post %{nil}", "--define", "debug_package %{nil}",
             "--define", "_build_id_links none", "--define", "_binary_payload w1.gzdio",
             str(spec)])
        built = Path(tmp) / "top/RPMS" / pkg.arch / pkg.filename
        shutil.copy2(built, out_dir / pkg.filename)
    return out_dir / pkg.filename


def rpms() -> Path:
    """The folder of every catalog package, built once and cached by the catalog's hash."""
    target = CACHE / f"rpms-{CATALOG_DIGEST}"
    if (target / ".done").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / ".done").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            for pkg in CATALOG:
                build_rpm(pkg, target)
            (target / ".done").write_text("ok\n")
    return target


def rpm(root: Path, *args: str) -> None:
    """Run the host's rpm on an image root (no scripts, no dependency checks)."""
    run(["rpm", f"--root={root}", "--dbpath", DBPATH, *args])


def install(root: Path, *filenames: str, upgrade: bool = False) -> None:
    """Install (`-i`, beside what is there) or upgrade (`-U`, replacing it) catalog packages
    by file name; `--oldpackage` lets either go to a lower version."""
    rpm(root, "-U" if upgrade else "-i", "--oldpackage", "--nodeps", "--noscripts", "--notriggers",
        "--ignorearch",
        *(str(rpms() / f) for f in filenames))


def _import_key(root: Path, user: str) -> None:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "GNUPGHOME": home}
        run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
             f"{user} <tests@example.invalid>", "ed25519", "sign", "never"], env=env)
        key = subprocess.run(["gpg", "--armor", "--export"], env=env, capture_output=True,
                             check=True).stdout
        (Path(home) / "key.asc").write_bytes(key)
        rpm(root, "--import", str(Path(home) / "key.asc"))


def _base(root: Path) -> None:
    for d in ("bin", "etc", "tmp", "usr/bin", "root"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/os-release").write_text('ID=harness-rpm\nID_LIKE="rhel fedora"\nVERSION_ID="1"\n')
    rpm(root, "--initdb")
    install(root, "hello-rpm-1.0-1.x86_64.rpm", "libdemo-2.0-1.x86_64.rpm",
            "libdemo-2.0-1.i686.rpm", "demo-data-1.0-1.noarch.rpm", "tool-0.5-2.x86_64.rpm")
    # two signing keys: two `gpg-pubkey` packages of one name and no arch
    _import_key(root, "Harness Test")
    _import_key(root, "Harness Test Two")


BASE = Recipe("rpm-base", _base, changes=('CMD ["/bin/sh"]',), extra=(CATALOG_DIGEST,))


def _upgrade(root: Path) -> None:
    install(root, "hello-rpm-1.1-1.x86_64.rpm", upgrade=True)


def _remove(root: Path) -> None:
    rpm(root, "-e", "--nodeps", "--noscripts", "demo-data")


def _downgrade(root: Path) -> None:
    # erase by full NEVRA: `rpm -U` of a package without ELF colour would replace both arches
    rpm(root, "-e", "--nodeps", "--noscripts", "libdemo-2.0-1.x86_64")
    install(root, "libdemo-1.9-1.x86_64.rpm")


def _epoch_up(root: Path) -> None:
    install(root, "tool-0.4-1.x86_64.rpm", upgrade=True)


def _epoch_down(root: Path) -> None:
    install(root, "tool-0.9-1.x86_64.rpm", upgrade=True)


def _arch_change(root: Path) -> None:
    rpm(root, "-e", "--nodeps", "--noscripts", "hello-rpm")
    install(root, "hello-rpm-1.0-1.noarch.rpm")


def _license_change(root: Path) -> None:
    install(root, "demo-data-1.0-2.noarch.rpm", upgrade=True)


UPGRADED = Recipe("rpm-upgraded", _upgrade, parent=BASE)
REMOVED = Recipe("rpm-removed", _remove, parent=BASE)
DOWNGRADED = Recipe("rpm-downgraded", _downgrade, parent=BASE)
EPOCH_RAISED = Recipe("rpm-epoch-raised", _epoch_up, parent=BASE)
EPOCH_LOWERED = Recipe("rpm-epoch-lowered", _epoch_down, parent=BASE)
ARCH_CHANGED = Recipe("rpm-arch-changed", _arch_change, parent=BASE)
LICENSE_CHANGED = Recipe("rpm-license-changed", _license_change, parent=BASE)

#: Every candidate with one planted package change: (kind, subject, verdict).
PLANTED = {
    UPGRADED: ("package-upgraded", "hello-rpm", "info"),
    REMOVED: ("package-removed", "demo-data", "break"),
    DOWNGRADED: ("package-downgraded", "libdemo", "break"),
    EPOCH_RAISED: ("package-epoch-changed", "tool", "review"),
    EPOCH_LOWERED: ("package-epoch-changed", "tool", "break"),
    ARCH_CHANGED: ("package-arch-changed", "hello-rpm", "break"),
    LICENSE_CHANGED: ("license-changed", "demo-data", "review"),
}


# --- rpm's own answers, the oracle of the reader's tests ----------------------------------

_PACKAGE_QF = ("%{NAME}\t%{ARCH}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{EVR}\t%{SOURCERPM}\t"
               "%{LICENSE}\t%{VENDOR}\t%{LONGSIZE}\n")
_FILE_QF = ("[%{=NAME}\t%{=ARCH}\t%{FILENAMES}\t%{FILEMODES}\t%{LONGFILESIZES}\t%{FILEDIGESTS}\t"
            "%{FILEUSERNAME}\t%{FILEGROUPNAME}\t%{FILELINKTOS}\t%{FILEFLAGS}\t%{FILESTATES}\n]")
_DEP_QF = ("[%{=NAME}\t%{=ARCH}\tprovides\t%{PROVIDENAME}\n]"
           "[%{=NAME}\t%{=ARCH}\trequires\t%{REQUIRENAME}\n]")


def query(db_dir: Path, queryformat: str, backend: str | None = None) -> list[list[str]]:
    """`rpm -qa --qf` on a copy of a database folder (rpm wants to lock it), as tab-split rows.
    `backend` is rpm's `_db_backend` (`bdb_ro` reads a Berkeley DB file)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "db"
        shutil.copytree(db_dir, copy)
        defines = ["--define", f"_db_backend {backend}"] if backend else []
        proc = subprocess.run(["rpm", "--dbpath", str(copy), *defines, "-qa", "--qf", queryformat],
                              capture_output=True, check=True)
    text = proc.stdout.decode("utf-8", "surrogateescape")
    return [line.split("\t") for line in text.split("\n") if line]


def _none(value: str) -> str | None:
    return None if value == "(none)" else value


def oracle_packages(db_dir: Path, backend: str | None = None) -> list[dict[str, object]]:
    """rpm's own list of the installed packages, in the shape of the reader's records."""
    out: list[dict[str, object]] = []
    for row in query(db_dir, _PACKAGE_QF, backend):
        name, arch, epoch, version, release, evr, srpm, lic, vendor, size = row
        out.append({"manager": "rpm", "name": name, "arch": _none(arch) or "",
                    "epoch": None if epoch == "(none)" else int(epoch), "version": version,
                    "release": release, "evr": evr, "sourcerpm": _none(srpm),
                    "license": _none(lic), "vendor": _none(vendor),
                    "size": None if size == "(none)" else int(size)})
    return out


def oracle_files(db_dir: Path, backend: str | None = None) -> dict[str, list[dict[str, object]]]:
    """rpm's own file lists, `name:arch` -> files, in the reader's shape (digest without the
    algorithm prefix)."""
    lists: dict[str, list[dict[str, object]]] = {}
    for row in query(db_dir, _FILE_QF, backend):
        name, arch, path, mode, size, digest, user, group, link, flags, state = row
        lists.setdefault(f"{name}:{_none(arch) or ''}", []).append({
            "path": path, "mode": int(mode), "size": int(size), "digest": digest or None,
            "user": user or None, "group": group or None, "link": link or None,
            "flags": int(flags), "state": int(state)})
    return lists


def oracle_dependencies(db_dir: Path,
                        backend: str | None = None) -> dict[str, dict[str, list[str]]]:
    """rpm's own provides/requires names per `name:arch`."""
    deps: dict[str, dict[str, list[str]]] = {}
    for name, arch, kind, dep in query(db_dir, _DEP_QF, backend):
        entry = deps.setdefault(f"{name}:{_none(arch) or ''}", {"provides": [], "requires": []})
        entry[kind].append(dep)
    return deps


def _ostree(root: Path) -> None:
    # rpm-ostree's layout: the database under /usr/share/rpm, /var/lib/rpm a symlink to it
    (root / "usr/share").mkdir(parents=True, exist_ok=True)
    shutil.move(str(root / DBPATH.lstrip("/")), str(root / "usr/share/rpm"))
    os.symlink("../../usr/share/rpm", root / DBPATH.lstrip("/"))


def _mixed(root: Path) -> None:
    # two managers and a second rpm location: a dpkg status beside the rpm database, and a
    # copy of that database under /usr/lib/sysimage/rpm (a backend migration's leftover)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        "Package: tzdata\nStatus: install ok installed\nVersion: 2024a-0+deb12u1\n"
        "Architecture: all\nMaintainer: m <m@example.org>\nDescription: time zones\n")
    (root / "usr/lib/sysimage").mkdir(parents=True)
    shutil.copytree(root / DBPATH.lstrip("/"), root / "usr/lib/sysimage/rpm")


OSTREE = Recipe("rpm-ostree-layout", _ostree, parent=BASE)
MIXED = Recipe("rpm-mixed-databases", _mixed, parent=BASE)
