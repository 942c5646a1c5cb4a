"""The ABI diff and its baseline records, on libraries compiled here (no engine needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import baseline
from harness.aspects.abi import suppressions
from harness.config import HarnessConfig
from harness.diff.abi import Suppressions, baseline_records, diff_abi, split_symbol_key, symbol_key
from harness.diff.change import Change
from harness.policy import judge
from testimages.abi import Lib, collect_abi, compile_library

#: the default configuration's suppressions (GLIBC_PRIVATE)
DEFAULT = suppressions(HarnessConfig())

FOO = Lib("int foo_init(void) { return 1; }\nint foo_extra(void) { return 2; }\n"
          "int foo_table[4] = {1};\n",
          "FOO_1.0 { global: foo_init; foo_extra; foo_table; local: *; };\n")


def image(tmp_path: Path, name: str, *libs: tuple[Lib, str]) -> dict[str, Any]:
    """The ABI section of a root holding the given libraries (in the given folders)."""
    root = tmp_path / name
    root.mkdir(exist_ok=True)
    for lib, folder in libs:
        compile_library(lib, root / folder.lstrip("/"))
    return collect_abi(root)


def linked(lib: Lib, *ldflags: str) -> Lib:
    return Lib(lib.source, lib.script, lib.soname, ldflags)


def verdicts(changes: list[Change], config: HarnessConfig | None = None) -> set[tuple[str, str, str]]:
    judged = judge(changes, config or HarnessConfig(), "test", "x86_64")
    return {(c.kind, c.subject, c.verdict) for c in judged}


def with_private(lib: Lib) -> Lib:
    """`lib` plus foo_private@FOO_PRIVATE."""
    return Lib(lib.source + "int foo_private(void) { return 9; }\n",
               f"{lib.script}FOO_PRIVATE {{ global: foo_private; }} FOO_1.0;\n", lib.soname)


def test_baseline_records_spelling_and_render(tmp_path: Path) -> None:
    abi = image(tmp_path, "a", (with_private(FOO), "/usr/lib"))
    config = Suppressions(versions=("GLIBC_PRIVATE", "FOO_PRIVATE"))
    records = baseline_records(abi, config)
    assert records["libfoo.so.1"]["versions"] == ["FOO_1.0"]
    assert records["libfoo.so.1"]["paths"] == ["/usr/lib/libfoo.so.1"]
    assert records["libfoo.so.1"]["packages"] is None  # no ownership in the package records yet
    assert records["libfoo.so.1:foo_init@FOO_1.0"] == {"type": "FUNC", "bind": "GLOBAL", "default": True}
    assert records["libfoo.so.1:foo_table@FOO_1.0"]["size"] == 16
    assert "libfoo.so.1:foo_private@FOO_PRIVATE" not in records  # suppressed version
    assert not any(k.endswith("FOO_1.0@FOO_1.0") for k in records)  # node marker symbols
    text = baseline.render("abi", {"ref": "x"}, records)
    lines = text.splitlines()[1:-1]
    assert len(lines) == len(records)  # one line per library and per symbol
    keys = [json.loads("{" + line.rstrip(",") + "}").popitem()[0] for line in lines]
    assert keys == sorted(records)
    assert split_symbol_key(symbol_key("libfoo.so.1", "foo", "V1")) == ("libfoo.so.1", "foo", "V1")
    assert split_symbol_key("libfoo.so.1:foo") == ("libfoo.so.1", "foo", None)


def test_identical_image_has_no_changes(tmp_path: Path) -> None:
    before = baseline_records(image(tmp_path, "a", (FOO, "/usr/lib")), DEFAULT)
    assert diff_abi(before, image(tmp_path, "b", (FOO, "/usr/lib")), DEFAULT) == []


def test_library_removed(tmp_path: Path) -> None:
    bar = Lib("int bar(void) { return 1; }\n", None, "libbar.so.0")
    before = baseline_records(image(tmp_path, "a", (FOO, "/usr/lib"), (bar, "/usr/lib")), DEFAULT)
    after = image(tmp_path, "b", (FOO, "/usr/lib"))
    assert verdicts(diff_abi(before, after, DEFAULT)) == {("library-removed", "libbar.so.0", "break")}


def test_soname_bump_is_info_while_the_old_soname_ships(tmp_path: Path) -> None:
    before = baseline_records(image(tmp_path, "a", (FOO, "/usr/lib")), DEFAULT)
    both = image(tmp_path, "b", (FOO, "/usr/lib"), (Lib(FOO.source, FOO.script, "libfoo.so.2"), "/usr/lib"))
    assert verdicts(diff_abi(before, both, DEFAULT)) == {("soname-changed", "libfoo.so.1", "info")}
    only_new = image(tmp_path, "c", (Lib(FOO.source, FOO.script, "libfoo.so.2"), "/usr/lib"))
    assert verdicts(diff_abi(before, only_new, DEFAULT)) == {("soname-changed", "libfoo.so.1", "break")}


def test_variable_shrank_is_review(tmp_path: Path) -> None:
    before = baseline_records(image(tmp_path, "a", (FOO, "/usr/lib")), DEFAULT)
    smaller = Lib(FOO.source.replace("[4]", "[2]"), FOO.script)
    assert verdicts(diff_abi(before, image(tmp_path, "b", (smaller, "/usr/lib")), DEFAULT)) == {
        ("symbol-size-changed", "libfoo.so.1:foo_table@FOO_1.0", "review")}


def test_default_version_made_hidden_is_not_a_removal(tmp_path: Path) -> None:
    """foo@@FOO_1.0 -> foo@FOO_1.0: binaries linked before still bind (key: name@version)."""
    before = baseline_records(image(tmp_path, "a", (FOO, "/usr/lib")), DEFAULT)
    hidden = Lib(FOO.source.replace("int foo_extra(void)", "int foo_extra_v1(void)")
                 + '__asm__(".symver foo_extra_v1, foo_extra@FOO_1.0");\n', FOO.script)
    after = image(tmp_path, "b", (hidden, "/usr/lib"))
    records = baseline_records(after, DEFAULT)
    assert records["libfoo.so.1:foo_extra@FOO_1.0"]["default"] is False
    assert diff_abi(before, after, DEFAULT) == []


def test_suppressions_apply_to_both_sides(tmp_path: Path) -> None:
    before = baseline_records(image(tmp_path, "a", (with_private(FOO), "/usr/lib")), DEFAULT)
    assert "libfoo.so.1:foo_private@FOO_PRIVATE" in before
    after = image(tmp_path, "b", (FOO, "/usr/lib"))  # foo_private and its node gone
    assert {k for k, _, _ in verdicts(diff_abi(before, after, DEFAULT))} == {
        "symbol-removed", "symbol-version-removed"}
    config = Suppressions(versions=("FOO_PRIVATE",))
    assert diff_abi(before, after, config) == []
    removed_extra = image(tmp_path, "c", (Lib(FOO.source.replace("int foo_extra(void) { return 2; }", ""),
                                              FOO.script.replace("foo_extra; ", "")), "/usr/lib"))
    symbol_config = Suppressions(symbols=("foo_extra",), versions=("FOO_PRIVATE",))
    assert diff_abi(before, removed_extra, symbol_config) == []
    assert diff_abi(before, image(tmp_path, "d"), Suppressions(sonames=("libfoo.so.*",))) == []


def test_needed_added_is_review_with_consumer(tmp_path: Path) -> None:
    before = baseline_records(image(tmp_path, "a", (FOO, "/usr/lib")), DEFAULT)
    after = image(tmp_path, "b", (linked(FOO, "-Wl,--no-as-needed", "-lz", "-Wl,--as-needed"), "/usr/lib"))
    changes = [c for c in diff_abi(before, after, DEFAULT) if c.kind == "needed-added"]
    assert [(c.subject, c.consumer) for c in changes] == [("libz.so.1", "/usr/lib/libfoo.so.1")]
    assert verdicts(changes) == {("needed-added", "libz.so.1", "review")}


@pytest.mark.parametrize("flags, verdict", [
    (("-Wl,-rpath,$ORIGIN/private", "-Wl,--enable-new-dtags"), "review"),
    (("-Wl,-rpath,/home/builder/lib", "-Wl,--enable-new-dtags"), "break"),
], ids=["inside-image", "outside-image"])
def test_runpath_changed(tmp_path: Path, flags: tuple[str, ...], verdict: str) -> None:
    before = baseline_records(image(tmp_path, "a", (FOO, "/usr/lib")), DEFAULT)
    (tmp_path / "b/usr/lib/private").mkdir(parents=True)
    after = image(tmp_path, "b", (linked(FOO, *flags), "/usr/lib"))
    changes = [c for c in diff_abi(before, after, DEFAULT) if c.kind == "runpath-changed"]
    assert verdicts(changes) == {("runpath-changed", "libfoo.so.1", verdict)}
    assert changes[0].before == {"rpath": None, "runpath": None}


def test_rpath_and_runpath_together_break(tmp_path: Path) -> None:
    before = baseline_records(image(tmp_path, "a", (FOO, "/usr/lib")), DEFAULT)
    after = image(tmp_path, "b", (FOO, "/usr/lib"))
    facts = after["objects"]["/usr/lib/libfoo.so.1"]
    facts.update(rpath=["/usr/lib"], runpath=["/usr/lib"], search_missing=[])
    assert verdicts(diff_abi(before, after, DEFAULT)) == {("runpath-changed", "libfoo.so.1", "break")}


def test_library_of_a_second_architecture_is_keyed_apart(tmp_path: Path) -> None:
    abi = image(tmp_path, "a", (FOO, "/usr/lib"), (FOO, "/usr/lib32"))
    abi["objects"]["/usr/lib32/libfoo.so.1"]["arch"] = "i686"
    records = baseline_records(abi, DEFAULT)
    assert records["libfoo.so.1"]["paths"] == ["/usr/lib/libfoo.so.1"]
    assert records["libfoo.so.1(i686)"]["paths"] == ["/usr/lib32/libfoo.so.1"]
    assert "libfoo.so.1(i686):foo_init@FOO_1.0" in records


def test_soname_change_of_any_spelling(tmp_path: Path) -> None:
    """libabigail's libtest19-soname-0 -> -1: a soname without `.so` pairs by its stem."""
    before = baseline_records(image(tmp_path, "a", (Lib(FOO.source, FOO.script, "libfoo-0"), "/usr/lib")),
                              DEFAULT)
    after = image(tmp_path, "b", (Lib(FOO.source, FOO.script, "libfoo-1"), "/usr/lib"))
    assert verdicts(diff_abi(before, after, DEFAULT)) == {("soname-changed", "libfoo-0", "break")}
    other = image(tmp_path, "c", (Lib(FOO.source, FOO.script, "libbar-1"), "/usr/lib"))
    assert verdicts(diff_abi(before, other, DEFAULT)) == {("library-removed", "libfoo-0", "break")}


