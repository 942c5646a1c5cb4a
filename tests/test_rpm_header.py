"""rpm header blobs built by hand, one rule of the format per test: types, the immutable
region and its trailer, dribble entries that replace region entries, legacy headers without a
region, and file lists that do not add up."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import pytest

from harness.snapshot import rpmheader as t
from harness.errors import ParseError
from harness.snapshot.rpmheader import RpmHeader

Value = str | list[str] | list[int] | bytes


def _encode(typ: int, value: Value) -> bytes:
    if typ in (t.STRING, t.I18NSTRING) and isinstance(value, str):
        return value.encode() + b"\0"
    if typ in (t.STRING_ARRAY, t.I18NSTRING) and isinstance(value, list):
        return b"".join(str(v).encode() + b"\0" for v in value)
    if typ == t.BIN and isinstance(value, bytes):
        return value
    fmt = {t.CHAR: "B", t.INT8: "B", t.INT16: "H", t.INT32: "I", t.INT64: "Q"}[typ]
    assert isinstance(value, list)
    return struct.pack(f">{len(value)}{fmt}", *value)


def _count(typ: int, value: Value) -> int:
    if typ == t.STRING:
        return 1
    return len(value)


def build(region: Sequence[tuple[int, int, Value]],
          dribbles: Sequence[tuple[int, int, Value]] = (), with_region: bool = True) -> bytes:
    """A database header blob: an immutable region (with trailer) and dribble entries."""
    index: list[tuple[int, int, int, int]] = []
    data = bytearray()

    def put(tag: int, typ: int, value: Value) -> None:
        align = {t.INT16: 2, t.INT32: 4, t.INT64: 8}.get(typ, 1)
        data.extend(b"\0" * (-len(data) % align))
        index.append((tag, typ, len(data), _count(typ, value)))
        data.extend(_encode(typ, value))

    if with_region:
        index.append((t.HEADERIMMUTABLE, t.BIN, 0, 16))  # offset patched below
    for entry in region:
        put(*entry)
    if with_region:
        ril = len(index)
        index[0] = (t.HEADERIMMUTABLE, t.BIN, len(data), 16)
        data.extend(struct.pack(">IIiI", t.HEADERIMMUTABLE, t.BIN, -16 * ril, 16))
    for entry in dribbles:
        put(*entry)
    head = struct.pack(">II", len(index), len(data))
    return head + b"".join(struct.pack(">IIiI", *e) for e in index) + bytes(data)


BASIC: list[tuple[int, int, Value]] = [
    (t.NAME, t.STRING, "demo"), (t.VERSION, t.STRING, "1.0"), (t.RELEASE, t.STRING, "1"),
    (t.EPOCH, t.INT32, [2]), (t.SUMMARY, t.I18NSTRING, ["C summary", "de Zusammenfassung"]),
    (t.LONGSIZE, t.INT64, [5_000_000_000]), (t.SIGMD5, t.BIN, bytes(range(16))),
]


def test_every_type_decodes() -> None:
    """Strings, I18N strings (C locale first), 32- and 64-bit ints, binary."""
    h = RpmHeader(build(BASIC), "h")
    assert (h.string(t.NAME), h.integer(t.EPOCH), h.integer(t.LONGSIZE)) == ("demo", 2,
                                                                             5_000_000_000)
    assert h.string(t.SUMMARY) == "C summary"
    assert h.strings(t.SUMMARY) == ["C summary", "de Zusammenfassung"]
    assert h.binary(t.SIGMD5) == bytes(range(16))
    assert h.string(t.LICENSE) is None and h.integers(t.FILEMODES) == []


def test_magic_prefix_is_accepted() -> None:
    """Headers from package files start with the 8-byte header magic."""
    assert RpmHeader(t.MAGIC + build(BASIC), "h").string(t.NAME) == "demo"


def test_dribble_entries_replace_region_entries() -> None:
    """rpm adds install-time data after the region; a repeated tag there wins."""
    h = RpmHeader(build(BASIC, dribbles=[(t.RELEASE, t.STRING, "2.fixed"),
                                         (1008, t.INT32, [1_700_000_000])]), "h")
    assert h.string(t.RELEASE) == "2.fixed"
    assert h.integer(1008) == 1_700_000_000


def test_legacy_header_without_region() -> None:
    """A header whose first tag is no region tag is read whole."""
    h = RpmHeader(build(BASIC, with_region=False), "h")
    assert h.string(t.VERSION) == "1.0"


def test_bad_region_trailer_is_an_error() -> None:
    """The trailer must repeat a region tag and count the region's entries."""
    blob = bytearray(build(BASIC))
    trailer = len(blob) - 16
    struct.pack_into(">i", blob, trailer + 8, -16 * 50)  # more entries than the index has
    with pytest.raises(ParseError, match="region trailer"):
        RpmHeader(bytes(blob), "h")


