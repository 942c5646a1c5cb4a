"""The compact forms the readers hold large images in give exactly what they replaced: one mode
string per mode, a dpkg database's lines one at a time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.snapshot.dpkg import _lines, stanza_blocks
from harness.snapshot.walk import mode_string

#: every line break str.splitlines knows, and text around them
_TEXT = st.lists(st.sampled_from(
    ["a", "Package: x", " ", "\t", "\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e",
     "\x85", "\u2028", "\u2029", "\n\n"]), max_size=40).map("".join)


@settings(max_examples=2000, deadline=None)
@given(_TEXT)
def test_lines_are_splitlines(text: str) -> None:
    assert list(_lines(text)) == text.splitlines()


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
