"""File records held packed (harness.filetable): every record comes back as it was put in,
field for field and value for value, whatever it holds; what is packed, and what a baseline
shares with the snapshot it is judged against."""

from __future__ import annotations

import json
import marshal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import baseline
from harness.filetable import FileTable, Names, as_plain, pack, unpack
from harness.snapshot import Snapshot

DIGEST = "0123456789abcdef" * 4
FILE = {"type": "file", "mode": "0644", "uid": 0, "gid": 0, "size": 12, "sha256": DIGEST}
DIR = {"type": "dir", "mode": "0755", "uid": 0, "gid": 0}


@pytest.mark.parametrize("record, packed", [
    (FILE, True),
    ({**FILE, "package": "libc6"}, True),
    (DIR, True),
    ({**FILE, "mode": "4755", "uid": (1 << 32) - 1, "size": (1 << 64) - 1}, True),
    ({"type": "symlink", "mode": "0777", "uid": 0, "gid": 0, "target": "busybox"}, False),
    ({**FILE, "link": "/bin/x"}, False),  # a hard link
    ({"type": "char", "mode": "0666", "uid": 0, "gid": 0, "dev": "1,3"}, False),
    ({**FILE, "sha256": DIGEST.upper()}, False),  # would come back in lower case
    ({**FILE, "sha256": "ab"}, False),
    ({**FILE, "sha256": " " + DIGEST[1:]}, False),
    ({**FILE, "sha256": None}, False),
    ({**FILE, "mode": "755"}, False),  # three digits: a hand-edited baseline's
    ({**FILE, "mode": "07777"}, False),
    ({**FILE, "mode": ["0644"]}, False),  # not even hashable
    ({**FILE, "uid": True}, False),  # a bool is an int to Python, not to JSON
    ({**FILE, "uid": 1 << 32}, False),
    ({**FILE, "gid": -1}, False),
    ({**FILE, "size": -1}, False),
    ({**FILE, "size": 1 << 64}, False),
    ({**FILE, "size": 1.0}, False),
    ({**FILE, "package": None}, False),
    ({**FILE, "package": 7}, False),
    ({**FILE, "extra": 1}, False),
    ({k: v for k, v in FILE.items() if k != "size"}, False),
    ({**DIR, "package": "base-files"}, False),
    ({**DIR, "type": "file"}, False),
])
def test_a_record_comes_back_as_it_was_put_in(record: dict[str, Any], packed: bool) -> None:
    table = FileTable()
    table["/p"] = record
    assert type(table.row("/p")) is (bytes if packed else dict)
    back = table["/p"]
    assert back == record and json.dumps(back) == json.dumps(record)
    assert [type(v) for v in back.values()] == [type(v) for v in record.values()]
    assert table == {"/p": record} and {"/p": record} == table
    assert table.get("/p") == record and table.get("/q") is None and "/p" in table


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2, max_value=1 << 65),
                    st.sampled_from(["file", "dir", "0644", "755", DIGEST, DIGEST.upper(), ""]),
                    st.text(max_size=70))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["type", "mode", "uid", "gid", "size", "sha256",
                                        "package", "target", "link"]), _VALUES),
       st.dictionaries(st.sampled_from(["mode", "uid", "gid", "size", "sha256", "package"]),
                       _VALUES, max_size=2))
def test_any_record_comes_back_equal(record: dict[str, Any], overrides: dict[str, Any]) -> None:
    for candidate in (record, {**FILE, **overrides}, {**DIR, **overrides}):
        names = Names()
        back = unpack(pack(candidate, names), names)
        assert back == candidate
        assert [type(v) for v in back.values()] == [type(v) for v in candidate.values()]


def test_a_record_read_out_is_a_copy_and_a_change_is_put_back() -> None:
    table = FileTable({"/a": FILE, "/l": {"type": "symlink", "mode": "0777", "uid": 0,
                                          "gid": 0, "target": "a"}})
    for path in ("/a", "/l"):
        record = table[path]
        record["mode"] = "0600"
        assert table[path]["mode"] != "0600"
        table[path] = record
        assert table[path]["mode"] == "0600"


