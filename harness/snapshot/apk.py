"""apk databases: `lib/apk/db/installed` (Alpine), read from the image's files.

The file is apk's "FDB" text format: one stanza per package, stanzas separated by a blank
line, each line `X:value` with a one-letter field. Package fields: P name, V version, A arch,
L license, o origin (source package), m maintainer, t build time, c commit, D depends,
p provides, r replaces, I installed size, S package size, T description, U url, C checksum.
File fields follow in order: F a directory (path without leading `/`) with its M acl, then
its R files, each with its a acl and Z checksum. An acl is `uid:gid:mode[:xattr hash]`;
without one apk means root:root 0755 for a directory and 0644 for a file.
"""

from __future__ import annotations

import base64
import binascii
import re
import stat
from typing import Any

from harness.errors import ParseError
from harness.snapshot.manager import Manager
from harness.snapshot.packages import PackageReader, package_key
from harness.versions import apk_record_compare

INSTALLED = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")
LOCATIONS = ("/lib/apk/db", "/usr/lib/apk/db")
_LINE = re.compile(r"^([A-Za-z]):(.*)$")
_DIR_ACL = ("0", "0", 0o755)
_FILE_ACL = ("0", "0", 0o644)
#: checksum prefixes: `Q1` + base64(sha1), `Q2` + base64(sha256)
_DIGESTS = {"Q1": "sha1", "Q2": "sha256"}


def is_database(path: str) -> bool:
    """True for apk's installed-packages database."""
    return path in INSTALLED


def _database(files: dict[str, bytes]) -> tuple[str, str]:
    """(path, text) of the database apk reads (`/lib/apk` first, as apk-tools 2 does); an
    empty file is an empty text."""
    path = next((p for p in INSTALLED if p in files), None)
    if path is None:
        raise ParseError(f"{', '.join(sorted(files))}: not an apk database")
    data = files[path]
    try:
        return path, data.decode("utf-8")
    except UnicodeDecodeError:
        return path, data.decode("utf-8", "surrogateescape")


def parse_installed(text: str, origin: str, problems: list[str] | None = None
                    ) -> list[dict[str, Any]]:
    """Stanzas of an `installed` file: {"fields": {letter: [values]}, "files": [...]}.

    A stanza that cannot be read (a line that is no `X:value`, no P or V field, a bad acl or
    checksum) is skipped and reported in `problems`; without `problems`, or when no stanza
    of a non-empty file is readable, it is a ParseError. An empty file has no stanzas."""
    stanzas: list[dict[str, Any]] = []
    found: list[str] = []
    current: _Stanza | None = None
    bad = False

    def close() -> None:
        if current is not None and not bad:
            try:
                stanzas.append(current.finish())
            except ParseError as exc:
                found.append(str(exc))

    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            close()
            current, bad = None, False
            continue
        if current is None:
            current = _Stanza(origin, lineno)
        if bad:
            continue
        m = _LINE.match(line)
        try:
            if not m:
                raise ParseError(f"{origin}:{lineno}: not an 'X:value' line: {line[:60]!r}")
            current.add(m.group(1), m.group(2), lineno)
        except ParseError as exc:
            found.append(str(exc))
            bad = True
    close()
    _settle(found, problems, bool(stanzas))
    return stanzas


def _settle(found: list[str], problems: list[str] | None, any_readable: bool) -> None:
    """Hand the unreadable stanzas `found` on to `problems`; without `problems`, or when
    no stanza was readable, the first of them is a ParseError instead."""
    if found and (problems is None or not any_readable):
        raise ParseError(found[0] if problems is None else
                         f"{found[0]} (no readable package stanza: {len(found)} unreadable)")
    if problems is not None:
        problems.extend(found)


class _Stanza:
    """One package's lines, with the file entries resolved to full paths and acls."""

    def __init__(self, origin: str, lineno: int) -> None:
        self.where = f"{origin}:{lineno}"
        self.fields: dict[str, list[str]] = {}
        self.files: list[dict[str, Any]] = []
        self._dir: dict[str, Any] | None = None
        self._file: dict[str, Any] | None = None

    def add(self, field: str, value: str, lineno: int) -> None:
        """Take one `field:value` line."""
        if field == "F":
            self._dir = _entry("/" + value.strip("/"), _DIR_ACL, stat.S_IFDIR)
            self._file = None
            self.files.append(self._dir)
        elif field == "M":
            if self._dir is None:
                raise ParseError(f"{self.where}: M line {lineno} before any F line")
            _set_acl(self._dir, value, lineno, self.where, stat.S_IFDIR)
        elif field == "R":
            if self._dir is None:
                raise ParseError(f"{self.where}: R line {lineno} before any F line")
            base = self._dir["path"].rstrip("/")
            self._file = _entry(f"{base}/{value}", _FILE_ACL, 0)
            self.files.append(self._file)
        elif field in ("a", "Z"):
            if self._file is None:
                raise ParseError(f"{self.where}: {field} line {lineno} before any R line")
            if field == "a":
                _set_acl(self._file, value, lineno, self.where, 0)
            else:
                self._file["digest"] = _digest(value, lineno, self.where)
        else:
            self.fields.setdefault(field, []).append(value)

    def finish(self) -> dict[str, Any]:
        """The stanza as plain data; a stanza must name a package and its version."""
        for field in "PV":
            if not self.fields.get(field, [""])[0]:
                raise ParseError(f"{self.where}: package stanza without a {field} field")
        return {"fields": self.fields, "files": self.files, "where": self.where}


