"""The linkage closure, on small roots compiled here: how ld.so (and musl) find and bind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import testimages
from harness.diff.abi import linkage_changes
from harness.diff.linkage import Linker, linkage_findings, parse_ld_so_conf
from harness.snapshot.elf import ElfCollector, image_realpath
from harness.snapshot.elfparse import read_object
from testimages.abi import (GLIBC_BASE, MUSL_GCC, Lib, collect_abi, compile_library,
                            compile_program, triplet)

FOO = Lib("int foo_init(void) { return 1; }\nint foo_extra(void) { return 2; }\n",
          "FOO_1.0 { global: foo_init; foo_extra; local: *; };\n")
DECLS = "int foo_init(void); int foo_extra(void);\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the glibc base root (host glibc, Debian multiarch, merged /usr)."""
    target = tmp_path / "root"
    shutil.copytree(testimages.rootfs(GLIBC_BASE), target, symlinks=True)
    return target


def libdir(root: Path) -> Path:
    return root / "usr/lib" / triplet()


def found(abi: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f.kind, f.subject, f.consumer) for f in linkage_findings(abi)}


def test_intact_root_links(root: Path) -> None:
    foo = compile_library(FOO, libdir(root))
    compile_program(f"{DECLS}int main(void) {{ return foo_init(); }}\n", root / "usr/bin/user", [foo])
    abi = collect_abi(root)
    assert found(abi) == set()
    # the program was checked: its closure holds libfoo, libc and the loader, via /lib symlinks
    ctx = Linker(abi).load("/usr/bin/user")
    assert {n.real for n in ctx.nodes} == {
        "/usr/bin/user", f"/usr/lib/{triplet()}/libfoo.so.1", f"/usr/lib/{triplet()}/libc.so.6",
        f"/usr/lib/{triplet()}/ld-linux-x86-64.so.2"}


def test_runpath_origin(root: Path, tmp_path: Path) -> None:
    bar = compile_library(Lib("int bar(void) { return 1; }\n", None, "libbar.so.0"), root / "opt/app/lib")
    program = "int bar(void);\nint main(void) { return bar(); }\n"
    compile_program(program, root / "opt/app/bin/app", [bar],
                    extra=("-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"))
    compile_program(program, root / "opt/app/bin/app-no-path", [bar])
    abi = collect_abi(root)
    assert abi["objects"]["/opt/app/bin/app"]["runpath"] == ["$ORIGIN/../lib"]
    changes = linkage_changes(abi)
    assert [(c.kind, c.subject, c.consumer) for c in changes] == [
        ("needed-unresolved", "libbar.so.0", "/opt/app/bin/app-no-path")]
    assert f"/usr/lib/{triplet()}" in changes[0].after["searched"]


@pytest.mark.parametrize("dtags", ["--disable-new-dtags", "--enable-new-dtags"],
                         ids=["rpath-inherited", "runpath-not-inherited"])
def test_rpath_of_the_program_serves_its_libraries(root: Path, dtags: str) -> None:
    """glibc searches the RPATH of every object up the loading chain; RUNPATH only serves
    the object that carries it. Either way the plugin's dependency is a file of the image,
    loaded before the plugin by its program: not broken. Gone from the image, it is."""
    app = root / "opt/app"
    dep = compile_library(Lib("int dep(void) { return 1; }\n", None, "libdep.so.1"), app / "lib")
    plug = compile_library(Lib("int dep(void);\nint plug(void) { return dep(); }\n", None,
                               "libplug.so.1"), app / "plugins", libs=(dep,))
    compile_program("int plug(void);\nint main(void) { return plug(); }\n", app / "bin/app", [plug, dep],
                    extra=(f"-Wl,{dtags}", "-Wl,-rpath,$ORIGIN/../lib:$ORIGIN/../plugins"))
    assert found(collect_abi(root)) == set()
    dep.unlink()
    assert found(collect_abi(root)) == {
        ("needed-unresolved", "libdep.so.1", "/opt/app/plugins/libplug.so.1")}