def test_tables_compare_as_the_dicts_of_their_records() -> None:
    plain = {"/a": FILE, "/d": DIR, "/o": {**FILE, "package": "p"}}
    first, second = FileTable(plain), FileTable(plain)  # names of their own
    assert first == second == plain and first == FileTable(plain, first.names)
    second["/o"] = {**FILE, "package": "q"}
    assert first != second and first != {**plain, "/x": DIR} and first != [1]
    assert dict(first.items()) == plain and list(first.values()) == list(plain.values())
    assert sorted(first.keys() - {"/a"}) == ["/d", "/o"]


def test_a_filtered_table_is_a_read_only_view_of_its_rows() -> None:
    table = FileTable({"/a": FILE, "/d": DIR, "/var/log/x": FILE, "/var/log/y": DIR})
    assert table.filtered(lambda p: True) is table
    kept = table.filtered(lambda p: not p.startswith("/var/log/"))
    plain = {"/a": FILE, "/d": DIR}
    assert kept == plain and plain == kept and len(kept) == 2 and list(kept) == ["/a", "/d"]
    assert "/var/log/x" not in kept and kept.get("/var/log/x") is None
    assert kept.row("/var/log/x") is None and kept.row("/a") is table.row("/a")
    with pytest.raises(KeyError):
        kept["/var/log/x"]
    assert sorted(kept.keys() - {"/a"}) == ["/d"] and sorted(table.keys() - kept.keys()) == [
        "/var/log/x", "/var/log/y"]
    assert dict(kept.items()) == plain and list(kept.values()) == [FILE, DIR]
    assert list(kept.rows_iter()) == [("/a", table.row("/a")), ("/d", table.row("/d"))]
    assert kept.filtered(lambda p: p != "/d") == {"/a": FILE} and len(table) == 4
    other = FileTable({"/a": FILE, "/d": DIR, "/var/log/x": DIR}, table.names)
    assert other.filtered(lambda p: not p.startswith("/var/log/")) == kept != table
    with pytest.raises(TypeError, match="read-only"):
        kept["/b"] = FILE


def test_a_files_baseline_shares_the_rows_of_the_unchanged_records(tmp_path: Path) -> None:
    """Judged against a snapshot's table, an unchanged record of the baseline is that
    table's very row; a changed one, a removed one and a hand-edited one are their own."""
    records = {f"/f{i}": {**FILE, "size": i, "package": "p"} for i in range(5)}
    records["/link"] = {"type": "symlink", "mode": "0777", "uid": 0, "gid": 0, "target": "f0"}
    baseline.write(tmp_path, "img", "x86_64", "files", {}, records)
    snapshot = FileTable(records)
    snapshot["/f1"] = {**FILE, "size": 99}
    del snapshot["/f2"]
    baseline._LOADED.clear()
    try:
        _, loaded = baseline.load(tmp_path, "img", "x86_64", "files", like=snapshot)
    finally:
        baseline._LOADED.clear()
    assert isinstance(loaded, FileTable) and loaded == records
    assert loaded.row("/f0") is snapshot.row("/f0") and loaded.row("/f3") is snapshot.row("/f3")
    assert loaded.row("/f1") is not snapshot.row("/f1") and loaded["/f2"] == records["/f2"]


def test_a_hand_edited_files_baseline_is_checked_and_named(tmp_path: Path) -> None:
    baseline.write(tmp_path, "img", "x86_64", "files", {}, {"/a": FILE})
    path = tmp_path / "img/x86_64/files.json"
    path.write_text(path.read_text().replace('"uid": 0', '"uid": "root"'))
    baseline._LOADED.clear()
    try:
        with pytest.raises(baseline.BaselineCorrupt, match="'/a'.*'uid' must be an integer"):
            baseline.load(tmp_path, "img", "x86_64", "files", like=FileTable({"/a": FILE}))
    finally:
        baseline._LOADED.clear()