def _entry(path: str, acl: tuple[str, str, int], kind: int) -> dict[str, Any]:
    # file type bits are known only for directories: apk does not record symlinks apart
    return {"path": path, "mode": kind | acl[2], "size": None, "digest": None,
            "user": acl[0], "group": acl[1], "link": None}


def _set_acl(entry: dict[str, Any], value: str, lineno: int, where: str, kind: int) -> None:
    parts = value.split(":")
    try:
        mode = int(parts[2], 8)
    except (IndexError, ValueError):
        raise ParseError(f"{where}: line {lineno}: bad acl {value!r}") from None
    if not 0 <= mode <= 0o7777:
        raise ParseError(f"{where}: line {lineno}: acl mode {parts[2][:20]!r} out of range")
    entry.update(user=parts[0], group=parts[1], mode=kind | stat.S_IMODE(mode))


def _digest(value: str, lineno: int, where: str) -> str:
    algo = _DIGESTS.get(value[:2])
    if algo is None:  # an older plain hex md5
        if re.fullmatch(r"[0-9a-f]{32}", value):
            return f"md5:{value}"
        raise ParseError(f"{where}: line {lineno}: unknown checksum {value[:12]!r}")
    try:
        return f"{algo}:{base64.b64decode(value[2:], validate=True).hex()}"
    except (binascii.Error, ValueError):
        raise ParseError(f"{where}: line {lineno}: bad checksum {value[:12]!r}") from None


def _record(fields: dict[str, list[str]], where: str) -> dict[str, Any]:
    def one(field: str) -> str | None:
        values = fields.get(field)
        return values[0] if values else None

    name, version = one("P") or "", one("V") or ""
    size = one("I")
    if size is not None and not (size.isascii() and size.isdigit()):
        raise ParseError(f"{where}: package {name}: installed size {size!r} is not a number")
    return {
        "manager": "apk",
        "name": name,
        "arch": one("A") or "",
        "epoch": None,
        "version": version,
        "release": None,
        "evr": version,
        "source": one("o") or name,
        "license": one("L"),
        "size": int(size) if size is not None else None,
    }


def read_database(files: dict[str, bytes], problems: list[str] | None = None
                  ) -> list[dict[str, Any]]:
    """Package records from the apk database (the registry's reader function)."""
    path, text = _database(files)
    found: list[str] = []
    records = []
    for stanza in parse_installed(text, path, found):
        try:
            records.append(_record(stanza["fields"], stanza["where"]))
        except ParseError as exc:
            found.append(str(exc))
    _settle(found, problems, bool(records))
    return records


def read_file_lists(files: dict[str, bytes]) -> dict[str, list[dict[str, Any]]]:
    """`name:arch` -> the directories and files its package owns (path, mode, digest, user,
    group as uid/gid strings)."""
    path, text = _database(files)
    lists: dict[str, list[dict[str, Any]]] = {}
    for stanza in parse_installed(text, path, []):
        try:
            key = package_key(_record(stanza["fields"], path))
        except ParseError:
            continue  # reported with the packages
        lists.setdefault(key, []).extend(stanza["files"])
    return lists


def read_dependencies(files: dict[str, bytes]) -> dict[str, dict[str, list[str]]]:
    """`name:arch` -> {"provides": [...], "requires": [...]} as names (`so:libc.musl...`)."""
    path, text = _database(files)
    deps: dict[str, dict[str, list[str]]] = {}
    for stanza in parse_installed(text, path, []):
        fields = stanza["fields"]
        try:
            key = package_key(_record(fields, path))
        except ParseError:
            continue
        deps[key] = {"provides": _names(fields.get("p", [])),
                     "requires": _names(fields.get("D", []))}
    return deps


def _names(lines: list[str]) -> list[str]:
    # `so:libc.musl-x86_64.so.1=1 cmd:sh=1.36.1-r2` -> names; `!name` (conflicts) are no needs
    names: list[str] = []
    for line in lines:
        for word in line.split():
            if not word.startswith("!"):
                names.append(re.split(r"[<>=~]", word, maxsplit=1)[0])
    return names


#: apk in the registry of managers (harness.snapshot.managers)
MANAGER = Manager("apk", apk_record_compare, purl_type="apk", distro=True,
                  reader=PackageReader("apk", is_database, read_database, read_file_lists,
                                       locations=LOCATIONS))
