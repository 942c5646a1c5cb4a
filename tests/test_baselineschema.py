"""The baseline shape check accepts exactly what the plain field-by-field reading accepts: the
check walks only what is not a scalar, and this test holds it to the straightforward one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.baselineschema import MAX_DEPTH, _depth_ok, _fields_of, check_records
from harness.errors import BaselineCorrupt


def _plain(aspect: str, records: dict[str, Any]) -> bool:
    """Whether the records pass, read the plain way: the whole record's depth, then every
    field of its kind."""
    for key, record in records.items():
        if not _depth_ok(record, MAX_DEPTH):
            return False
        fields = _fields_of(aspect, key)
        if fields is None:
            continue
        if not isinstance(record, dict):
            return False
        for name, (required, check, _) in fields.items():
            if name not in record:
                if required:
                    return False
            elif not check(record[name]):
                return False
    return True


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 0o7777), st.floats(allow_nan=False),
                     st.sampled_from(["", "0755", "0644", "8", "01234567", "x", "4755\n", "a" * 7]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2)),
    max_leaves=8)
_NAMES = st.sampled_from(["type", "mode", "uid", "gid", "size", "sha256", "target", "link", "dev",
                          "name", "arch", "evr", "epoch", "paths", "needed", "versions", "bind",
                          "default", "extra"])
_RECORD = st.one_of(st.dictionaries(_NAMES, _VALUES, max_size=7), _VALUES)
_COMMON = {"type": "file", "mode": "0644", "uid": 0, "gid": 0, "name": "p"}


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(["files", "packages", "abi", "metadata"]),
       st.dictionaries(st.sampled_from(["/a", "libc.so.6", "libc.so.6:f@@G", "k"]),
                       st.one_of(_RECORD, _RECORD.map(lambda r: {**_COMMON, **r}
                                                      if isinstance(r, dict) else r)),
                       max_size=3))
def test_the_check_accepts_what_the_plain_reading_accepts(aspect: str, records: dict[str, Any]) -> None:
    try:
        check_records(Path("b.json"), aspect, {}, records)
        passed = True
    except BaselineCorrupt:
        passed = False
    assert passed == _plain(aspect, records), records


@pytest.mark.parametrize("record, message", [
    ({"type": "file", "mode": "0644", "uid": 0}, "has no field 'gid'"),
    ({"type": "file", "mode": "0644\n", "uid": 0, "gid": 0}, "field 'mode' must be an octal"),
    ({"type": "file", "mode": "0644", "uid": 0, "gid": 0, "x": [[[[1]]]]}, "nests deeper"),
    ([1], "must be an object, not list"),
])
def test_each_fault_is_named(record: Any, message: str) -> None:
    with pytest.raises(BaselineCorrupt, match=message):
        check_records(Path("b.json"), "files", {}, {"/a": record})


#: a valid record of each kind, for the generated ones to start from
_BASES = {"files": {"type": "file", "mode": "0644", "uid": 0, "gid": 0},
          "packages": {"name": "x", "epoch": 1},
          "abi": {"type": "FUNC", "bind": "GLOBAL", "size": 1, "default": True},
          "metadata": {"User": "root"}}


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(_BASES)),
       st.lists(st.sampled_from([{}, {"mode": "x"}, {"mode": "755"}, {"uid": True},
                                 {"uid": "0"}, {"size": None}, {"size": "1"}, {"default": 1},
                                 {"epoch": True}, {"epoch": "1"}, {"type": None},
                                 {"name": 3}, {"paths": ["a", 1]}, {"bind": 5},
                                 {"User": []}, {"User": [[[["x"]]]]}]),
                min_size=2, max_size=5))
@example("files", [{}, {"mode": "x"}])  # a mode's digits: not decided by its type
@example("abi", [{}, {"size": "1"}])
@example("packages", [{}, {"epoch": True}])  # a bool is not an epoch
@example("metadata", [{}, {"User": [[[["x"]]]]}])
def test_records_of_shapes_seen_valid_are_judged_as_each_alone(aspect: str, changes: list) -> None:
    """Records are checked once per shape (fields and their types) found valid: a set of
    records is refused exactly when one of them is refused checked on its own."""
    key = "libc.so.6:memcpy@GLIBC_2.2.5" if aspect == "abi" else "/a"
    records = {key + "#" * i: {**_BASES[aspect], **change} for i, change in enumerate(changes)}

    def refused(some: dict[str, Any]) -> bool:
        try:
            check_records(Path("b.json"), aspect, {}, some)
        except BaselineCorrupt:
            return True
        return False

    alone = any(refused({key: record}) for key, record in records.items())
    assert refused(records) == alone
