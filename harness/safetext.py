"""Image-controlled text made safe to show: one helper for terminals, one for Markdown.

Subjects are file names, before/after values come from package databases and configs, and
errors quote both: an image chooses every byte of them. On a terminal, control characters
(ESC sequences that clear the screen, set the title or make OSC 8 links; `\\r` that
overwrites a line), bidi overrides and invisible characters are spelled out (`\\x1b`,
`\\u202e`); in Markdown, on top of that, every character that could open a table cell, a
heading, a link, emphasis or raw HTML is backslash-escaped. The HTML report escapes with
`html.escape` over `terminal`.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f"
                     "\ufeff\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: ASCII punctuation CommonMark/GFM give a meaning to (each may be backslash-escaped); an
#: underscore inside a word (`x86_64`) opens no emphasis and stays as it is
_MARKDOWN = re.compile(r"([\\`*{}\[\]()#+!|<>~&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def _escape_char(match: re.Match[str]) -> str:
    if match.group() in _NAMED:
        return _NAMED[match.group()]
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text: object) -> str:
    """The text with every invisible or disguising character spelled out (`\\xNN`,
    `\\uNNNN`): controls and escape sequences, `\\r`, bidi overrides, and non-UTF-8 bytes
    kept as surrogate escapes (which no UTF-8 file could hold). One line stays one line."""
    return _UNSAFE.sub(_escape_char, text if isinstance(text, str) else str(text))


def markdown(text: object) -> str:
    """`terminal` text whose Markdown punctuation is backslash-escaped: it stays literal text
    in a table cell or a heading (no extra row, heading, link, emphasis or raw HTML)."""
    return _MARKDOWN.sub(r"\\\1", terminal(text))