def test_a_library_needing_what_its_host_loads_first(root: Path) -> None:
    """The JDK's libjava.so needs libjvm.so, which no search path reaches: the `java`
    launcher dlopens lib/server/libjvm.so first, and ld.so matches the NEEDED by soname.
    A program needing the same off-path library is broken, a library is not."""
    jdk = root / "usr/lib/jvm/jdk/lib"
    jvm = compile_library(Lib("int jvm(void) { return 1; }\n", None, "libjvm.so"), jdk / "server")
    compile_library(Lib("int jvm(void);\nint java(void) { return jvm(); }\n", None,
                        "libjava.so"), jdk, libs=(jvm,))
    compile_program("int jvm(void);\nint main(void) { return jvm(); }\n", root / "usr/bin/tool", [jvm])
    assert found(collect_abi(root)) == {("needed-unresolved", "libjvm.so", "/usr/bin/tool")}
    jvm.unlink()
    assert found(collect_abi(root)) == {("needed-unresolved", "libjvm.so", "/usr/bin/tool"),
                                        ("needed-unresolved", "libjvm.so", "/usr/lib/jvm/jdk/lib/libjava.so")}


def test_ld_so_conf_include_relative_glob(root: Path) -> None:
    compile_library(FOO, root / "usr/local/foo")
    foo = root / "usr/local/foo/libfoo.so.1"
    compile_program(f"{DECLS}int main(void) {{ return foo_init(); }}\n", root / "usr/bin/user", [foo])
    (root / "etc/ld.so.conf").write_text("# relative to /etc\ninclude ld.so.conf.d/*.conf\n")
    (root / "etc/ld.so.conf.d/foo.conf").write_text("/usr/local/foo\n")
    assert found(collect_abi(root)) == set()
    (root / "etc/ld.so.conf.d/foo.conf").rename(root / "etc/ld.so.conf.d/foo.conf.disabled")
    assert found(collect_abi(root)) == {("needed-unresolved", "libfoo.so.1", "/usr/bin/user")}


def test_parse_ld_so_conf_order_and_forms() -> None:
    config = {"/etc/ld.so.conf": "include /etc/ld.so.conf.d/*.conf\n/opt/last # comment\nhwcap 0 x\n",
              "/etc/ld.so.conf.d/b.conf": "/b1:/b2\n", "/etc/ld.so.conf.d/a.conf": "/a=libc5\n",
              "/etc/ld.so.conf.d/sub/c.conf": "/never\n"}
    assert parse_ld_so_conf(config) == ["/a", "/b1", "/b2", "/opt/last"]


def test_object_of_another_architecture_is_skipped(root: Path) -> None:
    foo = compile_library(FOO, libdir(root))
    compile_library(FOO, root / "usr/lib")  # a second copy, later on the search path
    compile_program(f"{DECLS}int main(void) {{ return foo_init(); }}\n", root / "usr/bin/user", [foo])
    abi = collect_abi(root)
    abi["objects"][f"/usr/lib/{triplet()}/libfoo.so.1"]["arch"] = "i686"
    assert found(abi) == set()
    ctx = Linker(abi).load("/usr/bin/user")
    assert ctx.resolved[("/usr/bin/user", "libfoo.so.1")] == "/usr/lib/libfoo.so.1"
    del abi["objects"]["/usr/lib/libfoo.so.1"]
    assert found(abi) == {("needed-unresolved", "libfoo.so.1", "/usr/bin/user")}


def test_missing_version_node_and_symbol(root: Path, tmp_path: Path) -> None:
    newer = compile_library(Lib(FOO.source + "int foo_new(void) { return 3; }\n",
                                FOO.script + "FOO_2.0 { global: foo_new; } FOO_1.0;\n"), tmp_path / "newer")
    compile_library(FOO, libdir(root))  # the image ships the older build
    compile_program(f"""{DECLS}int foo_new(void);
                    extern int foo_opt(void) __attribute__((weak));
                    int main(void) {{ return foo_init() + foo_new() + (foo_opt ? foo_opt() : 0); }}
                    """, root / "usr/bin/user", [newer])
    abi = collect_abi(root)
    user = abi["objects"]["/usr/bin/user"]
    assert ["foo_opt", None, None, True] in user["imports"]  # weak: never reported
    assert found(abi) == {
        ("symbol-unresolved", "libfoo.so.1:@FOO_2.0", "/usr/bin/user"),
        ("symbol-unresolved", "libfoo.so.1:foo_new@FOO_2.0", "/usr/bin/user")}


def test_unversioned_symbol_checked_in_program_scope(root: Path, tmp_path: Path) -> None:
    full = compile_library(Lib(FOO.source, None), tmp_path / "full")
    compile_library(Lib("int foo_init(void) { return 1; }\n", None), libdir(root))
    compile_program(f"{DECLS}int main(void) {{ return foo_init() + foo_extra(); }}\n",
                    root / "usr/bin/user", [full])
    # a library's unversioned reference may be meant for its program: not judged alone
    compile_library(Lib("int from_program(void);\nint plug(void) { return from_program(); }\n",
                        None, "libplug.so"), libdir(root))
    assert found(collect_abi(root)) == {("symbol-unresolved", "libfoo.so.1:foo_extra", "/usr/bin/user")}


