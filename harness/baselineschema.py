"""The shape of a stored baseline's records, checked when it is loaded.

A baseline is a file in git that anyone with write access to the repository (or a hostile
image's own `--update-baselines` run) may have shaped; the diffs index its records by field.
A record of the wrong type must stop the judgement with a message naming the file, the record
and the field, never crash a diff halfway (an aspect that drops out of the results reads as a
pass).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.errors import BaselineCorrupt

#: records are flat: a field holds a scalar, or a list or map of scalars (a library's paths)
MAX_DEPTH = 3
_SCALAR = (str, int, float, bool, type(None))


def _depth_ok(value: Any, depth: int) -> bool:
    """Whether a value nests no deeper than `depth` lists/maps (iteratively bounded)."""
    if isinstance(value, _SCALAR):
        return True
    if depth <= 0:
        return False
    if isinstance(value, list):
        return all(_depth_ok(v, depth - 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _depth_ok(v, depth - 1) for k, v in value.items())
    return False


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _opt_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _opt_int(v: Any) -> bool:
    return v is None or _int(v)


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _epoch(v: Any) -> bool:
    return v is None or _int(v) or isinstance(v, str)


_OCTAL = re.compile(r"[0-7]{1,6}")


def _mode(v: Any) -> bool:
    return isinstance(v, str) and _OCTAL.fullmatch(v) is not None


def _str_list(v: Any) -> bool:
    return v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v))


Fields = dict[str, tuple[bool, Callable[[Any], bool], str]]

#: field -> (required, check, what it must be), per record kind
_FILE: Fields = {
    "type": (True, _str, "a string"), "mode": (True, _mode, "an octal string"),
    "uid": (True, _int, "an integer"), "gid": (True, _int, "an integer"),
    "size": (False, _opt_int, "an integer"), "sha256": (False, _opt_str, "a string"),
    "target": (False, _opt_str, "a string"), "link": (False, _opt_str, "a string"),
    "dev": (False, _opt_str, "a string"),
}
_PACKAGE: Fields = {
    "name": (True, _str, "a string"), "arch": (False, _opt_str, "a string"),
    "evr": (False, _opt_str, "a string"), "version": (False, _opt_str, "a string"),
    "release": (False, _opt_str, "a string"), "manager": (False, _opt_str, "a string"),
    "epoch": (False, _epoch, "an integer"),
}
_LIBRARY: Fields = {
    "arch": (False, _opt_str, "a string"), "paths": (False, _str_list, "a list of strings"),
    "packages": (False, _str_list, "a list of strings"),
    "needed": (False, _str_list, "a list of strings"),
    "versions": (False, _str_list, "a list of strings"),
    "rpath": (False, _str_list, "a list of strings"),
    "runpath": (False, _str_list, "a list of strings"),
    "search_missing": (False, _str_list, "a list of strings"),
}
_SYMBOL: Fields = {
    "type": (False, _opt_str, "a string"), "bind": (False, _opt_str, "a string"),
    "size": (False, _opt_int, "an integer"), "default": (False, _bool, "a boolean"),
}


def _fields_of(aspect: str, key: str) -> Fields | None:
    """The fields a record of this aspect must have; None: any flat value will do."""
    if aspect == "files":
        return _FILE
    if aspect == "packages":
        return _PACKAGE
    if aspect == "abi":
        return _SYMBOL if ":" in key else _LIBRARY
    return None


#: the types json gives a scalar (exact types: a loaded baseline holds no subclass)
_SCALAR_TYPES = frozenset(_SCALAR)


#: checks that a value's type alone decides (a bool is never a subclass's instance), and the
#: types they admit: a record whose fields are all such checks is valid exactly when another
#: record of the same fields, each of the same type, is (`check_records` remembers those)
_BY_TYPE: dict[Callable[[Any], bool], frozenset[type]] = {
    _str: frozenset({str}), _opt_str: frozenset({str, type(None)}), _int: frozenset({int}),
    _opt_int: frozenset({int, type(None)}), _bool: frozenset({bool}),
    _epoch: frozenset({type(None), int, str}),
}


def _decided_by_types(fields: Fields | None, record: dict[str, Any]) -> bool:
    """Whether every field of `record` is checked by its type alone (no mode's digits, no
    list's items) and holds a scalar."""
    for name, value in record.items():
        spec = fields.get(name) if fields is not None else None
        if type(value) not in _SCALAR_TYPES or (spec is not None and spec[1] not in _BY_TYPE):
            return False
    return True


def _required(fields: Fields) -> frozenset[str]:
    return frozenset(name for name, (required, _, _) in fields.items() if required)


_REQUIRED: dict[int, frozenset[str]] = {id(f): _required(f) for f in (_FILE, _PACKAGE, _LIBRARY, _SYMBOL)}


def check_records(path: Path, aspect: str, header: Any, records: Mapping[str, Any]) -> None:
    """Raise `BaselineCorrupt` naming the file, the record and the field when a stored record
    does not have the shape the aspect's diff reads."""
    if not isinstance(header, dict) or not _depth_ok(header, MAX_DEPTH):
        raise BaselineCorrupt(f"baseline {path}: 'image' must be a flat object")
    # a file table (harness.filetable) packs only records of the shape checked here: the
    # others it holds as they were read
    loose = getattr(records, "loose_items", None)
    # (fields, names, types) of records found valid: an ABI baseline's hundred thousand
    # symbols have a handful of such shapes between them
    valid: set[tuple[int, tuple[str, ...], tuple[type, ...]]] = set()
    for key, record in (loose() if loose is not None else records.items()):
        if type(record) is dict:
            fields = _fields_of(aspect, key)
            shape = (id(fields), tuple(record), tuple(map(type, record.values())))
            if shape in valid:
                continue
            _check_record(path, aspect, key, record)
            if _decided_by_types(fields, record):
                valid.add(shape)
        else:
            _check_record(path, aspect, key, record)


def _check_record(path: Path, aspect: str, key: str, record: Any) -> None:
    """`check_records` of one record."""
    # a record is looked at field by field, and only a field that is not a scalar is
    # walked for its depth: a baseline holds a record per file and per symbol
    if type(record) is dict:
        for value in record.values():
            if type(value) not in _SCALAR_TYPES and not _depth_ok(value, MAX_DEPTH - 1):
                raise BaselineCorrupt(f"{_where(path, key)} nests deeper than {MAX_DEPTH} levels")
    elif not _depth_ok(record, MAX_DEPTH):
        raise BaselineCorrupt(f"{_where(path, key)} nests deeper than {MAX_DEPTH} levels")
    fields = _fields_of(aspect, key)
    if fields is None:
        return
    if type(record) is not dict:
        raise BaselineCorrupt(f"{_where(path, key)} must be an object, "
                              f"not {type(record).__name__}")
    if not _REQUIRED[id(fields)] <= record.keys():
        missing = min(_REQUIRED[id(fields)] - record.keys(), key=list(fields).index)
        raise BaselineCorrupt(f"{_where(path, key)} has no field {missing!r}")
    for name, value in record.items():
        spec = fields.get(name)
        if spec is not None and not spec[1](value):
            raise BaselineCorrupt(f"{_where(path, key)}: field {name!r} must be {spec[2]}, "
                                  f"not {type(value).__name__}")


def _where(path: Path, key: str) -> str:
    return f"baseline {path}: record {key[:200]!r}"
