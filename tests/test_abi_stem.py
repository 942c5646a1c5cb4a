"""A soname's stem (harness.diff.abi._stem, which pairs a soname bump): an image chooses its
sonames, so the trailing-version pattern runs on the version tail only, never backtracking
over a long digit run elsewhere in the name, and gives what it gave over the whole name."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.diff import abi

WHOLE = re.compile(r"[-_.]?[0-9][0-9.]*$")


def whole_name_stem(library: str) -> str:
    """The stem as the pattern gives it over the whole name (the reference)."""
    name, paren, arch = library.partition("(")
    stem = (abi._SONAME_STEM.sub(".so", name) if abi._SONAME_STEM.search(name)
            else WHOLE.sub("", name))
    return (stem or name) + paren + arch


@pytest.mark.parametrize("name", ["libtest19-soname-0", "libfoo-1.2", "libfoo.so.1", "lib1",
                                  "1", "-1", "lib_2.", "lib..3", "lib1\n", "lib1\n\n",
                                  "libfoo.so.1.2(x86-64)", "libx-1(aarch64)", "", "a.b-"])
def test_known_stems(name: str) -> None:
    assert abi._stem(name) == whole_name_stem(name)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="0123456789.-_as\no(x)", max_size=24))
def test_any_name_has_the_whole_name_stem(name: str) -> None:
    assert abi._stem(name) == whole_name_stem(name)


def test_the_pattern_sees_only_the_version_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    class Recording:
        def sub(self, repl: str, text: str) -> Any:
            seen.append(text)
            return WHOLE.sub(repl, text)

    monkeypatch.setattr(abi, "_BARE_VERSION", Recording())
    name = "lib" + "1" * 20_000 + "x-2"
    assert abi._stem(name) == name[:-2]
    assert seen == ["-2"]