def test_plugin_without_soname_is_keyed_by_path(tmp_path: Path) -> None:
    """A shared object without DT_SONAME is recorded by path; PIE programs are not."""
    from testimages.abi import compile_plugin, compile_program
    root = tmp_path / "a"
    compile_plugin("int plugin_init(void) { return 1; }\n", root / "usr/lib/foo/plugin.so")
    compile_program("int main(void) { return 0; }\n", root / "usr/bin/prog", [], extra=("-pie", "-fPIE"))
    records = baseline_records(image(tmp_path, "a"), DEFAULT)
    assert records["/usr/lib/foo/plugin.so:plugin_init"] == {"type": "FUNC", "bind": "GLOBAL"}
    assert records["/usr/lib/foo/plugin.so"]["versions"] == []
    assert not any(k.startswith("/usr/bin") for k in records)


@pytest.mark.parametrize("folder, verdict", [("/usr/lib", "break"), ("/usr/lib/foo/plugins", "review")])
def test_plugin_symbol_removed_by_folder(tmp_path: Path, folder: str, verdict: str) -> None:
    from testimages.abi import compile_plugin
    both = "int plugin_init(void) { return 1; }\n"
    compile_plugin(both + "int plugin_extra(void) { return 2; }\n", tmp_path / "a" / folder.lstrip("/") / "p.so")
    compile_plugin(both, tmp_path / "b" / folder.lstrip("/") / "p.so")
    before = baseline_records(image(tmp_path, "a"), DEFAULT)
    assert verdicts(diff_abi(before, image(tmp_path, "b"), DEFAULT)) == {
        ("symbol-removed", f"{folder}/p.so:plugin_extra", verdict)}