def test_missing_library_does_not_also_report_its_symbols(root: Path) -> None:
    foo = compile_library(Lib(FOO.source, None), libdir(root))
    compile_program(f"{DECLS}int main(void) {{ return foo_init(); }}\n", root / "usr/bin/user", [foo])
    foo.unlink()
    assert found(collect_abi(root)) == {("needed-unresolved", "libfoo.so.1", "/usr/bin/user")}


def test_missing_interpreter(root: Path) -> None:
    foo = compile_library(FOO, libdir(root))
    compile_program(f"{DECLS}int main(void) {{ return foo_init(); }}\n", root / "usr/bin/user", [foo],
                    extra=("-Wl,--dynamic-linker=/lib/ld-gone.so.1",))
    assert ("needed-unresolved", "/lib/ld-gone.so.1", "/usr/bin/user") in found(collect_abi(root))


def test_hardlinked_and_symlinked_library(root: Path) -> None:
    foo = compile_library(FOO, root / "opt/real")
    (root / "opt/other").mkdir()
    os.link(foo, root / "opt/other/libfoo.so.1")
    os.symlink("../../../opt/other/libfoo.so.1", libdir(root) / "libfoo.so.1")
    compile_program(f"{DECLS}int main(void) {{ return foo_init(); }}\n", root / "usr/bin/user", [foo])
    abi = collect_abi(root)
    # tar stores the second name as a hard link to the first: the object has one record
    assert len([p for p in abi["objects"] if p.endswith("libfoo.so.1")]) == 1
    assert found(abi) == set()


def test_unreadable_object_is_recorded_not_raised(root: Path) -> None:
    junk = libdir(root) / "libjunk.so.1"
    junk.write_bytes(b"\x7fELF" + b"\xff" * 20)
    truncated = libdir(root) / "libtrunc.so.1"
    truncated.write_bytes((libdir(root) / "libc.so.6").read_bytes()[:3000])
    abi = collect_abi(root)
    assert abi["objects"][f"/usr/lib/{triplet()}/libjunk.so.1"]["error"].startswith("truncated ELF header")
    assert "dynamic segment unreadable" in abi["objects"][f"/usr/lib/{triplet()}/libtrunc.so.1"]["error"]
    assert found(abi) == set()


def test_symlink_loop_terminates() -> None:
    assert image_realpath("/a/x", {"/a": "/b", "/b": "/a"}) is None
    assert image_realpath("/lib/x/../y", {"/lib": "usr/lib"}) == "/usr/lib/y"


def test_read_object_facts() -> None:
    facts = read_object(Path(f"/lib/{triplet()}/libc.so.6").read_bytes())
    assert facts["soname"] == "libc.so.6" and facts["arch"] == "x86_64" and facts["type"] == "DYN"
    exports = {(e[0], e[1]): e for e in facts["exports"]}
    assert exports[("memcpy", "GLIBC_2.14")][2:5] == [True, "IFUNC", "GLOBAL"]
    assert exports[("memcpy", "GLIBC_2.2.5")][2] is False  # memcpy@GLIBC_2.2.5: hidden
    assert exports[("stdout", "GLIBC_2.2.5")][3:] == ["OBJECT", "GLOBAL", 8]
    assert "GLIBC_2.2.5" in facts["versions"] and "libc.so.6" not in facts["versions"]
    assert facts["verneed"]["ld-linux-x86-64.so.2"]


def test_collector_keeps_no_bytes() -> None:
    collector = ElfCollector()
    data = Path(f"/lib/{triplet()}/libc.so.6").read_bytes()
    assert collector.wants("/x", data[:64], len(data)) and not collector.wants("/y", b"#!/bin/sh", 9)
    collector.take("/x", data)
    abi = collector.result({"/x": {"type": "file"}}, {})
    assert not any(isinstance(v, (bytes, bytearray, memoryview)) for v in _walk(abi))


def test_ownership_filled_from_package_file_lists(root: Path) -> None:
    foo = compile_library(FOO, libdir(root))
    collector = ElfCollector()
    collector.take(f"/usr/lib/{triplet()}/libfoo.so.1", foo.read_bytes())
    files = {"/lib": {"type": "symlink", "target": "usr/lib"}}
    packages = {"libfoo1:amd64": {"name": "libfoo1", "files": [f"/lib/{triplet()}/libfoo.so.1"]}}
    assert collector.result(files, packages)["libraries"]["libfoo.so.1"]["packages"] == ["libfoo1"]
    assert collector.result(files, {"libfoo1:amd64": {"name": "libfoo1"}})["libraries"][
        "libfoo.so.1"]["packages"] is None  # no file lists: ownership unknown, not "none"