def test_a_kept_snapshot_comes_back_with_its_packed_rows_and_names(tmp_path: Path) -> None:
    files = FileTable({"/a": {**FILE, "package": "p"}, "/b": {**FILE, "package": "q"},
                       "/d": DIR, "/l": {"type": "symlink", "mode": "0777", "uid": 0,
                                         "gid": 0, "target": "a"}})
    snap = Snapshot(image={"arch": "x86_64"}, metadata={}, files=files, packages={})
    snap.keep(tmp_path / "s")
    back = Snapshot.recall(tmp_path / "s")
    assert back is not None and isinstance(back.files, FileTable)
    assert back.files == files and as_plain(back.files) == as_plain(files)


@pytest.mark.parametrize("row", [b"\0" * 49, b"\0" * 50 + b"\x05\0\0\0" + b"", 7, ["x"],
                                 b"\xff\xff" + b"\0" * 42, b"\0" * 44 + b"\x01\0"])
def test_a_kept_snapshot_with_a_row_it_cannot_hold_is_a_miss(tmp_path: Path, row: Any) -> None:
    if row == b"\0" * 50 + b"\x05\0\0\0":
        row = b"\0" * 50 + (5).to_bytes(4, "little")  # a package index past the names
    Snapshot(image={}, metadata={}, files={"/a": FILE}, packages={}).keep(tmp_path / "s")
    data = (tmp_path / "s").read_bytes()
    size = int.from_bytes(data[:8], "little")
    batch = marshal.dumps([("/a", row)])
    (tmp_path / "s").write_bytes(data[:8 + size] + len(batch).to_bytes(8, "little") + batch)
    assert Snapshot.recall(tmp_path / "s") is None


_PATHS = st.sampled_from(["/", "/a", "/a/b", "/a b", "/a-b", "/a/c", "/b", "/é", "/z", "/\\x"])
_RECORDS = st.sampled_from([FILE, {**FILE, "size": 1}, {**FILE, "package": "p"}, DIR,
                            {**DIR, "mode": "0700"}, {**FILE, "mode": "755"},
                            {"type": "symlink", "mode": "0777", "uid": 0, "gid": 0,
                             "target": "a"}])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_PATHS, _RECORDS), st.dictionaries(_PATHS, _RECORDS),
       st.sampled_from([1, 7, 64, 1 << 20]))
def test_a_files_baseline_read_against_any_snapshot_reads_as_written(
        snapshot: dict[str, Any], stored: dict[str, Any], chunk: int) -> None:
    """Read against a snapshot's table (only what differs held of its own), a files
    baseline equals what was written, whatever the two hold, and compares with the
    snapshot as the plain dicts do."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        baseline.write(root, "img", "x86_64", "files", {}, stored)
        table = FileTable(snapshot)
        old_chunk = baseline._CHUNK
        baseline._CHUNK = chunk
        baseline._LOADED.clear()
        try:
            _, loaded = baseline.load(root, "img", "x86_64", "files", like=table)
        finally:
            baseline._CHUNK = old_chunk
            baseline._LOADED.clear()
    assert loaded == stored and stored == loaded and len(loaded) == len(stored)
    assert dict(loaded.items()) == stored and sorted(loaded) == sorted(stored)
    assert (loaded == table) == (stored == snapshot)
    for path in ("/a", "/nowhere"):
        assert (path in loaded) == (path in stored) and loaded.get(path) == stored.get(path)
    kept = loaded.filtered(lambda p: p != "/a")
    assert kept == {p: r for p, r in stored.items() if p != "/a"}


def test_a_files_baseline_with_its_keys_out_of_order_reads_as_json_reads_it(
        tmp_path: Path) -> None:
    """A hand-edited baseline whose records are not in `render`'s order (or name a path
    twice: the last one counts), read against a snapshot's table, reads as JSON reads it."""
    baseline.write(tmp_path, "img", "x86_64", "files", {}, {"/a": FILE, "/b": DIR, "/c": FILE})
    path = tmp_path / "img/x86_64/files.json"
    text = path.read_text()
    lines = text.split("\n")
    lines[1], lines[2] = lines[2].rstrip(",") + ",", lines[1]  # /b before /a
    path.write_text("\n".join(lines).replace('"/c": {', '"/a": {'))
    expected = json.loads(path.read_text())["records"]
    baseline._LOADED.clear()
    try:
        _, loaded = baseline.load(tmp_path, "img", "x86_64", "files",
                                  like=FileTable({"/a": FILE, "/b": DIR, "/c": FILE}))
    finally:
        baseline._LOADED.clear()
    assert loaded == expected and list(expected) == ["/b", "/a"]