def test_symbol_moved_needs_the_node_and_the_closure(tmp_path: Path) -> None:
    """foo_extra@FOO_1.0 leaves libfoo for libbar: moved only while libfoo NEEDs libbar."""
    before = baseline_records(image(tmp_path, "a", (FOO, "/usr/lib")), DEFAULT)
    bar = compile_library(Lib("int foo_extra(void) { return 2; }\n",
                              "FOO_1.0 { global: foo_extra; local: *; };\n", "libbar.so.1"),
                          tmp_path / "b/usr/lib")
    rest = Lib(FOO.source.replace("int foo_extra(void) { return 2; }", ""), FOO.script.replace("foo_extra; ", ""))
    compile_library(linked(rest, "-Wl,--push-state,--no-as-needed", f"-L{bar.parent}", "-l:libbar.so.1",
                           "-Wl,--pop-state"), tmp_path / "b/usr/lib")
    changes = diff_abi(before, image(tmp_path, "b"), DEFAULT)
    moved = [c for c in changes if c.kind == "symbol-moved"]
    assert [(c.subject, c.after["provider"]) for c in moved] == [("libfoo.so.1:foo_extra@FOO_1.0", "libbar.so.1")]
    assert verdicts(moved) == {("symbol-moved", "libfoo.so.1:foo_extra@FOO_1.0", "info")}
    compile_library(Lib("int foo_extra(void) { return 2; }\n", "FOO_1.0 { global: foo_extra; local: *; };\n",
                        "libbar.so.1"), tmp_path / "c/usr/lib")
    unlinked = image(tmp_path, "c", (rest, "/usr/lib"))
    assert ("symbol-removed", "libfoo.so.1:foo_extra@FOO_1.0", "break") in verdicts(
        diff_abi(before, unlinked, DEFAULT))


