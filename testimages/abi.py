"""ELF ABI fixtures: library pairs compiled with gcc and linker version scripts, one per rule of
docs/compat-rules.md, and small images built around them (glibc multiarch, RPM-style lib64, musl).

Every image carries the host's own glibc (libc.so.6 and its loader), so its programs load as
they would on a real distribution, and the gate's linkage check sees a complete closure.
"""

from __future__ import annotations

import inspect
import os
import shutil
import sqlite3
import subprocess
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from testimages import Recipe, debian_mirror, run
from testimages.debian import MINBASE
from testimages.debs import dpkg


def triplet() -> str:
    """The host's multiarch triplet (`x86_64-linux-gnu`)."""
    return subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True,
                          check=True).stdout.strip()


def host_glibc() -> tuple[Path, Path]:
    """(libc.so.6, the program interpreter) of the host, real files."""
    libc = Path(f"/lib/{triplet()}/libc.so.6").resolve()
    interp = Path("/lib64/ld-linux-x86-64.so.2").resolve()
    return libc, interp


@dataclass(frozen=True)
class Lib:
    """One build of `libfoo`: C source, linker version script (None: unversioned), soname."""

    source: str
    script: str | None
    soname: str = "libfoo.so.1"
    #: further linker arguments (search paths, extra dependencies)
    ldflags: tuple[str, ...] = ()