@pytest.mark.parametrize("record, length", [
    (FILE, 44), ({**FILE, "package": "p"}, 46), ({**FILE, "uid": 65536}, 50),
    ({**FILE, "gid": 65536, "package": "p"}, 54), ({**FILE, "size": (1 << 48) - 1}, 44),
    ({**FILE, "size": 1 << 48}, 50), ({**FILE, "size": (1 << 32) + 5}, 44), (DIR, 10),
])
def test_a_row_takes_the_smallest_form_its_values_fit(record: dict[str, Any], length: int) -> None:
    names = Names()
    row = pack(record, names)
    assert isinstance(row, bytes) and len(row) == length and unpack(row, names) == record


def test_a_package_index_past_65535_takes_the_large_form() -> None:
    names = Names([f"p{i}" for i in range(65536)])
    row = pack({**FILE, "package": "last"}, names)
    assert isinstance(row, bytes) and len(row) == 54
    assert unpack(row, names) == {**FILE, "package": "last"}


def test_paths_of_a_kind_and_records_with_mode_bits_read_rows_as_their_records_say() -> None:
    records = {"/a": FILE, "/d": DIR, "/s": {**FILE, "mode": "4755"}, "/w": {**DIR, "mode": "1777"},
               "/odd": {**FILE, "mode": "755", "size": 1}, "/l": {
                   "type": "symlink", "mode": "0777", "uid": 0, "gid": 0, "target": "a"}}
    table = FileTable(records)
    for kind in ("file", "dir", "symlink"):
        assert list(table.paths_of(kind)) == [p for p, r in records.items() if r["type"] == kind]
    for mask in (0o6000, 0o002, 0o7777, 0o100):
        assert dict(table.with_mode(mask)) == {
            p: r for p, r in records.items() if int(r["mode"], 8) & mask}
    assert list(table.filtered(lambda p: p != "/s").with_mode(0o6000)) == []


@pytest.mark.parametrize("record", [FILE, {**FILE, "uid": 1 << 20}, {**FILE, "sha256": "x"}])
def test_a_package_set_on_a_record_reads_back(record: dict[str, Any]) -> None:
    table = FileTable({"/a": record})
    table.set_package("/a", "libc6")
    assert table["/a"] == {**record, "package": "libc6"}
    many = FileTable(names=Names([f"p{i}" for i in range(65536)]))
    many["/a"] = record
    many.set_package("/a", "last")
    assert many["/a"] == {**record, "package": "last"}


@pytest.mark.parametrize("record", [
    FILE, {**FILE, "package": "libc6"}, DIR, {**FILE, "uid": (1 << 32) - 1},
    {"type": "symlink", "mode": "0777", "uid": 0, "gid": 0, "target": "busybox"},
    {**FILE, "link": "/bin/x"}, {**FILE, "mode": "755"},
    {k: v for k, v in FILE.items() if k != "type"},  # a hand-edited record of no type
])
def test_a_records_type_is_told_without_unpacking_it(record: dict[str, Any]) -> None:
    absent = object()
    table = FileTable({"/x": record})
    assert table.type_of("/x", absent) == record.get("type")
    assert table.type_of("/y", absent) is absent
    from harness.paths import _ABSENT, type_of
    assert type_of(table, "/x") == type_of({"/x": record}, "/x") == record.get("type")
    assert type_of(table, "/y") is type_of({}, "/y") is _ABSENT