def test_versioning_added_is_no_removal_and_removed_is(tmp_path: Path) -> None:
    plain = Lib(FOO.source, None)
    unversioned = baseline_records(image(tmp_path, "a", (plain, "/usr/lib")), DEFAULT)
    versioned = image(tmp_path, "b", (FOO, "/usr/lib"))
    assert {v for _, _, v in verdicts(diff_abi(unversioned, versioned, DEFAULT))} == {"info"}
    back = diff_abi(baseline_records(versioned, DEFAULT), image(tmp_path, "c", (plain, "/usr/lib")),
                    DEFAULT)
    assert ("symbol-removed", "libfoo.so.1:foo_init@FOO_1.0", "break") in verdicts(back)


def _one_library(*exports: list[Any]) -> dict[str, Any]:
    return {"objects": {"/usr/lib/libx.so.1": {
        "arch": "x86_64", "type": "DYN", "soname": "libx.so.1", "needed": [],
        "versions": ["X_1"], "exports": [list(e) for e in exports]}}, "libraries": {}}


def test_records_made_once_per_section_and_per_library_content() -> None:
    from harness.diff import abi as abi_diff

    f = ["f", "X_1", True, "FUNC", "GLOBAL", 0]
    first = _one_library(f, ["v", "X_1", True, "OBJECT", "GLOBAL", 8])
    records = baseline_records(first, Suppressions())
    assert baseline_records(first, Suppressions()) is records  # one section: one dict
    # another image's copy of the library (equal exports, other objects): the same records
    again = baseline_records(_one_library(f, ["v", "X_1", True, "OBJECT", "GLOBAL", 8]),
                             Suppressions())
    assert again == records and again["libx.so.1:v@X_1"] is records["libx.so.1:v@X_1"]
    # the same key whose object's exports differ is not served the first one's symbols
    grown = baseline_records(_one_library(f, ["v", "X_1", True, "OBJECT", "GLOBAL", 16]),
                             Suppressions())
    assert grown["libx.so.1:v@X_1"] == {"type": "OBJECT", "bind": "GLOBAL", "default": True,
                                        "size": 16}
    # nor under other suppressions
    hidden = baseline_records(_one_library(f, ["v", "X_1", True, "OBJECT", "GLOBAL", 8]),
                              Suppressions(symbols=("v",)))
    assert "libx.so.1:v@X_1" not in hidden and "libx.so.1:f@X_1" in hidden
    # what the memos give is what a fresh start makes
    abi_diff._OWN_SYMBOLS.clear()
    abi_diff._own_held[0] = 0
    abi_diff._SHARED_RECORDS.clear()
    assert baseline_records(_one_library(f, ["v", "X_1", True, "OBJECT", "GLOBAL", 8]),
                            Suppressions()) == records


