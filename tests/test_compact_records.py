"""The compact forms the readers hold large images in give exactly what they replaced: one mode
string per mode, a dpkg database's lines one at a time, a baseline read a block of lines at a
time with its repeated values held once."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import baseline
from harness.errors import BaselineCorrupt
from harness.filetable import FileTable
from harness.snapshot import dpkg
from harness.snapshot.dpkg import _lines, _text, _text_lines, stanza_blocks
from harness.snapshot.walk import mode_string

REPO = Path(__file__).resolve().parent.parent

#: every line break str.splitlines knows, and text around them
_TEXT = st.lists(st.sampled_from(
    ["a", "Package: x", " ", "\t", "\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e",
     "\x85", "\u2028", "\u2029", "\n\n"]), max_size=40).map("".join)


@settings(max_examples=2000, deadline=None)
@given(_TEXT)
def test_lines_are_splitlines(text: str) -> None:
    assert list(_lines(text)) == text.splitlines()


@settings(max_examples=2000, deadline=None)
@given(_TEXT, st.sampled_from(["utf-8", "latin-1"]), st.integers(1, 8))
def test_a_database_decoded_in_blocks_gives_its_lines(text: str, encoding: str, block: int) -> None:
    data = text.encode(encoding, "replace")
    old, dpkg._BLOCK = dpkg._BLOCK, block
    try:
        assert list(_text_lines(data)) == _text(data).splitlines()
    finally:
        dpkg._BLOCK = old


def test_mode_strings_are_the_octal_permission_bits() -> None:
    for mode in [*range(0o10000), 0o100644, 2**70 + 0o4755, -1]:
        assert mode_string(mode) == format(mode & 0o7777, "04o")


def test_repeated_values_are_held_once() -> None:
    text = "".join(f"Package: p{i}\nStatus: install ok installed\nPriority: optional\n\n"
                   for i in range(3))
    blocks = [fields for _, fields in stanza_blocks(text, "status")]
    assert [b["package"] for b in blocks] == ["p0", "p1", "p2"]
    assert blocks[0]["status"] is blocks[2]["status"] == "install ok installed"
    assert next(iter(blocks[0])) is next(iter(blocks[1]))  # the field name


@pytest.mark.exclusive  # a memory bound means something only on a machine not shared with other tests
def test_a_200000_package_dpkg_database() -> None:
    """A dpkg status of 200,000 installed packages through the whole snapshot, in a fresh
    interpreter: every package read, peak RSS bounded (the records themselves, not every
    stanza's fields nor the file's lines held at once)."""
    code = textwrap.dedent("""\
        import io, json, resource, tarfile
        from harness.rootfs.image import ImageInfo
        from harness.snapshot import take_snapshot
        n = 200_000
        status = "".join(
            f"Package: pkg{i:06d}\\nStatus: install ok installed\\nPriority: optional\\n"
            f"Section: libs\\nInstalled-Size: {i % 5000}\\nMaintainer: M <m@example.org>\\n"
            f"Architecture: amd64\\nSource: src{i // 3:06d}\\nVersion: 1.{i % 97}-{i % 7}\\n"
            f"Depends: libc6 (>= 2.34)\\nDescription: package {i}\\n a longer line\\n\\n"
            for i in range(n)).encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for d in ("var", "var/lib", "var/lib/dpkg"):
                info = tarfile.TarInfo(d); info.type = tarfile.DIRTYPE; tar.addfile(info)
            info = tarfile.TarInfo("var/lib/dpkg/status"); info.size = len(status)
            tar.addfile(info, io.BytesIO(status))
        del status
        buf.seek(0)
        snap = take_snapshot(ImageInfo("dpkg", "sha256:" + "0" * 64, "x86_64", "linux", None, {}), buf)
        print(json.dumps({"packages": len(snap.packages),
                          "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=900, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    print("200,000 dpkg packages:", figures)
    assert figures["packages"] == 200_000
    # the bound includes the tar, held in memory
    assert figures["rss_mb"] < 300


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                     st.text(max_size=8), st.sampled_from(["file", "dir", "0644", "0755", "x,", "}}"]))
_RECORD = st.dictionaries(st.sampled_from(["type", "mode", "uid", "package", "sha256", "paths", "z"]),
                          st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3)), max_size=5)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _RECORD, max_size=30), st.integers(1, 300),
       st.dictionaries(st.text(max_size=6), st.sampled_from([
           {"type": "dir", "mode": "0755", "uid": 0, "gid": 0}, {"type": "x"}]), max_size=5)
       | st.none())
def test_a_written_baseline_reads_in_blocks_as_json_reads_it(
        records: dict, block: int, snapshot: dict | None) -> None:
    """What `render` writes reads back, a block of lines at a time and with its repeated
    values shared, exactly as json reads the whole file; read against a snapshot's file
    table too (a record that is not an object is then read with the whole file)."""
    text = baseline.render("files", {"image_id": "sha256:1", "arch": "x86_64"}, records)
    old, baseline._CHUNK = baseline._CHUNK, block
    try:
        read = baseline._read_written(io.BytesIO(text.encode("ascii")),
                                      FileTable(snapshot) if snapshot is not None else None)
    finally:
        baseline._CHUNK = old
    if snapshot is not None and not all(type(r) is dict for r in records.values()):
        assert read is None
        return
    assert read is not None
    assert read[0] == hashlib.sha256(text.encode("ascii")).digest()
    assert read[1] == json.loads(text)


