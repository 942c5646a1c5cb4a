"""Package licences: Debian's machine-readable copyright files (DEP-5) read into a licence
expression, names mapped to SPDX identifiers where one is meant, and the deny-list check.

rpm (the header's License tag) and apk (`L:`) record a licence per package as written; Debian
packages carry `/usr/share/doc/PKG/copyright`, machine-readable in most cases
(https://dep-team.pages.debian.net/deps/dep5/). Its `License:` fields' first lines name each
part's licence with Debian's short names (`GPL-2+`, `Expat`, `BSD-3-clause`): each is mapped to
the SPDX identifier it stands for, else kept as written; the parts are joined with AND.
"""

from __future__ import annotations

import fnmatch
import re

#: Debian short names (DEP-5's list and common usage) whose SPDX identifier differs
_DEBIAN_TO_SPDX = {
    "expat": "MIT", "mit": "MIT", "zlib": "Zlib", "isc": "ISC", "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause", "bsd-4-clause": "BSD-4-Clause", "apache-2.0": "Apache-2.0",
    "apache-2": "Apache-2.0", "artistic": "Artistic-1.0-Perl", "artistic-1.0": "Artistic-1.0",
    "artistic-2.0": "Artistic-2.0", "mpl-1.1": "MPL-1.1", "mpl-2.0": "MPL-2.0",
    "cc0-1.0": "CC0-1.0", "cc0": "CC0-1.0", "psf-2": "PSF-2.0", "python-2.0": "Python-2.0",
    "openssl": "OpenSSL", "unicode-dfs-2016": "Unicode-DFS-2016", "ftl": "FTL",
    "curl": "curl", "bsl-1.0": "BSL-1.0", "x11": "X11", "libpng": "Libpng", "ofl-1.1": "OFL-1.1",
    "wtfpl": "WTFPL", "unlicense": "Unlicense", "0bsd": "0BSD", "epl-1.0": "EPL-1.0",
    "epl-2.0": "EPL-2.0", "cddl-1.0": "CDDL-1.0", "sleepycat": "Sleepycat",
}
#: GNU families: `GPL-2` -> GPL-2.0-only, `GPL-2+` -> GPL-2.0-or-later
_GNU = re.compile(r"^(a?gpl|lgpl|gfdl)-?(\d(?:\.\d)?)(\+?)$", re.IGNORECASE)
_GNU_NAMES = {"gpl": "GPL", "agpl": "AGPL", "lgpl": "LGPL", "gfdl": "GFDL"}
_OPERATOR = re.compile(r"\s+(or|and)\s+", re.IGNORECASE)


def spdx_name(name: str) -> str:
    """One Debian (or SPDX) licence name as its SPDX identifier, else as written."""
    name = name.strip()
    known = _DEBIAN_TO_SPDX.get(name.lower())
    if known is not None:
        return known
    m = _GNU.match(name)
    if m:
        family, version, plus = _GNU_NAMES[m.group(1).lower()], m.group(2), m.group(3)
        if "." not in version:
            version += ".0"
        return f"{family}-{version}-{'or-later' if plus else 'only'}"
    return name


def _expression(value: str) -> str:
    """`GPL-2+ or Artistic` -> `GPL-2.0-or-later OR Artistic-1.0-Perl`; `X with Y exception`
    keeps Y as written. A comma binds loosest (DEP-5: `A or B, and C` is `(A or B) and C`)."""
    # one space per run of whitespace: the `\s+ ... \s+` patterns backtrack quadratically
    # in a long run (an image's copyright file may hold one)
    value = " ".join(value.split())
    groups = re.split(r",\s+(or|and)\s+", value.strip().rstrip(",;. "), flags=re.IGNORECASE)
    if len(groups) > 1:
        joined: list[str] = []
        for i, group in enumerate(groups):
            if i % 2:
                joined.append(group.upper())
            else:
                expr = _expression(group)
                joined.append(f"({expr})" if " OR " in expr or " AND " in expr else expr)
        return " ".join(joined)
    parts = _OPERATOR.split(value.strip().rstrip(",;. "))
    out: list[str] = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part.upper())
            continue
        name, sep, exception = part.partition(" with ")
        exception = exception.strip().removesuffix(" exception").removesuffix(" Exception")
        out.append(spdx_name(name) + (f" WITH {exception}" if sep else ""))
    return " ".join(out)


_COMMON = re.compile(r"/usr/share/common-licenses/([A-Za-z0-9][A-Za-z0-9.+-]*[A-Za-z0-9+])")


def dep5_license(text: str) -> str | None:
    """The licence expression of a machine-readable Debian copyright file: every distinct
    `License:` short name of its paragraphs (header and Files), in order, joined with AND
    (parenthesised when compound). A file that is not machine-readable gives the licences
    it cites from `/usr/share/common-licenses/` (the only names free text states plainly);
    None when it cites none."""
    head = text.lstrip()[:400].lower()
    first = head.split("\n", 1)[0]
    if not (head.startswith("format:") and ("copyright-format" in first or "dep5" in first
                                            or "dep-5" in first)):
        # dicts, not lists: the distinct names in order, without a search of the list per
        # name (quadratic in a hostile file's count of names)
        cited = dict.fromkeys(spdx_name(name) for name in _COMMON.findall(text))
        return " AND ".join(cited) or None
    found: dict[str, None] = {}
    for line in text.splitlines():
        if line[:8].lower() == "license:":
            value = line[8:].strip()
            if value:
                found.setdefault(_expression(value))
    if not found:
        return None
    if len(found) == 1:
        return next(iter(found))
    return " AND ".join(f"({e})" if " OR " in e or " AND " in e else e for e in found)


def license_ids(expression: str) -> list[str]:
    """The licence names of an expression (operators, WITH exceptions and parentheses left
    out)."""
    cleaned = " ".join(re.sub(r"[()]", " ", expression).split())  # see _expression
    cleaned = re.sub(r"\s+WITH\s+.*?(?=\s+(?:OR|AND)\s+|$)", "", cleaned, flags=re.IGNORECASE)
    parts = _OPERATOR.split(f" {cleaned} ")
    return [p.strip() for p in parts[::2] if p.strip()]


def denied(expression: str | None, deny: tuple[str, ...]) -> list[str]:
    """The licence names of `expression` that a `license_deny` glob matches (case-blind)."""
    if not expression or not deny:
        return []
    return [name for name in license_ids(expression)
            if any(fnmatch.fnmatchcase(name.lower(), g.lower()) for g in deny)]
