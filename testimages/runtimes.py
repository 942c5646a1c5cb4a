"""Local stand-ins for the seed's image families, made from Debian bookworm (which carries the
seed's versions), and for each one an untouched rebuild and a candidate with one planted
runtime break, for the runtime suites' end-to-end tests.

Each family image is ONE mmdebstrap run (minbase, no Recommends, apt lists and .deb caches
removed by mmdebstrap's clean-up) with the family's packages in `--include`. .NET and
microdnf are not in Debian: their suites are checked for a clear skip instead.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from testimages import CACHE, Recipe, debian_mirror, run
from testimages import rpm as rpmimg

SUITE = "bookworm"
JVM = "usr/lib/jvm/java-17-openjdk-amd64"
#: merged /usr set up by mmdebstrap itself: the usrmerge package would pull in perl (55 MB)
MERGED_USR = "/usr/share/mmdebstrap/hooks/merged-usr"
#: what debian:bookworm-slim leaves out: documentation, manuals, translations
SLIM = tuple(f"--dpkgopt={opt}" for opt in (
    "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*", "path-include=/usr/share/locale/locale.alias"))


def mmdebstrap(root: Path, packages: tuple[str, ...], variant: str = "minbase",
               *hooks: str) -> None:
    """One bookworm root from this machine's mirror, with `packages` and what they depend on."""
    # with manuals excluded, postinsts that add alternatives for them (openjdk) need the folder
    lean = [] if variant == "extract" else [
        f"--hook-dir={MERGED_USR}", *SLIM, '--essential-hook=mkdir -p "$1/usr/share/man/man1"',
        "--dpkgopt=force-unsafe-io"]  # no fsync per file: a quarter less time here
    run(["mmdebstrap", "--quiet", "--mode=root", f"--variant={variant}",
         f"--include={','.join(packages)}", *lean, *hooks, SUITE, str(root), debian_mirror()])
    # the mirror's host stays out of the image (sources.list is site-specific, as in real images)
    for sources in (root / "etc/apt/sources.list", root / "etc/resolv.conf"):
        if sources.is_file() and not sources.is_symlink():
            sources.write_text("")


#: what decides a Debian stand-in besides its recipe function: the suite and how roots are made
DEBIAN = (SUITE, inspect.getsource(mmdebstrap), MERGED_USR, *SLIM)


def _noop(root: Path) -> None:
    """An untouched rebuild: the same content imported again (a new image id)."""


def _delete(root: Path, *paths: str) -> None:
    for rel in paths:
        target = root / rel.lstrip("/")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()


# --- rt-python3.11 ------------------------------------------------------------------------

def _python(root: Path) -> None:
    mmdebstrap(root, ("python3.11", "python3-pip"))


def _python_without_sqlite3(root: Path) -> None:
    """A slimming pass that drops a stdlib module: `import sqlite3` breaks."""
    lib = root / "usr/lib/python3.11"
    _delete(root, "usr/lib/python3.11/sqlite3",
            *(str(p.relative_to(root)) for p in (lib / "lib-dynload").glob("_sqlite3.*.so")))


PYTHON = Recipe("rt-python3.11", _python, changes=('CMD ["python3"]',), extra=DEBIAN)
PYTHON_BROKEN = Recipe("rt-python3.11-no-sqlite3", _python_without_sqlite3, parent=PYTHON)


# --- rt-java17 ----------------------------------------------------------------------------

def _java(root: Path) -> None:
    mmdebstrap(root, ("openjdk-17-jre-headless",))


#: removes a module and every module that requires it from the JDK's own module image, with
#: jlink (run by the JDK's source launcher in the builder root): SOURCE MODULE OUTPUT
_SLIM_JAVA = """
import java.lang.module.*;
import java.util.*;
import java.util.spi.ToolProvider;
public class Slim {
    public static void main(String[] args) {
        Map<String, Set<String>> requires = new TreeMap<>();
        for (ModuleReference ref : ModuleFinder.ofSystem().findAll()) {
            Set<String> names = new HashSet<>();
            for (ModuleDescriptor.Requires r : ref.descriptor().requires()) names.add(r.name());
            requires.put(ref.descriptor().name(), names);
        }
        Set<String> removed = new TreeSet<>(List.of(args[0]));
        for (boolean grew = true; grew; ) {
            grew = false;
            for (Map.Entry<String, Set<String>> e : requires.entrySet())
                if (!removed.contains(e.getKey()) && !Collections.disjoint(e.getValue(), removed))
                    grew = removed.add(e.getKey());
        }
        System.err.println("removed: " + removed);
        List<String> keep = new ArrayList<>(requires.keySet());
        keep.removeAll(removed);
        System.exit(ToolProvider.findFirst("jlink").orElseThrow().run(System.out, System.err,
            "--add-modules", String.join(",", keep), "--output", args[1]));
    }
}
"""