@pytest.mark.parametrize("edit", [
    lambda t: t.replace(",\n", ",\n\n", 1),  # a blank line
    lambda t: t.replace(",\n", ",\n,\n", 1),  # an empty record line
    lambda t: t.replace(",\n", ",\n  ,\n", 1),  # a record line of blanks
    lambda t: t.replace(",\n", "\n", 1),  # a comma lost
    lambda t: t.replace("}}\n", "}}\n\n"),  # something after the end
    lambda t: t.replace("}}\n", "}}"),
    lambda t: t.replace('"sha256": "ab", ', '"sha256":\n"ab", '),  # a record over two lines
    lambda t: t.replace('{"gid"', '{ "gid"', 1),
    lambda t: json.dumps(json.loads(t), indent=2),  # pretty-printed by hand
    lambda t: t.replace('"/b"', '"/\\u00e9"'),
    lambda t: t.replace('"/c": {', '"/a": {'),  # a key given twice: the last one counts
])
@pytest.mark.parametrize("chunk", [1, 2, 7, 1 << 20])
def test_a_baseline_laid_out_otherwise_reads_as_json_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: Any, chunk: int) -> None:
    monkeypatch.setattr(baseline, "_CHUNK", chunk)  # a read may end anywhere in a line
    records = {p: {"gid": 0, "mode": "0644", "sha256": "ab", "type": "file", "uid": 0}
               for p in ("/a", "/b", "/c")}
    records["/b"]["package"] = "p"
    baseline.write(tmp_path, "img", "x86_64", "files", {"image_id": "sha256:1"}, records)
    path = tmp_path / "img/x86_64/files.json"
    path.write_text(edit(path.read_text()))
    try:
        expected = json.loads(path.read_text())
    except ValueError:
        with pytest.raises(BaselineCorrupt, match="is not valid JSON"):
            baseline.load(tmp_path, "img", "x86_64", "files")
        return
    assert baseline.load(tmp_path, "img", "x86_64", "files") == (expected["image"],
                                                                  expected["records"])


def test_a_loaded_baseline_holds_repeated_values_once(tmp_path: Path) -> None:
    records = {f"/f{i}": {"gid": 0, "mode": "0644", "type": "file", "uid": 0, "package": "p"}
               for i in range(3)}
    baseline.write(tmp_path, "img", "x86_64", "files", {}, records)
    _, loaded = baseline.load(tmp_path, "img", "x86_64", "files")
    assert loaded == records
    for field in ("mode", "type", "package"):
        assert loaded["/f0"][field] is loaded["/f2"][field]


@pytest.mark.parametrize("count", [0, 1, 5, 40])
def test_a_kept_snapshot_is_recalled_whole_and_a_damaged_one_is_a_miss(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """The snapshot cache marshals file records a batch at a time; what it recalls equals
    what was kept, and a truncated, extended or old-format file is a miss."""
    import marshal

    from harness import snapshot as snapshots

    monkeypatch.setattr(snapshots, "_KEPT_AT_ONCE", 3)
    files = {f"/f{i}": {"type": "file", "mode": "0644", "uid": 0, "gid": 0, "size": i,
                        "sha256": f"{i:064x}"} for i in range(count)}
    snap = snapshots.Snapshot(image={"arch": "x86_64"}, metadata={"User": "x"}, files=files,
                              packages={"p:amd64": {"name": "p"}}, errors={"abi": ["why"]})
    path = tmp_path / "k.snapshot"
    snap.keep(path)
    assert snapshots.Snapshot.recall(path) == snap
    whole = path.read_bytes()
    extra = marshal.dumps([("/x", {})])
    damaged = [whole + len(extra).to_bytes(8, "little") + extra, whole + b"\0",
               marshal.dumps({**vars(snap), "files": files}),  # unframed: the old format
               (1 << 60).to_bytes(8, "little") + whole[8:],  # a part longer than the file
               whole[:3]]
    if count:
        damaged.append(whole[:-5])
    for data in damaged:
        path.write_bytes(data)
        assert snapshots.Snapshot.recall(path) is None


def _render_whole(aspect: str, image: dict, records: dict) -> str:
    """The baseline text as it was rendered in one piece (the format's reference)."""
    head = json.dumps({"schema": 1, "aspect": aspect, "image": image}, sort_keys=True,
                      ensure_ascii=True)
    lines = [f"{json.dumps(k, ensure_ascii=True)}: {json.dumps(records[k], sort_keys=True, ensure_ascii=True)}"
             for k in sorted(records)]
    body = ",\n".join(lines)
    return head[:-1] + ', "records": {\n' + body + ("\n" if lines else "") + "}}\n"


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _RECORD, max_size=12), st.integers(1, 5))
def test_a_baseline_written_in_parts_is_the_whole_text(tmp_path_factory: pytest.TempPathFactory,
                                                      records: dict, part: int) -> None:
    root = tmp_path_factory.mktemp("b")
    old, baseline._PART = baseline._PART, part
    try:
        assert baseline.write(root, "img", "x86_64", "files", {"image_id": "sha256:1"}, records)
        assert not baseline.write(root, "img", "x86_64", "files", {"image_id": "sha256:1"},
                                  dict(reversed(list(records.items()))))
    finally:
        baseline._PART = old
    assert (root / "img/x86_64/files.json").read_text() == _render_whole(
        "files", {"image_id": "sha256:1"}, records)
