"""File records held packed: the files aspect of an image, one small bytes object per path.

A file's record as a dict costs about 270 bytes, its digest as hex text 113 more: an image of
a million files held 0.7 GB of records alone (bench/README.md). A `FileTable` keeps the
common records (a regular file, a folder) as one bytes object each, 80 bytes of memory with
the digest, and hands out a fresh dict per access; any other record (a symlink, a hard link, a
device, a field or a value the packing does not cover: a hand-edited baseline's) is kept as
its dict. The records it hands out equal the ones put in, field for field and value for
value, so every reader of a `dict[str, dict]` of files reads a table unchanged; a record read
out is a copy, and a change to a record is made by putting it back (`table[path] = record`).

Tables derived from one another (a baseline read against a snapshot, a filtered view) share
their package names (`Names`) and rows: a files baseline holds only the rows that differ from
the snapshot's (`FileTable.over`), and two tables compare in one C-level pass over their rows.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from typing import Any

#: a regular file: mode, uid, gid, size, sha256 (50 bytes); with an owning package's index
#: (54); a folder: mode, uid, gid (10). The length tells them apart. The small forms (ids
#: and a package index below 65536, a size below 2**48, split in 32 and 16 bits) keep a
#: row within 80 bytes of memory, where the others take 96 (pymalloc's 16-byte classes)
_FILE = struct.Struct("<HIIQ32s")
_OWNED = struct.Struct("<HIIQ32sI")
_SMALL = struct.Struct("<HHHIH32s")
_SMALL_OWNED = struct.Struct("<HHHIH32sH")
_DIR = struct.Struct("<HII")
#: row length -> whether it is packed with a package index
_LENGTHS = {10: False, 44: False, 46: True, 50: False, 54: True}
_FILE_KEYS = frozenset({"type", "mode", "uid", "gid", "size", "sha256"})
_OWNED_KEYS = _FILE_KEYS | {"package"}
_DIR_KEYS = frozenset({"type", "mode", "uid", "gid"})

#: one string per mode (as harness.snapshot.walk writes them: four octal digits)
_MODES = tuple(format(bits, "04o") for bits in range(0o10000))
_MODE_BITS = {text: bits for bits, text in enumerate(_MODES)}
_U32 = 1 << 32
_U64 = 1 << 64

Row = bytes | dict[str, Any]


class Names:
    """Package names by index, shared by the tables derived from one another."""

    __slots__ = ("names", "index")

    def __init__(self, names: list[str] | None = None) -> None:
        self.names: list[str] = list(names or ())
        self.index: dict[str, int] = {name: i for i, name in enumerate(self.names)}

    def of(self, name: str) -> int:
        """The index of `name`, added when new."""
        found = self.index.get(name)
        if found is None:
            found = self.index[name] = len(self.names)
            self.names.append(name)
        return found


def _uint(value: Any, bound: int) -> bool:
    return type(value) is int and 0 <= value < bound


def pack(record: Mapping[str, Any], names: Names) -> Row:
    """`record` as a row: packed when it is a regular file or a folder whose every value
    unpacks to itself; else a dict of its own (a copy)."""
    kind = record.get("type")
    keys = record.keys()
    text = record.get("mode")
    mode = _MODE_BITS.get(text) if type(text) is str else None
    uid: Any = record.get("uid")
    gid: Any = record.get("gid")
    if mode is None or not _uint(uid, _U32) or not _uint(gid, _U32):
        return dict(record)
    if kind == "dir" and keys == _DIR_KEYS:
        return _DIR.pack(mode, uid, gid)
    if kind != "file" or not (keys == _FILE_KEYS or keys == _OWNED_KEYS):
        return dict(record)
    size, digest, package = record["size"], record["sha256"], record.get("package")
    if not _uint(size, _U64) or type(digest) is not str or len(digest) != 64:
        return dict(record)
    try:
        raw = bytes.fromhex(digest)
    except ValueError:
        return dict(record)
    if raw.hex() != digest:  # upper case: it would come back lower
        return dict(record)
    index = 0
    if len(keys) != 6:
        if type(package) is not str:
            return dict(record)
        index = names.of(package)
    if uid < 65536 and gid < 65536 and size < 1 << 48 and index < 65536:
        low, high = size & 0xFFFFFFFF, size >> 32
        if len(keys) == 6:
            return _SMALL.pack(mode, uid, gid, low, high, raw)
        return _SMALL_OWNED.pack(mode, uid, gid, low, high, raw, index)
    if len(keys) == 6:
        return _FILE.pack(mode, uid, gid, size, raw)
    return _OWNED.pack(mode, uid, gid, size, raw, index)


def unpack(row: Row, names: Names) -> dict[str, Any]:
    """The record a row holds, as a dict of its own."""
    if type(row) is not bytes:
        return dict(row)  # type: ignore[arg-type]
    size = len(row)
    if size == 44:
        mode, uid, gid, low, high, raw = _SMALL.unpack(row)
        return {"type": "file", "mode": _MODES[mode], "uid": uid, "gid": gid,
                "size": low | high << 32, "sha256": raw.hex()}
    if size == 46:
        mode, uid, gid, low, high, raw, package = _SMALL_OWNED.unpack(row)
        return {"type": "file", "mode": _MODES[mode], "uid": uid, "gid": gid,
                "size": low | high << 32, "sha256": raw.hex(), "package": names.names[package]}
    if size == 50:
        mode, uid, gid, length, raw = _FILE.unpack(row)
        return {"type": "file", "mode": _MODES[mode], "uid": uid, "gid": gid, "size": length,
                "sha256": raw.hex()}
    if size == 54:
        mode, uid, gid, length, raw, package = _OWNED.unpack(row)
        return {"type": "file", "mode": _MODES[mode], "uid": uid, "gid": gid, "size": length,
                "sha256": raw.hex(), "package": names.names[package]}
    mode, uid, gid = _DIR.unpack(row)
    return {"type": "dir", "mode": _MODES[mode], "uid": uid, "gid": gid}


class _Items(ItemsView[str, dict[str, Any]]):
    _mapping: FileTable

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        names = self._mapping._names
        for path, row in self._mapping.rows_iter():
            yield path, unpack(row, names)


class _Values(ValuesView[dict[str, Any]]):
    _mapping: FileTable

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = self._mapping._names
        for _, row in self._mapping.rows_iter():
            yield unpack(row, names)


class FileTable(Mapping[str, dict[str, Any]]):
    """Path -> file record, the records packed (module docstring). Reads as a dict of
    records does; `table[path] = record` puts one (a copy: later changes to the dict are not
    seen).

    A table may share the rows of another (`filtered`, `over`): a view leaves some of its
    paths out (`_hidden`) and may hold rows of its own (`_own`) in front of them. A view
    is read-only, and a table is filled once (a walk, a load) and not changed after."""

    __slots__ = ("_rows", "_names", "_hidden", "_own", "_extra")

    def __init__(self, records: Mapping[str, Mapping[str, Any]] | None = None,
                 names: Names | None = None) -> None:
        self._rows: dict[str, Row] = {}
        self._names = names if names is not None else Names()
        #: paths of `_rows` the view leaves out (never one of `_own`'s)
        self._hidden: frozenset[str] = frozenset()
        #: a view's rows in front of `_rows`, and how many of its paths `_rows` lacks
        self._own: dict[str, Row] | None = None
        self._extra = 0
        if records:
            for path, record in records.items():
                self[path] = record

    @classmethod
    def over(cls, base: FileTable, own: dict[str, Row], gone: Iterable[str]) -> FileTable:
        """A read-only table of `base`'s records but those of the paths `gone`, with `own`'s
        rows (of `base`'s names) in front: a baseline of a snapshot's files that stores only
        what differs (`base` a table of its own, not a view)."""
        view = base.derived()
        view._rows = base._rows
        view._hidden = frozenset(p for p in gone if p not in own)
        view._own = own
        view._extra = sum(1 for p in own if p not in base._rows)
        return view

    @property
    def names(self) -> Names:
        """The package names this table's rows index (shared with the tables derived)."""
        return self._names

    def row(self, path: str) -> Row | None:
        """The row of `path` as held (shared, never to be changed), or None."""
        own = self._own
        if own is not None:
            mine = own.get(path)
            if mine is not None:
                return mine
        if self._hidden and path in self._hidden:
            return None
        return self._rows.get(path)

    def __getitem__(self, path: str) -> dict[str, Any]:
        row = self.row(path)
        if row is None:
            raise KeyError(path)
        return unpack(row, self._names)

    def get(self, path: str, default: Any = None) -> Any:
        row = self.row(path)
        return default if row is None else unpack(row, self._names)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.row(path) is not None

    def rows_iter(self) -> Iterator[tuple[str, Row]]:
        """Every (path, row) as held (what `add_rows` takes back: marshal writes both kinds)."""
        if not self._hidden and self._own is None:
            return iter(self._rows.items())
        return self._view_rows()

    def _view_rows(self) -> Iterator[tuple[str, Row]]:
        hidden, own = self._hidden, self._own or {}
        for path, row in self._rows.items():
            if path not in hidden:
                yield path, own.get(path, row)
        if self._extra:
            for path, row in own.items():
                if path not in self._rows:
                    yield path, row

    def __iter__(self) -> Iterator[str]:
        if not self._hidden and self._own is None:
            return iter(self._rows)
        return (path for path, _ in self._view_rows())

    def __len__(self) -> int:
        return len(self._rows) - len(self._hidden) + self._extra

    def keys(self) -> KeysView[str]:
        return self._rows.keys() if not self._hidden and self._own is None else KeysView(self)

    def items(self) -> ItemsView[str, dict[str, Any]]:
        return _Items(self)

    def values(self) -> ValuesView[dict[str, Any]]:
        return _Values(self)

    def loose_items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(path, record) of the records not packed (every symlink, hard link and device
        among them), as held: never to be changed."""
        for path, row in self.rows_iter():
            if type(row) is dict:
                yield path, row

    def type_of(self, path: str, default: Any = None) -> Any:
        """The `type` of the record at `path` (None for a record without one), `default`
        when there is none; nothing unpacked."""
        row = self.row(path)
        if row is None:
            return default
        if type(row) is bytes:
            return "dir" if len(row) == 10 else "file"
        return row.get("type")  # type: ignore[union-attr]

    def paths_of(self, kind: str) -> Iterator[str]:
        """The paths whose record's type is `kind`, no record unpacked."""
        for path, row in self.rows_iter():
            if type(row) is bytes:
                if (len(row) == 10) == (kind == "dir") and kind in ("dir", "file"):
                    yield path
            elif row.get("type") == kind:  # type: ignore[union-attr]
                yield path

    def with_mode(self, mask: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """(path, record) of the records whose mode has a bit of `mask` (an unpacked record
        whose mode is not octal among them: the caller's checks decide), only those
        unpacked."""
        names = self._names
        for path, row in self.rows_iter():
            if type(row) is bytes:
                if int.from_bytes(row[:2], "little") & mask:
                    yield path, unpack(row, names)
                continue
            try:
                bits = int(row.get("mode", "0"), 8)  # type: ignore[union-attr]
            except (TypeError, ValueError):
                bits = mask
            if bits & mask:
                yield path, dict(row)  # type: ignore[arg-type]

    def set_package(self, path: str, name: str) -> None:
        """Record `name` as the package owning the file at `path` (a field of its record)."""
        self._writable()
        row = self._rows[path]
        if type(row) is bytes and len(row) in (44, 50):
            index = self._names.of(name)
            if len(row) == 50:
                self._rows[path] = row + index.to_bytes(4, "little")
                return
            if index < 65536:
                self._rows[path] = row + index.to_bytes(2, "little")
                return
        record = unpack(row, self._names)
        record["package"] = name
        self[path] = record

    def _writable(self) -> None:
        if self._hidden or self._own is not None:
            raise TypeError("a view of a file table is read-only")

    def __setitem__(self, path: str, record: Mapping[str, Any]) -> None:
        self._writable()
        self._rows[path] = pack(record, self._names)

    def __delitem__(self, path: str) -> None:
        self._writable()
        del self._rows[path]

    def put_row(self, path: str, row: Row) -> None:
        """Hold `row`, a row of a table sharing this one's names, for `path`."""
        self._writable()
        self._rows[path] = row

    def add_rows(self, rows: list[tuple[str, Row]]) -> None:
        """Take back rows `rows_iter` gave, of a table with the same names; a row neither packed
        nor a dict is refused (ValueError), as is a packed row of another length, or whose
        mode or package index `unpack` could not read (a damaged cache file)."""
        self._writable()
        for path, row in rows:
            if type(path) is not str:
                raise ValueError("a path that is not a string")
            if type(row) is bytes:
                owned = _LENGTHS.get(len(row))
                if owned is None:
                    raise ValueError(f"a packed record of {len(row)} bytes")
                if int.from_bytes(row[:2], "little") >= len(_MODES):
                    raise ValueError("a packed mode past the permission bits")
                if owned and int.from_bytes(row[-4 if len(row) == 54 else -2:], "little") >= len(
                        self._names.names):
                    raise ValueError("a package index past the names")
            elif type(row) is not dict:
                raise ValueError(f"a record that is a {type(row).__name__}")
            self._rows[path] = row

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping) or len(other) != len(self):
            return False
        if isinstance(other, FileTable) and other._names is self._names:
            if (other._hidden == self._hidden and other._own == self._own
                    and (other._rows is self._rows or other._rows == self._rows)):
                return True  # a C-level pass at most (a baseline shares unchanged rows)
            return all(other.row(path) == row for path, row in self.rows_iter())
        return all(other.get(path) == record for path, record in self.items())

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FileTable({len(self)} records)"

    def same(self, path: str, other: FileTable) -> bool:
        """Whether both tables hold equal records for `path` (present in both)."""
        mine, theirs = self.row(path), other.row(path)
        if mine is theirs:
            return True
        if type(mine) is bytes and type(theirs) is bytes and other._names is self._names:
            return mine == theirs
        return mine is not None and theirs is not None and (
            unpack(mine, self._names) == unpack(theirs, other._names))

    def derived(self) -> FileTable:
        """An empty table sharing this one's names (its rows may take this one's)."""
        return FileTable(names=self._names)

    def filtered(self, keep: Callable[[str], bool]) -> FileTable:
        """The records whose path `keep` keeps: this table itself when it keeps them all,
        else a read-only view sharing its rows (a copy of the rows of an image of a million
        files would cost 40 MB, and volatile paths are few)."""
        dropped = [path for path in self if not keep(path)]
        if not dropped:
            return self
        view = self.derived()
        view._rows = self._rows
        view._hidden = self._hidden | frozenset(p for p in dropped if p in self._rows)
        if self._own is not None:
            view._own = {p: r for p, r in self._own.items() if keep(p)}
            view._extra = sum(1 for p in view._own if p not in self._rows)
        return view


def as_plain(files: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The records as a dict of dicts (for JSON)."""
    return {path: dict(record) for path, record in files.items()}