def dpkg_version(root: Path, package: str) -> str:
    """The installed version of a package, read from the root's dpkg status."""
    for stanza in (root / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
        if fields.get("Package") == package:
            return fields["Version"]
    raise RuntimeError(f"{package} is not installed in {root}")


def _java_without_sql(root: Path) -> None:
    """The JRE's module image relinked without `java.sql` (and the modules that require it):
    `java --list-modules` no longer lists it. The `lib/modules` jimage cannot be edited in
    place: the JDK of the very same version, only extracted into a throw-away root (20 s, where
    installing it takes minutes), runs jlink."""
    version = dpkg_version(root, "openjdk-17-jre-headless")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".jdk-builder-", dir=CACHE) as tmp:
        builder = Path(tmp) / "root"
        builder.mkdir()
        mmdebstrap(builder, (f"openjdk-17-jdk-headless={version}",), "extract")
        (builder / "opt").mkdir(exist_ok=True)
        (builder / "opt/Slim.java").write_text(_SLIM_JAVA)
        # no /proc in the chroot: the loader cannot resolve $ORIGIN, so name the JDK's libraries
        env = {**os.environ, "LD_LIBRARY_PATH": f"/{JVM}/lib"}
        run(["chroot", str(builder), f"/{JVM}/bin/java", "/opt/Slim.java", "java.sql", "/opt/rt"],
            env=env)
        shutil.copy2(builder / "opt/rt/lib/modules", root / JVM / "lib/modules")


JAVA = Recipe("rt-java17", _java, changes=('CMD ["java", "-version"]',), extra=DEBIAN)
JAVA_BROKEN = Recipe("rt-java17-no-java-sql", _java_without_sql, parent=JAVA,
                     extra=(_SLIM_JAVA,))


# --- rt-nodejs18 --------------------------------------------------------------------------

def _node(root: Path) -> None:
    """nodejs alone: Debian's npm pulls ~470 packages (python3 among them) and triples the size."""
    mmdebstrap(root, ("nodejs",))


def _node_without_busboy(root: Path) -> None:
    """A package of node's global path dropped (Debian splits parts of node into
    /usr/share/nodejs): node starts, but undici's multipart `formData()` can no longer parse."""
    _delete(root, "usr/share/nodejs/busboy")


NODE = Recipe("rt-nodejs18", _node, changes=('CMD ["node"]',), extra=DEBIAN)
NODE_BROKEN = Recipe("rt-nodejs18-no-busboy", _node_without_busboy, parent=NODE)


# --- rt-php8.2 ----------------------------------------------------------------------------

def _php(root: Path) -> None:
    mmdebstrap(root, ("php8.2-cli",))


def _php_without_ctype(root: Path) -> None:
    """The ctype extension removed (its .so and the ini files that load it)."""
    for pattern in ("usr/lib/php/*/ctype.so", "etc/php/8.2/*/conf.d/*-ctype.ini",
                    "etc/php/8.2/mods-available/ctype.ini"):
        for path in root.glob(pattern):
            path.unlink()


PHP = Recipe("rt-php8.2", _php, changes=('CMD ["php", "-a"]',), extra=DEBIAN)
PHP_BROKEN = Recipe("rt-php8.2-no-ctype", _php_without_ctype, parent=PHP)


# --- busybox ------------------------------------------------------------------------------

def _busybox(root: Path) -> None:
    """Debian's busybox-static alone, as the busybox image is made: the binary, a link for
    every applet where busybox puts it (`--list-full`), passwd and group; no package database."""
    with tempfile.TemporaryDirectory(prefix=".busybox-", dir=CACHE) as tmp:
        extracted = Path(tmp) / "root"
        extracted.mkdir()
        mmdebstrap(extracted, ("busybox-static",), "extract")
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp"):
            (root / d).mkdir(parents=True, exist_ok=True)
        shutil.copy2(extracted / "bin/busybox", root / "bin/busybox")
    (root / "tmp").chmod(0o1777)
    listed = run(["chroot", str(root), "/bin/busybox", "--list-full"]).stdout.decode().split()
    for rel in listed:
        link = root / rel
        if not link.exists():
            link.symlink_to(os.path.relpath("/bin/busybox", "/" + str(Path(rel).parent)))
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                     "nobody:x:65534:65534:nobody:/home:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")


def _busybox_without_vi(root: Path) -> None:
    """An applet's link removed: `vi` is gone for users although busybox still has it."""
    _delete(root, "bin/vi")


BUSYBOX = Recipe("busybox", _busybox, changes=('CMD ["sh"]',), extra=DEBIAN)
BUSYBOX_BROKEN = Recipe("busybox-no-vi", _busybox_without_vi, parent=BUSYBOX)


# --- init ---------------------------------------------------------------------------------