def compile_library(lib: Lib, out_dir: Path, cc: str = "gcc", libs: tuple[Path, ...] = ()) -> Path:
    """Build `lib` into `out_dir/SONAME` (with debug info: abidiff compares types with it),
    linked against `libs`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / f".{lib.soname}.c"
    src.write_text(textwrap.dedent(lib.source))
    target = out_dir / lib.soname
    cmd = [cc, "-g", "-O0", "-shared", "-fPIC", "-o", str(target), str(src),
           f"-Wl,-soname,{lib.soname}"]
    if lib.script is not None:
        script = out_dir / f".{lib.soname}.map"
        script.write_text(textwrap.dedent(lib.script))
        cmd.append(f"-Wl,--version-script={script}")
    for dep in libs:
        cmd += [f"-L{dep.parent}", f"-l:{dep.name}"]
    run([*cmd, *lib.ldflags])
    src.unlink()
    return target


def compile_program(source: str, target: Path, libs: list[Path], cc: str = "gcc",
                    extra: tuple[str, ...] = ()) -> Path:
    """Build a program linked against `libs` (each named by its soname: `-l:SONAME`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "main.c"
        src.write_text(textwrap.dedent(source))
        cmd = [cc, "-O0", "-o", str(target), str(src)]
        for lib in libs:
            cmd += [f"-L{lib.parent}", f"-l:{lib.name}"]
        run([*cmd, *extra])
    return target


@dataclass(frozen=True)
class Pair:
    """Two builds of libfoo, a consumer of the old one, and what the gate must say."""

    name: str
    old: Lib
    new: Lib
    #: C statements of the consumer's main() that use the old library's ABI
    uses: str
    #: (kind, subject, verdict) the gate must report for the new build
    expect: tuple[str, str, str]
    #: docs/compat-rules.md is stricter than abidiff here (a grown variable: abidiff says bit 4)
    stricter: bool = False


_BASE_SRC = """
    int foo_init(void) { return 1; }
    int foo_extra(void) { return 2; }
"""
_BASE_MAP = "FOO_1.0 { global: foo_init; foo_extra; local: *; };\n"
_TWO_NODES = """
    FOO_1.0 { global: foo_init; local: *; };
    FOO_1.1 { global: foo_extra; } FOO_1.0;
"""
_DECLS = "int foo_init(void); int foo_extra(void);\n"

PAIRS = (
    Pair("function-removed", Lib(_BASE_SRC, _BASE_MAP),
         Lib("int foo_init(void) { return 1; }\n", _BASE_MAP),
         "return foo_init() + foo_extra();",
         ("symbol-removed", "libfoo.so.1:foo_extra@FOO_1.0", "break")),
    Pair("version-node-removed", Lib(_BASE_SRC, _TWO_NODES), Lib(_BASE_SRC, _BASE_MAP),
         "return foo_init() + foo_extra();",
         ("symbol-version-removed", "libfoo.so.1:@FOO_1.1", "break")),
    Pair("variable-grew", Lib(_BASE_SRC + "int foo_table[4] = {1};\n",
                              "FOO_1.0 { global: foo_init; foo_extra; foo_table; local: *; };"),
         Lib(_BASE_SRC + "int foo_table[8] = {1};\n",
             "FOO_1.0 { global: foo_init; foo_extra; foo_table; local: *; };"),
         "extern int foo_table[4]; return foo_init() + foo_table[0];",
         ("symbol-size-changed", "libfoo.so.1:foo_table@FOO_1.0", "break"), stricter=True),
    Pair("function-became-object",
         Lib(_BASE_SRC + "int foo_mode(void) { return 3; }\n",
             "FOO_1.0 { global: foo_init; foo_extra; foo_mode; local: *; };"),
         Lib(_BASE_SRC + "int foo_mode = 3;\n",
             "FOO_1.0 { global: foo_init; foo_extra; foo_mode; local: *; };"),
         "extern int foo_mode(void); return foo_init() + foo_mode();",
         ("symbol-type-changed", "libfoo.so.1:foo_mode@FOO_1.0", "break")),
    Pair("function-made-hidden", Lib(_BASE_SRC, _BASE_MAP),
         Lib("""
             int foo_init(void) { return 1; }
             __attribute__((visibility("hidden"))) int foo_extra(void) { return 2; }
         """, _BASE_MAP),
         "return foo_init() + foo_extra();",
         ("symbol-removed", "libfoo.so.1:foo_extra@FOO_1.0", "break")),
    Pair("soname-bumped", Lib(_BASE_SRC, _BASE_MAP), Lib(_BASE_SRC, _BASE_MAP, "libfoo.so.2"),
         "return foo_init();",
         ("soname-changed", "libfoo.so.1", "break")),
    Pair("function-and-node-added", Lib(_BASE_SRC, _BASE_MAP),
         Lib(_BASE_SRC + "int foo_new(void) { return 4; }\n",
             _BASE_MAP + "FOO_1.1 { global: foo_new; } FOO_1.0;\n"),
         "return foo_init() + foo_extra();",
         ("symbol-added", "libfoo.so.1:foo_new@FOO_1.1", "info")),
    Pair("default-version-moved", Lib(_BASE_SRC, _BASE_MAP),
         Lib("""
             int foo_init_v1(void) { return 1; }
             int foo_init_v2(void) { return 10; }
             __asm__(".symver foo_init_v1, foo_init@FOO_1.0");
             __asm__(".symver foo_init_v2, foo_init@@FOO_2.0");
             int foo_extra(void) { return 2; }
         """, """
             FOO_1.0 { global: foo_init; foo_extra; local: *; };
             FOO_2.0 { global: foo_init; } FOO_1.0;
         """),
         "return foo_init() + foo_extra();",
         ("symbol-added", "libfoo.so.1:foo_init@FOO_2.0", "info")),
)
PAIRS_BY_NAME = {p.name: p for p in PAIRS}


#: a recipe's hash covers its build function; these helpers decide the content too
_HELPERS = tuple(inspect.getsource(f) for f in (compile_library, compile_program))


def _glibc_base(root: Path) -> None:
    """A merged-/usr Debian-style root holding only the host's glibc and ld.so.conf."""
    libdir = root / "usr/lib" / triplet()
    libdir.mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/lib64").mkdir(parents=True)
    (root / "etc/ld.so.conf.d").mkdir(parents=True)
    for name in ("lib", "lib64", "bin"):
        os.symlink(f"usr/{name}", root / name)
    libc, interp = host_glibc()
    shutil.copy2(libc, libdir / "libc.so.6")
    shutil.copy2(interp, libdir / interp.name)
    os.symlink(f"../lib/{triplet()}/{interp.name}", root / "usr/lib64" / interp.name)
    (root / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    (root / f"etc/ld.so.conf.d/{triplet()}.conf").write_text(
        f"# Multiarch support\n/usr/local/lib/{triplet()}\n/lib/{triplet()}\n/usr/lib/{triplet()}\n")


GLIBC_BASE = Recipe("abi-glibc-base", _glibc_base, changes=('CMD ["/usr/bin/foo-user"]',))


def install_pair_side(root: Path, pair: Pair, side: str) -> None:
    """Put one build of the pair's library, and a consumer built against the OLD one, in a
    root made from GLIBC_BASE."""
    libdir = root / "usr/lib" / triplet()
    lib = pair.old if side == "old" else pair.new
    compile_library(lib, libdir)
    with tempfile.TemporaryDirectory() as tmp:
        old = compile_library(pair.old, Path(tmp))
        source = f"{_DECLS}int main(void) {{ {pair.uses} }}\n"
        compile_program(source, root / "usr/bin/foo-user", [old])


_HELPERS += (inspect.getsource(install_pair_side),)


def pair_recipe(pair: Pair, side: str) -> Recipe:
    """The image of one side (`old` or `new`) of a pair."""

    def build(root: Path) -> None:
        install_pair_side(root, PAIRS_BY_NAME[pair.name], side)

    lib = pair.old if side == "old" else pair.new
    return Recipe(f"abi-{pair.name}-{side}", build, parent=GLIBC_BASE,
                  extra=(pair.name, side, lib.source, lib.script or "", lib.soname,
                         pair.old.source, pair.old.script or "", pair.uses, *_HELPERS))


def pair_library(root: Path, pair: Pair, side: str) -> Path:
    """The library file of one side inside that side's root folder."""
    lib = pair.old if side == "old" else pair.new
    return root / "usr/lib" / triplet() / lib.soname


# -- an RPM-style image: lib64, ld.so.conf.d with a relative include, $ORIGIN RUNPATH ----------

_RPM_SPEC = """\
Name: {name}
Version: 1.0
Release: 1
Summary: harness ABI fixture
License: MIT
BuildArch: x86_64
%description
harness ABI fixture
%install
cp -a {stage}/. %{{buildroot}}/
%files
{files}
"""


def _rpm_package(name: str, stage: Path, work: Path) -> Path:
    files = sorted("/" + str(p.relative_to(stage)) for p in stage.rglob("*")
                   if p.is_file() or p.is_symlink())
    spec = work / f"{name}.spec"
    spec.write_text(_RPM_SPEC.format(name=name, stage=stage, files="\n".join(files)))
    run(["rpmbuild", "-bb", "--define", f"_topdir {work / 'top'}",
         "--define", "__strip /bin/true", "--define", "debug_package %{nil}",
         "--define", "__os_install_post %{nil}", "--define", "_build_id_links none", str(spec)])
    return next((work / "top/RPMS").rglob(f"{name}-1.0-1.*.rpm"))


def _rpm_install(root: Path, rpms: list[Path]) -> None:
    dbpath = "/var/lib/rpm"
    run(["rpm", "--root", str(root), "--dbpath", dbpath, "--initdb"])
    run(["rpm", "--root", str(root), "--dbpath", dbpath, "-i", "--nodeps", "--noscripts",
         "--ignorearch", "--ignoreos", "--nosignature", "--nodigest", *map(str, rpms)])
    db = root / dbpath.lstrip("/") / "rpmdb.sqlite"
    with sqlite3.connect(db) as conn:  # fold the write-ahead log into the database file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()


def _rpm_image(root: Path) -> None:
    """Fedora-like: /lib64 -> usr/lib64, glibc in /usr/lib64, libfoo in a folder that only
    ld.so.conf.d names, an app under /opt whose RUNPATH is $ORIGIN/../lib."""
    for name in ("lib", "lib64", "bin", "sbin"):
        (root / "usr" / name).mkdir(parents=True, exist_ok=True)
        os.symlink(f"usr/{name}", root / name)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        glibc = work / "glibc"
        (glibc / "usr/lib64").mkdir(parents=True)
        libc, interp = host_glibc()
        shutil.copy2(libc, glibc / "usr/lib64/libc.so.6")
        shutil.copy2(interp, glibc / "usr/lib64" / interp.name)
        (glibc / "etc/ld.so.conf.d").mkdir(parents=True)
        (glibc / "etc/ld.so.conf").write_text("include ld.so.conf.d/*.conf\n")
        demo = work / "demo"
        foo = compile_library(Lib(_BASE_SRC, _BASE_MAP), demo / "usr/lib64/foo")
        (demo / "etc/ld.so.conf.d").mkdir(parents=True)
        (demo / "etc/ld.so.conf.d/foo-x86_64.conf").write_text("/usr/lib64/foo\n")
        bar = compile_library(Lib("int foo_init(void);\nint bar(void) { return foo_init(); }\n",
                                  None, "libbar.so.0"), demo / "opt/app/lib", libs=(foo,))
        compile_program("int bar(void); int foo_extra(void);\n"
                        "int main(void) { return bar() + foo_extra(); }\n",
                        demo / "opt/app/bin/app", [bar, foo],
                        extra=("-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"))
        compile_program(f"{_DECLS}int main(void) {{ return foo_init(); }}\n",
                        demo / "usr/bin/foo-user", [foo])
        _rpm_install(root, [_rpm_package("glibc-mini", glibc, work),
                            _rpm_package("abi-demo", demo, work)])


RPM_IMAGE = Recipe("abi-rpm", _rpm_image, changes=('CMD ["/opt/app/bin/app"]',),
                   extra=(*_HELPERS, inspect.getsource(_rpm_package), inspect.getsource(_rpm_install)))


# -- a musl image (Alpine layout): no version checks at load --------------------------------

MUSL_GCC = shutil.which("musl-gcc")
MUSL_LIBC = Path("/usr/lib/x86_64-linux-musl/libc.so")


def _musl_image(root: Path) -> None:
    """musl's loader as /lib/ld-musl-x86_64.so.1, libfoo in a folder that only the musl path
    file names, and a consumer linked against a libfoo whose foo_init is foo_init@@FOO_2.0:
    the image's libfoo defines only FOO_1.0, which glibc would refuse and musl loads."""
    for d in ("lib", "usr/bin", "usr/lib", "opt/musl/lib", "etc"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(MUSL_LIBC, root / "lib/ld-musl-x86_64.so.1")
    os.symlink("ld-musl-x86_64.so.1", root / "lib/libc.musl-x86_64.so.1")
    (root / "etc/ld-musl-x86_64.path").write_text("/lib\n/usr/local/lib\n/usr/lib\n/opt/musl/lib\n")
    compile_library(Lib(_BASE_SRC, _BASE_MAP), root / "opt/musl/lib", cc="musl-gcc")
    with tempfile.TemporaryDirectory() as tmp:
        newer = compile_library(Lib(_BASE_SRC, "FOO_2.0 { global: foo_init; foo_extra; local: *; };"),
                                Path(tmp), cc="musl-gcc")
        compile_program(f"{_DECLS}int main(void) {{ return foo_init() + foo_extra(); }}\n",
                        root / "usr/bin/musl-user", [newer], cc="musl-gcc")


def _musl_symbol_gone(root: Path) -> None:
    compile_library(Lib("int foo_init(void) { return 1; }\n", None), root / "opt/musl/lib",
                    cc="musl-gcc")


MUSL_IMAGE = Recipe("abi-musl", _musl_image, changes=('CMD ["/usr/bin/musl-user"]',),
                    extra=(str(MUSL_GCC), *_HELPERS))
#: the musl image with foo_extra gone from libfoo: musl-user cannot bind it
MUSL_BROKEN = Recipe("abi-musl-broken", _musl_symbol_gone, parent=MUSL_IMAGE)


# -- Debian minbase with a library package purged -------------------------------------------

PURGED_PACKAGE = "libselinux1"
PURGED_SONAME = "libselinux.so.1"


def _purge_library(root: Path) -> None:
    # no triggers: libc-bin's ldconfig trigger must not run (chrootless it would run on the host)
    dpkg(root, "--purge", "--force-depends", "--no-triggers", PURGED_PACKAGE)


MINBASE_PURGED = Recipe("abi-minbase-purged", _purge_library, parent=MINBASE,
                        extra=(PURGED_PACKAGE,))


def collect_abi(root: Path) -> dict[str, object]:
    """The ABI section of a root folder, through the snapshot's own walk (no engine)."""
    from harness.snapshot.elf import ElfCollector
    from harness.snapshot.walk import walk

    tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-cf", "-", "."],
                           stdout=subprocess.PIPE)
    assert tar.stdout is not None
    collector = ElfCollector()
    try:
        files = walk(tar.stdout, [collector])
    finally:
        tar.stdout.close()
        tar.wait()
    return collector.result(files, {})


# -- Debian bullseye minbase: glibc 2.31, before 2.34 moved libpthread/libdl/librt/... into libc

BULLSEYE_SUITE = "bullseye"


def _bullseye_minbase(root: Path) -> None:
    run(["debootstrap", "--variant=minbase", BULLSEYE_SUITE, str(root), debian_mirror()])
    run(["sh", "-c", f"rm -rf {root}/var/cache/apt/archives/*.deb {root}/var/lib/apt/lists/*"])


#: the baseline of a real upgrade whose candidate is bookworm minbase (testimages.debian.MINBASE)
BULLSEYE = Recipe("debian-bullseye-minbase", _bullseye_minbase, changes=('CMD ["/bin/bash"]',),
                  extra=(BULLSEYE_SUITE,))


# -- the loader as the oracle: cases ld.so resolves differently from a plain symbol diff -----

def compile_plugin(source: str, target: Path, script: str | None = None) -> Path:
    """A shared object without DT_SONAME (a plugin, loaded by path)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "plugin.c"
        src.write_text(textwrap.dedent(source))
        cmd = ["gcc", "-g", "-O0", "-shared", "-fPIC", "-o", str(target), str(src)]
        if script is not None:
            (Path(tmp) / "plugin.map").write_text(textwrap.dedent(script))
            cmd.append(f"-Wl,--version-script={Path(tmp) / 'plugin.map'}")
        run(cmd)
    return target


@dataclass(frozen=True)
class Side:
    """One image of a loader case: libfoo, optionally libbar (NEEDED by libfoo or not), and
    optionally a plugin without a soname at `plugin_path`."""

    foo: Lib | None
    bar: Lib | None = None
    foo_needs_bar: bool = False
    plugin: str | None = None


@dataclass(frozen=True)
class LoaderCase:
    """Two sides, a consumer built against the old side, whether ld.so runs that consumer on
    the new side (the oracle), and the changes the gate must report (kind, subject, verdict)."""

    name: str
    old: Side
    new: Side
    #: the consumer's C source: exits 0 when everything it uses was bound and returned right
    consumer: str
    loads: bool
    expect: tuple[tuple[str, str, str], ...]
    #: the plugin's path in both images (its folder decides break or review)
    plugin_path: str = ""


_BAR_MAP_10 = "FOO_1.0 { global: foo_extra; local: *; };\n"
_FOO_INIT_ONLY = "int foo_init(void) { return 1; }\n"
_EXTRA_ONLY = "int foo_extra(void) { return 2; }\n"
_USE_BOTH = f"{_DECLS}int main(void) {{ return foo_init() + foo_extra() == 3 ? 0 : 1; }}\n"
_PLUGIN_SRC = "int plugin_init(void) { return 1; }\nint plugin_extra(void) { return 2; }\n"
_PLUGIN_INIT_ONLY = "int plugin_init(void) { return 1; }\n"
_DLOPEN_USER = """
    #include <dlfcn.h>
    int main(void) {
        void *h = dlopen("PLUGIN", RTLD_NOW);
        if (!h) return 2;
        int (*f)(void) = (int (*)(void))dlsym(h, "plugin_extra");
        return f && f() == 2 ? 0 : 3;
    }
"""
_LINKED_PLUGIN_USER = ("int plugin_init(void); int plugin_extra(void);\n"
                       "int main(void) { return plugin_init() + plugin_extra() == 3 ? 0 : 1; }\n")

LOADER_CASES = (
    # glibc 2.34's move: libfoo keeps FOO_1.0 and NEEDs libbar, which defines foo_extra@FOO_1.0
    LoaderCase("moved-node-kept",
               Side(Lib(_BASE_SRC, _BASE_MAP)),
               Side(Lib(_FOO_INIT_ONLY, _BASE_MAP.replace("foo_extra; ", "")),
                    Lib(_EXTRA_ONLY, _BAR_MAP_10, "libbar.so.1"), foo_needs_bar=True),
               _USE_BOTH, True,
               (("symbol-moved", "libfoo.so.1:foo_extra@FOO_1.0", "info"),
                ("needed-added", "libbar.so.1", "review"))),
    # the node foo_extra had (FOO_1.1) left libfoo with it: ld.so checks the node against libfoo
    LoaderCase("moved-node-lost",
               Side(Lib(_BASE_SRC, _TWO_NODES)),
               Side(Lib(_FOO_INIT_ONLY, "FOO_1.0 { global: foo_init; local: *; };\n"),
                    Lib(_EXTRA_ONLY, "FOO_1.1 { global: foo_extra; local: *; };\n", "libbar.so.1"),
                    foo_needs_bar=True),
               _USE_BOTH, False,
               (("symbol-removed", "libfoo.so.1:foo_extra@FOO_1.1", "break"),
                ("needed-added", "libbar.so.1", "review"),
                ("symbol-version-removed", "libfoo.so.1:@FOO_1.1", "break"))),
    # libbar ships but nothing in libfoo's closure loads it
    LoaderCase("moved-outside-closure",
               Side(Lib(_BASE_SRC, _BASE_MAP)),
               Side(Lib(_FOO_INIT_ONLY, _BASE_MAP.replace("foo_extra; ", "")),
                    Lib(_EXTRA_ONLY, _BAR_MAP_10, "libbar.so.1")),
               _USE_BOTH, False,
               (("symbol-removed", "libfoo.so.1:foo_extra@FOO_1.0", "break"),)),
    LoaderCase("versioning-added",
               Side(Lib(_BASE_SRC, None)), Side(Lib(_BASE_SRC, _BASE_MAP)),
               _USE_BOTH, True,
               (("symbol-added", "libfoo.so.1:foo_extra@FOO_1.0", "info"),
                ("symbol-added", "libfoo.so.1:foo_init@FOO_1.0", "info"))),
    LoaderCase("versioning-removed",
               Side(Lib(_BASE_SRC, _BASE_MAP)), Side(Lib(_BASE_SRC, None)),
               _USE_BOTH, False,
               (("symbol-removed", "libfoo.so.1:foo_extra@FOO_1.0", "break"),
                ("symbol-removed", "libfoo.so.1:foo_init@FOO_1.0", "break"),
                ("symbol-version-removed", "libfoo.so.1:@FOO_1.0", "break"),
                ("symbol-added", "libfoo.so.1:foo_extra", "info"),
                ("symbol-added", "libfoo.so.1:foo_init", "info"))),
    # a plugin dlopen()ed by path from a folder of its host's: only that host loads it
    LoaderCase("plugin-symbol-removed",
               Side(None, plugin=_PLUGIN_SRC), Side(None, plugin=_PLUGIN_INIT_ONLY),
               _DLOPEN_USER, False,
               (("symbol-removed", "/usr/lib/foo/plugins/foo-plugin.so:plugin_extra", "review"),),
               plugin_path="/usr/lib/foo/plugins/foo-plugin.so"),
    # an object without a soname in the loader's path, linked by file name (DT_NEEDED)
    LoaderCase("unnamed-library-symbol-removed",
               Side(None, plugin=_PLUGIN_SRC), Side(None, plugin=_PLUGIN_INIT_ONLY),
               _LINKED_PLUGIN_USER, False,
               (("symbol-removed", "/usr/lib/TRIPLET/libunnamed.so:plugin_extra", "break"),),
               plugin_path="/usr/lib/TRIPLET/libunnamed.so"),
)
LOADER_CASES_BY_NAME = {c.name: c for c in LOADER_CASES}


def case_plugin_path(case: LoaderCase) -> str:
    """The case's plugin path with the host's multiarch triplet filled in."""
    return case.plugin_path.replace("TRIPLET", triplet())


def case_expect(case: LoaderCase) -> set[tuple[str, str, str]]:
    return {(k, s.replace("TRIPLET", triplet()), v) for k, s, v in case.expect}


def _install_side(side: Side, libdir: Path, plugin: Path | None) -> list[Path]:
    """Build one side's libraries into `libdir` (the plugin at `plugin`); the consumer's
    link inputs (libfoo, or the plugin when it is linked directly)."""
    out: list[Path] = []
    bar = compile_library(side.bar, libdir) if side.bar is not None else None
    if side.foo is not None:
        # libfoo uses nothing of libbar (as glibc's libpthread stub uses nothing of libc):
        # --no-as-needed before it keeps the DT_NEEDED
        flags = (("-Wl,--push-state,--no-as-needed", f"-L{libdir}", f"-l:{bar.name}",
                  "-Wl,--pop-state")
                 if bar is not None and side.foo_needs_bar else ())
        out.append(compile_library(Lib(side.foo.source, side.foo.script, side.foo.soname,
                                       (*side.foo.ldflags, *flags)), libdir))
    if side.plugin is not None and plugin is not None:
        out.append(compile_plugin(side.plugin, plugin))
    return out


def install_case_side(root: Path, case: LoaderCase, side_name: str) -> None:
    """One side of a loader case in a root made from GLIBC_BASE, with /usr/bin/foo-user built
    against the old side."""
    libdir = root / "usr/lib" / triplet()
    plugin_path = case_plugin_path(case)
    plugin = root / plugin_path.lstrip("/") if plugin_path else None
    _install_side(case.old if side_name == "old" else case.new, libdir, plugin)
    with tempfile.TemporaryDirectory() as tmp:
        old_plugin = Path(tmp) / "plugin" / Path(plugin_path).name if plugin_path else None
        inputs = _install_side(case.old, Path(tmp) / "lib", old_plugin)
        linked = [p for p in inputs if case.consumer != _DLOPEN_USER or p != old_plugin]
        compile_program(case.consumer.replace("PLUGIN", plugin_path),
                        root / "usr/bin/foo-user", linked)


_CASE_HELPERS = _HELPERS + tuple(inspect.getsource(f) for f in (
    compile_plugin, _install_side, install_case_side, case_plugin_path))


def case_recipe(case: LoaderCase, side: str) -> Recipe:
    """The image of one side (`old` or `new`) of a loader case."""

    def build(root: Path) -> None:
        install_case_side(root, LOADER_CASES_BY_NAME[case.name], side)

    return Recipe(f"abi-loader-{case.name}-{side}", build, parent=GLIBC_BASE,
                  extra=(case.name, side, repr(case), *_CASE_HELPERS))


# -- a pair of prebuilt shared objects (libabigail's test data) through the gate's diff -----

def object_soname(path: Path) -> str | None:
    """An object's DT_SONAME, as readelf reads it (None without one)."""
    out = subprocess.run(["readelf", "-d", "-W", str(path)], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "(SONAME)" in line and "[" in line:
            return line.split("[", 1)[1].rsplit("]", 1)[0]
    return None


def _object_root(obj: Path, name: str, work: Path) -> Path:
    root = work / "root"
    if root.exists():
        shutil.rmtree(root)
    (root / "usr/lib").mkdir(parents=True)
    shutil.copy2(obj, root / "usr/lib" / name)
    return root


def gate_object_pair(old: Path, new: Path, work: Path) -> list[str]:
    """The unwaived breaks (`KIND SUBJECT`) of the gate's ABI diff for old -> new, each
    object in a root at /usr/lib/SONAME (without a soname: old's file name, on both sides),
    read by the snapshot's walk, old's records stored and parsed as a baseline file is."""
    import json

    from harness import baseline
    from harness.config import HarnessConfig
    from harness.aspects.abi import suppressions
    from harness.diff.abi import baseline_records, diff_abi
    from harness.policy import judge

    config = HarnessConfig()
    name = object_soname(old) or old.name
    records = baseline_records(collect_abi(_object_root(old, name, work)), suppressions(config))
    stored = json.loads(baseline.render("abi", {"ref": str(old)}, records))["records"]
    candidate = collect_abi(_object_root(new, object_soname(new) or name, work))
    judged = judge(diff_abi(stored, candidate, suppressions(config)), config, "libabigail", "x86_64")
    return sorted(f"{c.kind} {c.subject}" for c in judged if c.verdict == "break" and not c.waived)