class _Uncomparable(list[Any]):
    """Exports that must not be compared (a library known by its digest is not)."""

    def __eq__(self, other: object) -> bool:
        raise AssertionError("exports compared")

    __hash__ = None  # type: ignore[assignment]


def test_a_library_of_a_known_digest_is_not_compared_and_another_digest_is() -> None:
    from harness.diff import abi as abi_diff

    abi_diff._OWN_SYMBOLS.clear()
    abi_diff._own_held[0] = 0
    f = ["f", "X_1", True, "FUNC", "GLOBAL", 0]
    files = {"/usr/lib/libx.so.1": {"type": "file", "sha256": "a" * 64}}
    records = baseline_records(_one_library(f), Suppressions(), files)
    # another image's copy of the same bytes: its records, its exports never compared
    again = _one_library(f)
    again["objects"]["/usr/lib/libx.so.1"]["exports"] = _Uncomparable([list(f)])
    assert baseline_records(again, Suppressions(), files)["libx.so.1:f@X_1"] is \
        records["libx.so.1:f@X_1"]
    # other bytes under the soname: compared, and a grown symbol is its own record
    grown = _one_library(["f", "X_1", True, "OBJECT", "GLOBAL", 16])
    other = {"/usr/lib/libx.so.1": {"type": "file", "sha256": "b" * 64}}
    assert baseline_records(grown, Suppressions(), other)["libx.so.1:f@X_1"] == {
        "type": "OBJECT", "bind": "GLOBAL", "default": True, "size": 16}
    # what the digest serves is what a fresh start makes
    abi_diff._OWN_SYMBOLS.clear()
    abi_diff._own_held[0] = 0
    assert baseline_records(_one_library(f), Suppressions()) == records


def test_equal_symbol_records_are_one_object_and_render_as_before(tmp_path: Path) -> None:
    exports = [[f"f{i}", "X_1", True, "FUNC", "GLOBAL", 0] for i in range(50)]
    exports += [["unversioned", None, False, "FUNC", "WEAK", 0], ["t", "X_1", False, "TLS", "GLOBAL", 4]]
    records = baseline_records(_one_library(*exports), Suppressions())
    assert len({id(records[f"libx.so.1:f{i}@X_1"]) for i in range(50)}) == 1
    assert records["libx.so.1:unversioned"] == {"type": "FUNC", "bind": "WEAK"}
    assert records["libx.so.1:t@X_1"] == {"type": "TLS", "bind": "GLOBAL", "default": False,
                                          "size": 4}
    baseline.write(tmp_path, "img", "x86_64", "abi", {}, records)
    text = (tmp_path / "img/x86_64/abi.json").read_text()
    # rendered as each record alone renders (a value shared by many keys changes nothing)
    assert json.loads(text)["records"] == json.loads(json.dumps(records))
    assert '"libx.so.1:f7@X_1": {"bind": "GLOBAL", "default": true, "type": "FUNC"},' in text


def test_the_library_memo_holds_a_bounded_count_of_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """It outlives the images it served: past its bound it starts again, and what it gives
    is still each library's own records."""
    from harness.diff import abi as abi_diff

    monkeypatch.setattr(abi_diff, "_MAX_OWN_SYMBOLS", 5)
    monkeypatch.setattr(abi_diff, "_OWN_SYMBOLS", {})
    monkeypatch.setattr(abi_diff, "_own_held", [0])
    for n in range(1, 8):
        exports = [[f"f{i}", "X_1", True, "FUNC", "GLOBAL", 0] for i in range(n % 4 + 1)]
        section = _one_library(*exports)
        section["objects"]["/usr/lib/libx.so.1"]["soname"] = f"libx{n}.so.1"
        records = baseline_records(section, Suppressions())
        assert sorted(k for k in records if ":" in k) == sorted(
            f"libx{n}.so.1:f{i}@X_1" for i in range(n % 4 + 1))
        held = sum(len(r) for _, r, _ in abi_diff._OWN_SYMBOLS.values())
        assert held == abi_diff._own_held[0] <= 5
