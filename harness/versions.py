"""Version ordering exactly as the package managers order versions.

`dpkg_compare` follows dpkg's `verrevcmp` (lib/dpkg/version.c), `rpm_compare` rpm's
`rpmvercmp`/`rpmverCmp` (rpmio/rpmvercmp.c, lib/rpmver.c). Both compare ASCII classes only,
as the C code does, so a non-ASCII digit is never taken for a number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple


def _isdigit(c: str) -> bool:
    return "0" <= c <= "9"


def _isalpha(c: str) -> bool:
    return "a" <= c <= "z" or "A" <= c <= "Z"


# --- dpkg -----------------------------------------------------------------------------------

class DpkgVersion(NamedTuple):
    """A Debian version split as dpkg splits it: epoch, upstream, revision."""

    epoch: int
    upstream: str
    revision: str


#: dpkg's epoch is a C int
_INT_MAX = 2**31 - 1
_BLANK = " \t"


def parse_dpkg_version(text: str) -> DpkgVersion:
    """Split `[epoch:]upstream[-revision]` as dpkg's `parseversion` does; what dpkg rejects
    (an empty string, embedded spaces, an empty, negative or too big epoch, nothing after the
    colon, an empty revision or upstream) raises `ValueError`. What dpkg only warns about
    (a character outside the allowed set) is returned: see `dpkg_version_warning`."""
    text = text.strip(_BLANK)
    if not text:
        raise ValueError("version string is empty")
    if any(c in _BLANK for c in text):
        raise ValueError(f"version {text!r} has embedded spaces")
    epoch = 0
    colon = text.find(":")
    if colon >= 0:
        head = text[:colon]
        # strtol: an optional sign, then decimal digits up to the colon
        digits = head[1:] if head[:1] in ("+", "-") else head
        if not head:
            raise ValueError(f"epoch in version {text!r} is empty")
        if not digits or not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"epoch in version {text!r} is not a number")
        epoch = int(head)
        if epoch < 0:
            raise ValueError(f"epoch in version {text!r} is negative")
        if epoch > _INT_MAX:
            raise ValueError(f"epoch in version {text!r} is too big")
        text = text[colon + 1:]
        if not text:
            raise ValueError("nothing after colon in version number")
    upstream, sep, revision = text.rpartition("-")
    if not sep:
        upstream, revision = text, ""
    elif not revision:
        raise ValueError(f"revision number of version {text!r} is empty")
    if not upstream:
        raise ValueError(f"version number of {text!r} is empty")
    return DpkgVersion(epoch, upstream, revision)


_UPSTREAM_OK = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-+~:")
_REVISION_OK = _UPSTREAM_OK - {"-", ":"}


def dpkg_version_warning(version: DpkgVersion) -> str | None:
    """What dpkg warns about in a version it still accepts (its lax status-file reading):
    an upstream not starting with a digit, a character outside the allowed set."""
    if not _isdigit(version.upstream[0]):
        return "version number does not start with digit"
    if not set(version.upstream) <= _UPSTREAM_OK:
        return "invalid character in version number"
    if not set(version.revision) <= _REVISION_OK:
        return "invalid character in revision number"
    return None


def _dpkg_order(c: int) -> int:
    # dpkg's order() on a C `char`, signed here as on the architectures dpkg mostly runs on:
    # a byte >= 0x80 is negative, so `c + 256` puts it after letters, before punctuation
    if 0x30 <= c <= 0x39:
        return 0
    if 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A:
        return c
    if c == 0x7E:
        return -1
    if c >= 0x80:
        return c  # (c - 256) + 256
    if c:
        return c + 256
    return 0


def _verrevcmp(a: bytes, b: bytes) -> int:
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and not 0x30 <= a[i] <= 0x39) or (j < lb and not 0x30 <= b[j] <= 0x39):
            ac = _dpkg_order(a[i]) if i < la else 0
            bc = _dpkg_order(b[j]) if j < lb else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < la and a[i] == 0x30:
            i += 1
        while j < lb and b[j] == 0x30:
            j += 1
        while i < la and 0x30 <= a[i] <= 0x39 and j < lb and 0x30 <= b[j] <= 0x39:
            if not first_diff:
                first_diff = a[i] - b[j]
            i += 1
            j += 1
        if i < la and 0x30 <= a[i] <= 0x39:
            return 1
        if j < lb and 0x30 <= b[j] <= 0x39:
            return -1
        if first_diff:
            return first_diff
    return 0


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def dpkg_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `dpkg --compare-versions a lt/eq/gt b` would answer. An empty version
    (dpkg's "none", also spelt `<unknown>`) sorts before every other; a version dpkg cannot
    parse raises `ValueError`."""
    blank_a, blank_b = a.strip(_BLANK) in ("", "<unknown>"), b.strip(_BLANK) in ("", "<unknown>")
    if blank_a or blank_b:
        return blank_b - blank_a
    va, vb = parse_dpkg_version(a), parse_dpkg_version(b)
    if va.epoch != vb.epoch:
        return _sign(va.epoch - vb.epoch)
    return (_sign(_verrevcmp(_bytes(va.upstream), _bytes(vb.upstream)))
            or _sign(_verrevcmp(_bytes(va.revision), _bytes(vb.revision))))