@pytest.mark.skipif(MUSL_GCC is None, reason="musl-gcc (Debian musl-tools) is not installed")
def test_musl_binds_by_name_without_version_checks(tmp_path: Path) -> None:
    root = testimages.rootfs(testimages.abi.MUSL_IMAGE)
    abi = collect_abi(root)
    user = abi["objects"]["/usr/bin/musl-user"]
    assert user["interp"] == "/lib/ld-musl-x86_64.so.1"
    assert user["verneed"] == {"libfoo.so.1": [["FOO_2.0", False]]}
    assert abi["objects"]["/opt/musl/lib/libfoo.so.1"]["versions"] == ["FOO_1.0"]
    assert found(abi) == set()  # glibc would refuse FOO_2.0; musl ignores versions
    broken = collect_abi(testimages.rootfs(testimages.abi.MUSL_BROKEN))
    assert found(broken) == {("symbol-unresolved", "libfoo.so.1:foo_extra@FOO_2.0", "/usr/bin/musl-user")}


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)
    else:
        yield value


def test_image_library_path_is_searched(root: Path) -> None:
    """An image's ENV LD_LIBRARY_PATH, when the caller passes it as `library_path`."""
    foo = compile_library(FOO, root / "opt/vendor/lib")
    compile_program(f"{DECLS}int main(void) {{ return foo_init(); }}\n", root / "usr/bin/user", [foo])
    abi = collect_abi(root)
    assert found(abi) == {("needed-unresolved", "libfoo.so.1", "/usr/bin/user")}
    assert found({**abi, "library_path": "/opt/vendor/lib:relative"}) == set()


def _with_digests(abi: dict[str, Any], root: Path) -> dict[str, Any]:
    """The ABI section with each object's sha256, as the gate gives it (abi_with_env)."""
    import hashlib

    return {**abi, "digests": {path: hashlib.sha256((root / path.lstrip("/")).read_bytes())
                               .hexdigest() for path in abi["objects"]}}


def test_checks_are_shared_between_images_only_for_the_same_contents(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An image of a family judged after its base reuses the checks of the objects they
    share (harness.diff.linkage `_SHARED_CHECKS`), keyed by the contents of every object a
    check reads: the same program against another build of its library is checked again,
    and its findings are that image's own."""
    import harness.diff.linkage as linkage

    monkeypatch.setattr(linkage, "_SHARED_CHECKS", {})
    newer = compile_library(Lib(FOO.source + "int foo_new(void) { return 3; }\n",
                                FOO.script + "FOO_2.0 { global: foo_new; } FOO_1.0;\n"),
                            tmp_path / "newer")
    other = tmp_path / "other"
    shutil.copytree(root, other, symlinks=True)
    shutil.copy(newer, libdir(root) / newer.name)  # this image ships the newer build
    compile_library(FOO, libdir(other))  # this one the older
    program = f"{DECLS}int foo_new(void);\nint main(void) {{ return foo_init() + foo_new(); }}\n"
    compile_program(program, root / "usr/bin/user", [newer])
    shutil.copy(root / "usr/bin/user", other / "usr/bin/user")  # the very same program
    good, bad = _with_digests(collect_abi(root), root), _with_digests(collect_abi(other), other)
    assert good["digests"]["/usr/bin/user"] == bad["digests"]["/usr/bin/user"]
    calls: list[str] = []
    against = linkage.Linker._versioned_against

    def counting(self: Any, node: Any, targets: Any) -> Any:
        calls.append(node.real)
        return against(self, node, targets)
    monkeypatch.setattr(linkage.Linker, "_versioned_against", counting)
    missing = {("symbol-unresolved", "libfoo.so.1:@FOO_2.0", "/usr/bin/user"),
               ("symbol-unresolved", "libfoo.so.1:foo_new@FOO_2.0", "/usr/bin/user")}
    for _ in range(2):  # either order, and again
        assert found(good) == set()
        assert found(bad) == missing
    assert found(bad) == missing
    # the libc, the loader and the program against the newer build: checked once
    first = len(calls)
    calls.clear()
    assert found(_with_digests(collect_abi(root), root)) == set()
    assert not calls and first > 0
    # an image without digests is checked alone, as before
    assert found(collect_abi(other)) == missing and calls