def test_wrong_type_is_an_error_not_garbage() -> None:
    """Asking a string tag for integers (or the reverse) names the tag."""
    h = RpmHeader(build(BASIC), "h")
    with pytest.raises(ParseError, match="tag 1000 is not an integer"):
        h.integers(t.NAME)
    with pytest.raises(ParseError, match="tag 1003 is not a string"):
        h.strings(t.EPOCH)


FILES: list[tuple[int, int, Value]] = BASIC + [
    (t.DIRNAMES, t.STRING_ARRAY, ["/usr/bin/", "/etc/"]),
    (t.BASENAMES, t.STRING_ARRAY, ["tool", "tool.conf", "link"]),
    (t.DIRINDEXES, t.INT32, [0, 1, 0]),
    (t.FILEMODES, t.INT16, [0o100755, 0o100644, 0o120777]),
    (t.FILESIZES, t.INT32, [10, 20, 4]),
    (t.FILEDIGESTS, t.STRING_ARRAY, ["ab" * 32, "cd" * 32, ""]),
    (t.FILEDIGESTALGO, t.INT32, [8]),
    (t.FILEUSERNAME, t.STRING_ARRAY, ["root", "root", "root"]),
    (t.FILEGROUPNAME, t.STRING_ARRAY, ["root", "wheel", "root"]),
    (t.FILELINKTOS, t.STRING_ARRAY, ["", "", "tool"]),
    (t.FILEFLAGS, t.INT32, [0, 17, 0]),
]


def test_file_list_joins_dirnames_and_basenames() -> None:
    """Per file: path from the directory index, mode, size, digest with its algorithm."""
    files = RpmHeader(build(FILES), "h").files()
    assert [f["path"] for f in files] == ["/usr/bin/tool", "/etc/tool.conf", "/usr/bin/link"]
    assert files[1] == {"path": "/etc/tool.conf", "mode": 0o100644, "size": 20,
                        "digest": "sha256:" + "cd" * 32, "user": "root", "group": "wheel",
                        "link": None, "flags": 17, "state": None}
    assert (files[2]["link"], files[2]["digest"]) == ("tool", None)


def test_long_file_sizes_win() -> None:
    """Files over 4 GiB are in LONGFILESIZES, which rpm prefers when present."""
    files = RpmHeader(build(FILES + [(t.LONGFILESIZES, t.INT64, [1, 2, 1 << 33])]), "h").files()
    assert [f["size"] for f in files] == [1, 2, 1 << 33]


def test_old_filenames_and_their_replacement() -> None:
    """rpm 3 headers list whole paths; a BASENAMES dribble supersedes them."""
    old = BASIC + [(t.OLDFILENAMES, t.STRING_ARRAY, ["/bin/a", "/bin/b"])]
    assert RpmHeader(build(old), "h").paths() == ["/bin/a", "/bin/b"]
    newer: list[tuple[int, int, Value]] = [
        (t.DIRNAMES, t.STRING_ARRAY, ["/usr/bin/"]), (t.BASENAMES, t.STRING_ARRAY, ["a"]),
        (t.DIRINDEXES, t.INT32, [0])]
    assert RpmHeader(build(old, dribbles=newer), "h").paths() == ["/usr/bin/a"]


@pytest.mark.parametrize(("change", "match"), [
    ((t.DIRINDEXES, t.INT32, [0, 5, 0]), "past the directory list"),
    ((t.DIRINDEXES, t.INT32, [0, 1]), "3 basenames but 2 directory indexes"),
    ((t.FILEMODES, t.INT16, [0o755]), "3 files but 1 file modes"),
])
def test_file_lists_that_do_not_add_up_are_errors(change: tuple[int, int, Value],
                                                  match: str) -> None:
    """Columns of different lengths or indexes past the directories: ParseError."""
    entries = [e for e in FILES if e[0] != change[0]] + [change]
    with pytest.raises(ParseError, match=match):
        RpmHeader(build(entries), "h").files()


def test_string_running_off_the_data_is_an_error() -> None:
    """A string array claiming more strings than NUL bytes."""
    blob = bytearray(build(FILES))
    il = struct.unpack_from(">I", blob)[0]
    for i in range(il):
        if struct.unpack_from(">I", blob, 8 + 16 * i)[0] == t.FILEUSERNAME:
            struct.pack_into(">I", blob, 8 + 16 * i + 12, 40)
    with pytest.raises(ParseError, match="tag 1039"):
        RpmHeader(bytes(blob), "h").files()