def _init(root: Path) -> None:
    mmdebstrap(root, ("systemd-sysv",))


def _init_without_systemctl(root: Path) -> None:
    _delete(root, "usr/bin/systemctl")


INIT = Recipe("init", _init, changes=('CMD ["/sbin/init"]',), extra=DEBIAN)
INIT_BROKEN = Recipe("init-no-systemctl", _init_without_systemctl, parent=INIT)


# --- rt-static ----------------------------------------------------------------------------

_HELLO_C = '#include <stdio.h>\nint main(void) { puts("hello from a static binary"); return 0; }\n'


def _compile_hello(root: Path, *flags: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "hello.c"
        source.write_text(_HELLO_C)
        run(["gcc", "-O2", *flags, "-o", str(root / "hello"), str(source)])
    run(["strip", str(root / "hello")])


def _static(root: Path) -> None:
    """A scratch image: one statically linked binary, no shell, no package database."""
    _compile_hello(root, "-static")


def _static_now_dynamic(root: Path) -> None:
    """The binary rebuilt without -static: its loader and libc are not in the image."""
    (root / "hello").unlink()
    _compile_hello(root)


STATIC = Recipe("rt-static", _static, changes=('CMD ["/hello"]',),
                extra=(_HELLO_C, inspect.getsource(_compile_hello)))
STATIC_BROKEN = Recipe("rt-static-dynamic", _static_now_dynamic, parent=STATIC)


# --- an RPM-based image (rpm -qa against the static snapshot; microdnf is not in Debian) --

def _rpm_based(root: Path) -> None:
    """Debian's rpm in a minbase root, with an rpmdb of packages built by rpmbuild (two
    arches of one name and two signing keys: rpm lists more headers than name.arch keys)."""
    mmdebstrap(root, ("rpm",))
    # Debian's rpm keeps its database in ~/.rpmdb; an RPM-based system's is /var/lib/rpm
    (root / "etc/rpm").mkdir(exist_ok=True)
    (root / "etc/rpm/macros").write_text(f"%_dbpath {rpmimg.DBPATH}\n")
    rpmimg.rpm(root, "--initdb")
    rpmimg.install(root, "hello-rpm-1.0-1.x86_64.rpm", "libdemo-2.0-1.x86_64.rpm",
                   "libdemo-2.0-1.i686.rpm", "demo-data-1.0-1.noarch.rpm",
                   "tool-0.5-2.x86_64.rpm")
    rpmimg._import_key(root, "Harness Test")
    rpmimg._import_key(root, "Harness Test Two")


def _rpm_without_rpm(root: Path) -> None:
    """The package tool removed from a minimal image (its database stays)."""
    _delete(root, "usr/bin/rpm")


RPM = Recipe("rpm-minimal", _rpm_based, changes=('CMD ["/bin/bash"]',),
             extra=(*DEBIAN, rpmimg.CATALOG_DIGEST))
RPM_BROKEN = Recipe("rpm-minimal-no-rpm", _rpm_without_rpm, parent=RPM)


@dataclass(frozen=True)
class Family:
    """One stand-in: its base image, the planted break, and what the suite must name."""

    family: str
    base: Recipe
    broken: Recipe
    #: the baseline file the suite records (probes.FAMILY), and the change the candidate's
    #: run must report; rt-static records none (no shell): its entrypoint names `subject`
    aspect: str
    kind: str
    subject: str

    @property
    def rebuild(self) -> Recipe:
        """The untouched rebuild of the base (same content, new image id)."""
        return Recipe(f"{self.base.name}-rebuild", _noop, parent=self.base)


FAMILIES = (
    Family("rt-python3.11", PYTHON, PYTHON_BROKEN, "probes.rt-python3.11",
           "probe-item-removed", "sqlite3"),
    Family("rt-java17", JAVA, JAVA_BROKEN, "probes.rt-java17", "probe-item-removed", "java.sql"),
    Family("rt-nodejs18", NODE, NODE_BROKEN, "probes.rt-nodejs18", "probe-item-removed", "busboy"),
    Family("rt-php8.2", PHP, PHP_BROKEN, "probes.rt-php8.2", "probe-item-removed", "ctype"),
    Family("busybox", BUSYBOX, BUSYBOX_BROKEN, "probes.busybox", "probe-item-removed", "vi"),
    Family("init", INIT, INIT_BROKEN, "probes.init", "probe-item-removed", "systemctl"),
    Family("minimal", RPM, RPM_BROKEN, "probes.minimal", "probe-item-removed", "rpm"),
    Family("rt-static", STATIC, STATIC_BROKEN, "", "", "/hello"),
)


def image_size(tag: str) -> int:
    """The engine's size of an image, in bytes."""
    out = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=True)
    return int(json.loads(out.stdout)[0]["Size"])
