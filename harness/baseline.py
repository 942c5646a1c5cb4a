"""Baselines: `DIR/NAME/ARCH/<aspect>.json`, reviewed in git like code.

Sorted keys, one record per line (so `git diff` shows one line per changed record), schema
and image identity inside. Written only on `--update-baselines`, atomically: a temp file in
the same folder, fsynced, renamed over the old one; a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from harness import safepath
from harness.baselineschema import check_records
from harness.errors import BaselineCorrupt, BaselineMissing, BaselineWriteError
from harness.filetable import FileTable, Row, pack
from harness.memo import Memo

SCHEMA = 1


def image_dir(root: Path, name: str, arch: str) -> Path:
    """The folder of one image's baselines on one architecture: the name, the architecture
    (the image's own string) each checked, and the folder resolved inside `root`."""
    safepath.check_part(name, "image name")
    safepath.check_arch(arch, name)
    return safepath.inside(root, name, arch)


def aspect_path(root: Path, name: str, arch: str, aspect: str) -> Path:
    """Where the baseline of one aspect of one image on one architecture lives (inside
    `root`, else `UnsafePath`)."""
    safepath.check_part(aspect, "aspect")
    image_dir(root, name, arch)
    return safepath.inside(root, name, arch, f"{aspect}.json")


def stored_aspects(root: Path, name: str, arch: str) -> list[str]:
    """The aspects one image on one architecture has a baseline of, in file name order."""
    return [p.name[:-len(".json")] for p in sorted(image_dir(root, name, arch).glob("*.json"))]


def unused_baselines(root: Path, ran: list[str]) -> list[Path]:
    """Baseline folders of images that were not part of the run."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name not in ran)


def render(aspect: str, image: dict[str, Any], records: Mapping[str, Any]) -> str:
    """The baseline file's text: stable for equal input, one record per line."""
    return "".join(_parts(aspect, image, records))


#: records rendered into one part of a baseline's text
_PART = 4096
#: how `render` opens the records after the header
_RECORDS_OPEN = ', "records": {\n'


def _parts(aspect: str, image: dict[str, Any], records: Mapping[str, Any]) -> Iterator[str]:
    """`render`'s text a part of many records at a time: the files baseline of a large
    image is written without being held whole as text."""
    head = json.dumps({"schema": SCHEMA, "aspect": aspect, "image": image},
                      sort_keys=True, ensure_ascii=True)
    yield head[:-1] + _RECORDS_OPEN
    yield from _record_parts(aspect, records)


#: aspects whose records share their values (harness.diff.abi: a symbol's record is one of
#: a few hundred): each value is rendered once a part
_SHARED_VALUES = frozenset({"abi"})


def _record_parts(aspect: str, records: Mapping[str, Any]) -> Iterator[str]:
    """`_parts` after the header."""
    keys = sorted(records)
    dumps, key_text = json.dumps, json.encoder.encode_basestring_ascii
    shared = aspect in _SHARED_VALUES
    for start in range(0, len(keys), _PART):
        if shared:
            rendered: dict[int, str] = {}  # by id: the records outlive the part
            lines = []
            for k in keys[start:start + _PART]:
                value = records[k]
                text = rendered.get(id(value))
                if text is None:
                    text = rendered[id(value)] = dumps(value, sort_keys=True, ensure_ascii=True)
                lines.append(f"{key_text(k)}: {text}")
        else:
            lines = [f"{key_text(k)}: {dumps(records[k], sort_keys=True, ensure_ascii=True)}"
                     for k in keys[start:start + _PART]]
        yield ",\n".join(lines) + (",\n" if start + _PART < len(keys) else "\n")
    yield "}}\n"


#: path -> (digest of the bytes, header, records) of the last loads: the files baseline serves
#: both the files and the security aspect, and the cause index reads every aspect's, and
#: each is then neither read nor parsed twice (callers never mutate what they get); an
#: image's baselines, and the one's before
_LOADED: Memo[Path, tuple[bytes, dict[str, Any], Mapping[str, Any]]] = Memo(12)


#: path -> (inode, size, mtime, ctime) and the sha256 of the bytes then: a warm run keys its
#: verdicts on the baseline files, and the files baseline (large on a large image)
#: serves two aspects. A baseline is replaced by rename (a new inode), and an edit in place
#: moves its mtime and ctime.
_DIGESTS: dict[Path, tuple[tuple[int, int, int, int], bytes]] = {}


def _known_digest(path: Path, st: os.stat_result) -> bytes | None:
    """The sha256 `file_digest` took of the file while it had this stat (None: not taken)."""
    known = _DIGESTS.get(path)
    return known[1] if known is not None and known[0] == safepath.identity(st) else None


def file_digest(path: Path) -> bytes:
    """The sha256 of a stored file's bytes; raises OSError (FileNotFoundError when absent)."""
    st = path.stat()
    known = _known_digest(path, st)
    if known is not None:
        return known
    stamp = safepath.identity(st)
    with path.open("rb") as f:  # in chunks: the files baseline of a large image is large
        digest = hashlib.file_digest(f, "sha256").digest()
    if len(_DIGESTS) > 64:
        _DIGESTS.clear()
    _DIGESTS[path] = (stamp, digest)
    return digest


#: the folder loads keep what they parse in, and look in first (`parsed_in`)
_PARSED_IN: list[Path] = []
#: baseline files at most this large are kept parsed: a larger one (the files baseline of an
#: image of a million files) would be read twice, and its records are mostly the snapshot's
PARSED_MAX = 32 << 20


@contextlib.contextmanager
def parsed_in(folder: Path) -> Iterator[None]:
    """Loads within keep each baseline they parse and check in `folder` (marshal, by the
    sha256 of the file's bytes and the aspect; the caller's folder is its code's and
    interpreter's), and find there what another process parsed of the same bytes (a
    snapshot taken ahead also reads its image's baselines; an earlier run read them): such a
    file is then neither parsed nor checked again. A damaged entry is a miss."""
    _PARSED_IN.append(folder)
    try:
        yield
    finally:
        _PARSED_IN.pop()


def _parsed_path(digest: bytes, aspect: str) -> Path | None:
    if not _PARSED_IN:
        return None
    return safepath.inside(_PARSED_IN[-1], f"{digest.hex()}-{aspect}.parsed")


def _recall_parsed(path: Path, digest: bytes, aspect: str, like: Mapping[str, Any] | None
                   ) -> tuple[dict[str, Any], Mapping[str, Any]] | None:
    """The header and records kept for these bytes, the records equal to `like`'s taken as
    its own (`load`); None when not kept or damaged."""
    kept = _parsed_path(digest, aspect)
    if kept is None or path.stat().st_size > PARSED_MAX:
        return None
    try:
        found = marshal.loads(kept.read_bytes())
    except Exception:  # noqa: BLE001 - absent, or damaged in any way marshal fails
        return None
    if not (isinstance(found, tuple) and len(found) == 2 and type(found[0]) is dict
            and type(found[1]) is dict):
        return None
    header, records = found
    if aspect == "files" and like:
        return header, _files_records(records, like)
    return header, records


def _keep_parsed(path: Path, digest: bytes, aspect: str, header: dict[str, Any],
                 records: Mapping[str, Any]) -> None:
    """Keep what a load parsed and checked (atomically; a failure costs only the reuse).
    Not a files baseline read against a snapshot's table: its read is mostly a comparison
    with the table's rows, which a kept copy would need again (the cold family run spent a
    third of its 0.59 s of keeping, under cProfile, turning the tables back into dicts)."""
    kept = _parsed_path(digest, aspect)
    if (kept is None or isinstance(records, FileTable) or path.stat().st_size > PARSED_MAX
            or kept.exists()):
        return
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        safepath.replace_file(kept, marshal.dumps((header, dict(records))))
    except (OSError, ValueError):
        pass


def _still_loaded(path: Path) -> tuple[dict[str, Any], Mapping[str, Any]] | None:
    """(header, records) of the last load of the file, while its bytes are those loaded."""
    loaded = _LOADED.get(path)
    if loaded is not None and loaded[0] == file_digest(path):
        return loaded[1], loaded[2]
    return None


def load(root: Path, name: str, arch: str, aspect: str, like: Mapping[str, Any] | None = None
         ) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """(image header, records) of a stored aspect, or `BaselineMissing` / `BaselineCorrupt`.

    `like`: the files of the snapshot the baseline is to be judged against. A files
    baseline then takes a stored record equal to one of them as that very record (a dict, or
    a table's packed row: harness.filetable), so an unchanged file of a large image costs its
    baseline no record of its own (read against a table, only the records that differ are
    held). Neither side is mutated once taken."""
    path = aspect_path(root, name, arch, aspect)
    try:
        loaded = _still_loaded(path)
        if loaded is not None:
            return loaded
        if _PARSED_IN:
            digest = file_digest(path)
            parsed = _recall_parsed(path, digest, aspect, like)
            if parsed is not None:
                _LOADED.put(path, (digest, *parsed))
                return parsed
        with path.open("rb") as f:
            read = _read_written(f, like)
        if read is None:  # not as `render` writes it (edited by hand, or damaged)
            data = path.read_bytes()
            text = data.decode("ascii")
    except FileNotFoundError:
        raise BaselineMissing(f"no baseline {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineCorrupt(f"baseline {path} is unreadable: {exc}") from exc
    if read is not None:
        digest, data_dict = read
    else:
        digest = hashlib.sha256(data).digest()
        del data
        data_dict = _json(path, text)
        del text
    header, checked = _checked(path, data_dict, aspect)
    records: Mapping[str, Any] = checked
    if aspect == "files" and not isinstance(checked, FileTable):
        records = _files_records(checked, like)  # whole-file JSON: a hand-edited baseline
    _LOADED.put(path, (digest, header, records))
    try:
        _keep_parsed(path, digest, aspect, header, records)
    except OSError:
        pass  # only the reuse is lost
    return header, records


def load_expecting(root: Path, name: str, arch: str, aspect: str, expected: Mapping[str, Any],
                   like: Mapping[str, Any] | None = None
                   ) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """`load`, for a baseline that likely holds `expected` (the candidate's own records, as
    an unchanged image's baseline does): when the file is `expected` as `render` writes them,
    under any header, its header is parsed and checked and `expected` itself is returned,
    the records neither parsed nor checked (they are this code's own); else `load` (with
    `like`). Making the text costs a fraction of parsing it (an ABI baseline's hundred
    thousand symbols)."""
    path = aspect_path(root, name, arch, aspect)
    try:
        loaded = _still_loaded(path)
        if loaded is not None:
            return loaded
        with path.open("rb") as f:
            # hashed already for a verdict's key: not hashed again
            found = _written_as(f, aspect, expected, _known_digest(path, os.fstat(f.fileno())))
    except OSError:
        found = None  # `load` names what is wrong
    if found is None:
        return load(root, name, arch, aspect, like)
    digest, document = found
    header, _ = _checked(path, {**document, "records": {}}, aspect)
    _LOADED.put(path, (digest, header, expected))
    return header, expected


def _header_document(first: bytes) -> dict[str, Any] | None:
    """The document a baseline's first line opens, as `render` writes it (its records not
    yet there); None when the line is not such."""
    if not first.isascii() or not first.endswith(_RECORDS_OPEN.encode()):
        return None
    try:
        document = json.loads(first[:-len(_RECORDS_OPEN)].decode("ascii") + "}")
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or "records" in document:
        return None
    return document


def _written_as(f: Any, aspect: str, records: Mapping[str, Any], digest: bytes | None = None
                ) -> tuple[bytes, dict[str, Any]] | None:
    """(sha256 of the bytes, the header document) when the file holds `records` as
    `render` writes them; None at the first byte that differs. `digest`: the file's sha256
    when known (then not computed again)."""
    first = f.readline()
    document = _header_document(first)
    if document is None:
        return None
    hashing = hashlib.sha256(first) if digest is None else None
    for part in _record_parts(aspect, records):
        data = part.encode("ascii")
        if f.read(len(data)) != data:
            return None
        if hashing is not None:
            hashing.update(data)
    if f.read(1):
        return None
    if hashing is not None:
        digest = hashing.digest()
    assert digest is not None
    return digest, document


#: bytes read at a time by `_read_written`: each read's complete record lines are parsed
#: at once
_CHUNK = 1 << 20
#: fields whose values many records repeat (a file's type and mode, its owning package, a
#: symbol's type and binding), by aspect: json gives every record a string of its own, held
#: once here
_SHARED = {"files": ("type", "mode", "package"), "packages": ("manager", "arch"),
           "abi": ("type", "bind", "arch")}
#: an aspect not above
_SHARED_ELSE = ("type", "mode", "package", "manager", "arch")


def _files_records(records: dict[str, Any], like: Mapping[str, Any] | None
                   ) -> Mapping[str, Any]:
    """A files baseline's records as a table deriving from `like` (an equal record sharing
    its row), when `like` is a table; else as they are (a record equal to `like`'s taken as
    `like`'s)."""
    if not isinstance(like, FileTable):
        for key, record in (records.items() if like else ()):
            same = like.get(key)  # type: ignore[union-attr]
            if same is not None and same == record:
                records[key] = same
        return records
    table = like.derived()
    for key, record in records.items():
        row = like.row(key)
        if row is not None and like.get(key) == record:
            table.put_row(key, row)
        elif type(record) is dict:
            table[key] = record
        else:
            return records  # not a record check_records would pass: it names it
    return table


def _read_written(f: Any, like: Mapping[str, Any] | None = None
                  ) -> tuple[bytes, dict[str, Any]] | None:
    """(sha256 of the bytes, the parsed document) of a baseline laid out as `render` writes
    it, read `_CHUNK` bytes at a time (the record lines each read completes parsed at once)
    and with repeated values held once, so the files baseline of a large image is never held
    whole as bytes or text beside its records; None when the layout is another (the caller
    parses the whole file then).

    Equal to `json.loads` of the whole file whenever it returns: a block is cut only after a
    line ending in a comma (a JSON string holds no raw newline), a cut inside a record leaves
    a block that is not JSON, and a block of no record is refused."""
    first = f.readline()
    document = _header_document(first)
    if document is None:
        return None
    digest = hashlib.sha256(first)
    add = _Adder(document.get("aspect"), like)
    pending: list[bytes] = []  # read, not yet parsed: no record line of them ends there
    cut_any = False
    for chunk in iter(lambda: f.read(_CHUNK), b""):
        digest.update(chunk)
        if not chunk.isascii():
            return None
        # the last ",\n" the new bytes complete (its comma may end the bytes before)
        before = pending[-1][-1:] if pending else b""
        at = (before + chunk).rfind(b",\n") - len(before)
        pending.append(chunk)
        if at < -len(before):
            continue
        data = b"".join(pending)
        cut = len(data) - len(chunk) + at
        if not add(data[:cut]):
            return None
        cut_any = True
        pending = [data[cut + 2:]]
    rest = b"".join(pending)
    if rest == b"}}\n" and not cut_any:
        pass  # no records
    elif not rest.endswith(b"\n}}\n") or not add(rest[:-4]):
        return None  # the end is not `render`'s, or a comma after the last record
    document["records"] = add.result()
    return digest.digest(), document


class _Adder:
    """Parses stretches of record lines (`"key": {...}` joined by commas) into `records`."""

    def __init__(self, aspect: Any, like: Mapping[str, Any] | None = None) -> None:
        self.records: dict[str, Any] = {}
        #: the snapshot's table a files baseline is read against (`_over`)
        self.like = like if aspect == "files" and isinstance(like, FileTable) else None
        #: the snapshot's plain files a files baseline is read against (not a table)
        self.plain: Mapping[str, Any] = (like if aspect == "files" and like and self.like is None
                                         else {})
        self.fields = _SHARED.get(aspect, _SHARED_ELSE) if isinstance(aspect, str) else _SHARED_ELSE
        # read against a snapshot's plain dict of files (not a table: `_over`), a path is
        # interned, and an unchanged record is the snapshot's own dict
        self.files = aspect == "files"
        self.shared: dict[str, str] = {}
        #: the paths of the snapshot's table, sorted, and how far the records read reached;
        #: the records held of their own, the snapshot's paths they lack, the last key read
        self.ordered: list[str] | None = None
        self.at = 0
        self.own: dict[str, Row] = {}
        self.gone: list[str] = []
        self.prev: str | None = None

    def __call__(self, block: bytes) -> bool:
        """Add the records of one stretch; False when it is not JSON or holds none."""
        try:
            found = json.loads(b"{" + block + b"}")
        except (ValueError, RecursionError):
            return False
        if not isinstance(found, dict) or not found:  # `render` never writes an empty stretch
            return False
        records, fields, shared = self.records, self.fields, self.shared
        if self.like is not None:
            return self._over(self.like, found)
        like = self.plain
        for key, record in found.items():
            same = like.get(key)
            if same is not None and same == record:
                records[sys.intern(key)] = same
                continue
            if type(record) is dict:
                for field in fields:
                    value = record.get(field)
                    if type(value) is str:
                        record[field] = shared.setdefault(value, value)
            records[sys.intern(key) if self.files else key] = record
        return True

    def _over(self, like: FileTable, found: dict[str, Any]) -> bool:
        """Add file records against the snapshot's table being judged (`like`), its paths
        merged in order with the records' (`render` writes them sorted): a record equal to
        the snapshot's is not held at all, another is held as its own row, and a path of the
        snapshot the records pass by is gone (`result`). False for keys out of order or a
        record that is not an object (the whole file is then read as JSON, and the check
        names the record)."""
        if self.ordered is None:
            self.ordered = sorted(like)
        ordered, at, own, gone, prev = self.ordered, self.at, self.own, self.gone, self.prev
        fields, shared = self.fields, self.shared
        names = like.names
        for key, record in found.items():
            if type(record) is not dict or (prev is not None and key <= prev):
                return False
            prev = key
            while at < len(ordered) and ordered[at] < key:
                gone.append(ordered[at])
                at += 1
            if at < len(ordered) and ordered[at] == key:
                at += 1
                if like.get(key) == record:
                    continue
            for field in fields:  # held as they are when not packed
                value = record.get(field)
                if type(value) is str:
                    record[field] = shared.setdefault(value, value)
            own[key] = pack(record, names)
        self.at, self.prev = at, prev
        return True

    def result(self) -> dict[str, Any] | FileTable:
        """The records added."""
        if self.like is None:
            return self.records
        ordered = self.ordered if self.ordered is not None else sorted(self.like)
        self.gone.extend(ordered[self.at:])
        return FileTable.over(self.like, self.own, self.gone)


def _json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than any record
        raise BaselineCorrupt(f"baseline {path} is not valid JSON ({exc}); restore it from git "
                              "or re-create it with --update-baselines") from exc


def _checked(path: Path, data: Any, aspect: str) -> tuple[dict[str, Any], Any]:
    if not isinstance(data, dict) or not isinstance(data.get("records"), (dict, FileTable)):
        raise BaselineCorrupt(f"baseline {path} has no 'records' object")
    if data.get("schema") != SCHEMA:
        raise BaselineCorrupt(f"baseline {path} has schema {data.get('schema')!r}, "
                              f"this harness reads schema {SCHEMA}")
    if data.get("aspect") != aspect:
        raise BaselineCorrupt(f"baseline {path} holds aspect {data.get('aspect')!r}, not {aspect!r}")
    check_records(path, aspect, data.get("image") or {}, data["records"])
    return data.get("image") or {}, data["records"]


def write(root: Path, name: str, arch: str, aspect: str, image: dict[str, Any],
          records: Mapping[str, Any]) -> bool:
    """Store an aspect atomically; return False (and touch nothing) when it is unchanged."""
    path = aspect_path(root, name, arch, aspect)
    # rendered twice, to compare and then to write, rather than held whole
    digest = hashlib.sha256()
    for part in _parts(aspect, image, records):
        digest.update(part.encode("ascii"))
    try:
        if file_digest(path) == digest.digest():
            return False
    except OSError:
        pass
    try:
        _replace(path, (part.encode("ascii") for part in _parts(aspect, image, records)))
    except OSError as exc:
        raise BaselineWriteError(f"could not write baseline {path} ({exc.strerror or exc}); "
                                 "the previous file is intact") from exc
    return True


def _replace(path: Path, parts: Iterator[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    safepath.replace_file(path, parts, sync=True)
