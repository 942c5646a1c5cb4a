"""apk (Alpine) version ordering, as current apk-tools orders versions (src/version.c).

An Alpine version is `digit{.digit}...{letter}{_suffix{#}}...{~hash}{-r#}`, read as typed
tokens; the first pair of tokens of the same type whose values differ decides. Then:

- numbers compare by value, except after a dot when either has a leading zero: then as strings
  (Gentoo's rule: `1.05 < 1.1`, `1.0 < 1.00`);
- pre-release suffixes (`_alpha < _beta < _pre < _rc`) sort before the bare version,
  post-release ones (`_cvs < _svn < _git < _hg < _p`) after it;
- when one version runs out first, the longer one is greater unless it goes on with a
  pre-release suffix; a version that turns invalid sorts below the one that ended.

Older apk-tools (the token parser before the rewrite) put `1.0_alpha` above `1.0`; the current
rules, followed here, put it below, as every Alpine packager expects. Numbers are Python ints,
so long date stamps (`_pre20210530193627`) order by value. Only ASCII counts (C locale).
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_DIGIT, DIGIT, LETTER, SUFFIX, SUFFIX_NO, COMMIT_HASH, REVISION_NO, END, INVALID = range(9)
#: suffix values; NONE stands between the pre-release and the post-release suffixes
PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")
SUFFIX_VALUE = {name: i for i, name in enumerate(PRE_SUFFIXES + ("",) + POST_SUFFIXES)}
SUFFIX_NONE = SUFFIX_VALUE[""]
_DIGITS = frozenset("0123456789")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_HEX = frozenset("0123456789abcdef")


@dataclass
class _Token:
    """One token: its type, its text and (for numbers and suffixes) its value."""

    kind: int
    text: str = ""
    number: int = 0


def _span(s: str, pos: int, allowed: frozenset[str]) -> int:
    end = pos
    while end < len(s) and s[end] in allowed:
        end += 1
    return end


def _digits(s: str, pos: int, kind: int) -> tuple[_Token, int]:
    end = _span(s, pos, _DIGITS)
    if end == pos:
        return _Token(INVALID), pos
    return _Token(kind, s[pos:end], int(s[pos:end])), end


def _first(s: str) -> tuple[_Token, int]:
    return _digits(s, 0, INITIAL_DIGIT)


def _next(prev: _Token, s: str, pos: int) -> tuple[_Token, int]:
    """The token after `prev`, checking that the grammar allows it there."""
    if pos >= len(s):
        return _Token(END), pos
    c = s[pos]
    if c in _LOWER and prev.kind <= DIGIT:
        return _Token(LETTER, c, ord(c)), pos + 1
    if c == "." and prev.kind <= DIGIT:
        return _digits(s, pos + 1, DIGIT)
    if c in _DIGITS and prev.kind in (INITIAL_DIGIT, DIGIT, SUFFIX):
        return _digits(s, pos, SUFFIX_NO if prev.kind == SUFFIX else DIGIT)
    if c == "_" and prev.kind <= SUFFIX_NO:
        end = _span(s, pos + 1, _LOWER)
        name = s[pos + 1:end]
        if name and name in SUFFIX_VALUE:
            return _Token(SUFFIX, name, SUFFIX_VALUE[name]), end
    elif c == "~" and prev.kind < COMMIT_HASH:
        end = _span(s, pos + 1, _HEX)
        if end > pos + 1:
            return _Token(COMMIT_HASH, s[pos + 1:end]), end
    elif c == "-" and prev.kind < REVISION_NO and s.startswith("-r", pos):
        return _digits(s, pos + 2, REVISION_NO)
    return _Token(INVALID), pos


def _cmp(a: _Token, b: _Token) -> int:
    """Compare two tokens of the same type."""
    if a.kind in (DIGIT, COMMIT_HASH) and (a.kind == COMMIT_HASH or a.text[0] == "0"
                                           or b.text[0] == "0"):
        return (a.text > b.text) - (a.text < b.text)
    return (a.number > b.number) - (a.number < b.number)


def apk_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `apk version -t a b` answers `<`, `=` or `>`."""
    (ta, pa), (tb, pb) = _first(a), _first(b)
    while ta.kind == tb.kind and ta.kind < END:
        order = _cmp(ta, tb)
        if order:
            return order
        (ta, pa), (tb, pb) = _next(ta, a, pa), _next(tb, b, pb)
    if ta.kind == tb.kind:
        return 0
    if ta.kind == SUFFIX and ta.number < SUFFIX_NONE:
        return -1
    if tb.kind == SUFFIX and tb.number < SUFFIX_NONE:
        return 1
    return -1 if ta.kind > tb.kind else 1


def apk_version_valid(version: str) -> bool:
    """True when apk accepts the version (`apk_version_validate`)."""
    token, pos = _first(version)
    while token.kind < END:
        token, pos = _next(token, version, pos)
    return token.kind == END