# --- rpm ------------------------------------------------------------------------------------

def rpmvercmp(a: str, b: str) -> int:
    """rpm's segment comparison of one version or release string (-1, 0, 1)."""
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        while i < la and not (_isdigit(a[i]) or _isalpha(a[i])) and a[i] not in "~^":
            i += 1
        while j < lb and not (_isdigit(b[j]) or _isalpha(b[j])) and b[j] not in "~^":
            j += 1
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        if ca == "~" or cb == "~":  # tilde sorts before everything, even the end
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i += 1
            j += 1
            continue
        if ca == "^" or cb == "^":  # caret sorts after the end, before anything else
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        si, sj = i, j
        isnum = _isdigit(ca)
        same_class = _isdigit if isnum else _isalpha
        while i < la and same_class(a[i]):
            i += 1
        while j < lb and same_class(b[j]):
            j += 1
        seg_a, seg_b = a[si:i], b[sj:j]
        if not seg_b:
            return 1 if isnum else -1
        if isnum:
            seg_a, seg_b = seg_a.lstrip("0"), seg_b.lstrip("0")
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


def rpm_compare(a: tuple[int | None, str, str | None], b: tuple[int | None, str, str | None]) -> int:
    """Compare (epoch, version, release) as rpm's `labelCompare` does: a missing epoch is 0,
    a missing release sorts before any present one (installed packages always have one;
    only dependency ranges leave it out, and those are not compared here)."""
    rc = rpmvercmp(str(a[0] or 0), str(b[0] or 0))
    if rc == 0:
        rc = rpmvercmp(a[1], b[1])
    if rc == 0 and (a[2] is not None or b[2] is not None):
        if a[2] is None or b[2] is None:
            return -1 if a[2] is None else 1
        rc = rpmvercmp(a[2], b[2])
    return rc


#: a version order of two package records of one manager (-1, 0, 1); each manager's entry
#: (`harness.snapshot.managers`) names its own
RecordOrder = Callable[[Mapping[str, object], Mapping[str, object]], int]


def rpm_record_compare(before: Mapping[str, object], after: Mapping[str, object]) -> int:
    """rpm's order: epoch, then version, then release (rpmvercmp)."""
    return rpm_compare(
        (_int_or_none(before.get("epoch")), str(before.get("version") or ""), _str_or_none(before.get("release"))),
        (_int_or_none(after.get("epoch")), str(after.get("version") or ""), _str_or_none(after.get("release"))))


def pep440_record_compare(before: Mapping[str, object], after: Mapping[str, object]) -> int:
    """PEP 440's order; a legacy version string falls back to dpkg-like segment ordering."""
    from packaging.version import InvalidVersion, Version  # noqa: PLC0415
    try:
        old, new = Version(str(before.get("evr"))), Version(str(after.get("evr")))
        return (old > new) - (old < new)
    except InvalidVersion:
        return dpkg_record_compare(before, after)


def semver_record_compare(before: Mapping[str, object], after: Mapping[str, object]) -> int:
    """Semantic versioning's order (npm, jars, Java modules, PHP extensions)."""
    return semver_compare(str(before.get("evr")), str(after.get("evr")))


def apk_record_compare(before: Mapping[str, object], after: Mapping[str, object]) -> int:
    """apk-tools' order."""
    from harness.apkversion import apk_compare  # noqa: PLC0415 - optional reader
    return apk_compare(str(before.get("evr")), str(after.get("evr")))


def dpkg_record_compare(before: Mapping[str, object], after: Mapping[str, object]) -> int:
    """dpkg's order; a version dpkg would not parse (an older baseline's, a legacy pypi one)
    by dpkg's segment ordering alone. Also the order of a manager the gate has no entry for."""
    a, b = str(before.get("evr") or ""), str(after.get("evr") or "")
    try:
        return dpkg_compare(a, b)
    except ValueError:
        return _sign(_verrevcmp(_bytes(a), _bytes(b)))


def _int_or_none(value: object) -> int | None:
    return None if value is None or value == "" else int(str(value))


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def semver_compare(a: str, b: str) -> int:
    """SemVer 2.0 precedence (npm): numeric core, then a pre-release sorts before its release;
    non-SemVer strings fall back to rpm's segment ordering."""
    def split(v: str) -> tuple[list[int], list[str]] | None:
        core, _, pre = v.split("+", 1)[0].partition("-")
        parts = core.lstrip("v").split(".")
        if not all(p.isascii() and p.isdigit() for p in parts):
            return None
        return [int(p) for p in parts], pre.split(".") if pre else []

    sa, sb = split(a), split(b)
    if sa is None or sb is None:
        return rpmvercmp(a, b)
    if sa[0] != sb[0]:
        return 1 if sa[0] > sb[0] else -1
    pa, pb = sa[1], sb[1]
    if not pa or not pb:
        return (not pa) - (not pb)
    for x, y in zip(pa, pb):
        if x == y:
            continue
        xd, yd = x.isdigit(), y.isdigit()
        if xd and yd:
            return 1 if int(x) > int(y) else -1
        if xd != yd:
            return -1 if xd else 1
        return 1 if x > y else -1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))
