"""dpkg databases: `var/lib/dpkg/status` and distroless `var/lib/dpkg/status.d/*`.

Read from the image's files; the image's own dpkg is never run (distroless images have none).

A package is what dpkg lists as installed: a stanza whose Status ends in `installed` (or
`triggers-awaited` / `triggers-pending`: configured, triggers still to run), whatever its
want (`hold`, `purge`). Distroless images write one stanza per file in `status.d/` without a
Status field, meaning installed; in `status` a stanza without Status is not installed, as
dpkg reads it. A stanza that cannot be read (no Package, a malformed line, no or an invalid
Version) is skipped and reported (`problems`); the rest of the database is still read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import chain
from typing import Any

from harness.errors import ParseError
from harness.licenses import dep5_license
from harness.snapshot.manager import Manager
from harness.snapshot.packages import PackageReader
from harness.versions import dpkg_record_compare, dpkg_version_warning, parse_dpkg_version

LOCATION = "/var/lib/dpkg"
STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d/"
INFO_DIR = "/var/lib/dpkg/info/"
DOC_DIR = "/usr/share/doc/"
#: dpkg states in which a package counts as installed
_INSTALLED = {"installed", "triggers-awaited", "triggers-pending"}
_WANTS = {"unknown", "install", "hold", "deinstall", "purge"}
_EFLAGS = {"ok", "reinstreq", "hold", "hold-reinstreq"}
_STATES = {"not-installed", "config-files", "half-installed", "unpacked", "half-configured",
           "triggers-awaited", "triggers-pending", "installed"}
#: files beside the stanzas in status.d that are no stanzas: the control files dpkg keeps
#: in info/ (distroless tools copy `.md5sums`, some the maintainer scripts too; trivy and
#: syft skip them)
_CONTROL_SUFFIXES = (".md5sums", ".conffiles", ".list", ".preinst", ".postinst", ".prerm",
                     ".postrm", ".config", ".templates", ".triggers", ".shlibs", ".symbols",
                     ".sha256sums", ".control")
_FIELD = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(.*)$")
#: fields of vcpkg's deb822 `status` that dpkg never writes (claircore's test, plus Abi), and
#: the field dpkg writes into every package's stanza that vcpkg's lack: a file with the first
#: kind and none of the second is vcpkg's, not dpkg's
_VCPKG_MARKS = ("abi", "port-version", "feature", "default-features")
_DPKG_MARKS = ("maintainer",)


def is_database(path: str) -> bool:
    """True for the files that make up a dpkg database."""
    if path == STATUS:
        return True
    if path.startswith(STATUS_D):
        name = path[len(STATUS_D):]
        return ("/" not in name and not name.startswith(".")
                and not name.endswith(_CONTROL_SUFFIXES))
    return False


def is_aux(path: str) -> bool:
    """Files giving packages' file lists: `info/PKG[:ARCH].list`, and distroless's
    `status.d/PKG.md5sums` (paths with md5 digests)."""
    if path.startswith(INFO_DIR):
        name = path[len(INFO_DIR):]
        return "/" not in name and name.endswith((".list", ".md5sums"))
    if path.startswith(STATUS_D):
        name = path[len(STATUS_D):]
        return "/" not in name and name.endswith(".md5sums")
    return False


#: fields whose values most stanzas share (held once per value while a database is read)
_REPEATED = frozenset({"status", "priority", "section", "architecture", "multi-arch",
                       "maintainer", "origin", "bugs", "essential", "protected"})


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


#: line breaks `str.splitlines` knows besides "\n"
_OTHER_BREAKS = re.compile("[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def _lines(text: str) -> Iterator[str]:
    """`text.splitlines()`, one line at a time: a large database is never held a second time
    as a list of its lines."""
    if _OTHER_BREAKS.search(text):
        yield from text.splitlines()
        return
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start)
        if stop < 0:
            yield text[start:]
            return
        yield text[start:stop]
        start = stop + 1


#: the breaks of `_OTHER_BREAKS` an ASCII file can hold
_OTHER_ASCII_BREAKS = re.compile(b"[\r\v\f\x1c\x1d\x1e]")
#: how much of an ASCII database is decoded at a time
_BLOCK = 1 << 20


def _text_lines(data: bytes) -> Iterator[str]:
    """`_lines(_text(data))`; an ASCII file (the common case) is decoded a block of whole
    lines at a time, so a large database is never held a second time as text."""
    if not data.isascii() or _OTHER_ASCII_BREAKS.search(data):
        yield from _lines(_text(data))
        return
    start, end = 0, len(data)
    while start < end:
        stop = data.find(b"\n", start + _BLOCK)
        stop = end if stop < 0 else stop + 1
        yield from _lines(data[start:stop].decode("ascii"))
        start = stop


def stanza_blocks(text: str, origin: str, problems: list[str] | None = None
                  ) -> list[tuple[int, dict[str, str]]]:
    """(first line, fields) of each deb822 stanza (field names lower-cased, continuation
    lines joined). A stanza with a line that is no field is skipped, reported in `problems`
    (raised as ParseError when `problems` is None)."""
    return list(_stanzas(_lines(text), origin, problems))


def _stanzas(lines: Iterator[str], origin: str, problems: list[str] | None
             ) -> Iterator[tuple[int, dict[str, str]]]:
    """`stanza_blocks`, one stanza at a time: a reader that keeps a few fields of each never
    holds every stanza of a large database at once."""
    current: dict[str, str] = {}
    # one string per field name, and per value of the fields most stanzas repeat: a database
    # of many packages holds each a few times, not once per stanza
    shared: dict[str, str] = {}
    start = 0
    last: str | None = None
    bad: str | None = None

    # a blank line after the last one closes the last stanza as any blank line does
    for lineno, line in enumerate(chain(lines, ("",)), 1):
        if not line.strip():
            if current and bad is None:
                yield start, current
            elif bad is not None:
                if problems is None:
                    raise ParseError(bad)
                problems.append(bad)
            current, last, bad = {}, None, None
            continue
        if not current and bad is None:
            start = lineno
        if bad is not None:
            continue
        if line[0] in " \t":
            if last is None:
                bad = f"{origin}:{lineno}: continuation line before any field"
                continue
            current[last] += "\n" + line[1:]
            continue
        m = _FIELD.match(line)
        if not m:
            bad = f"{origin}:{lineno}: not a 'Field: value' line: {line[:60]!r}"
            continue
        name = m.group(1).lower()
        last = shared.setdefault(name, name)
        value = m.group(2)
        current[last] = shared.setdefault(value, value) if last in _REPEATED else value


def read_database(files: dict[str, bytes], problems: list[str] | None = None
                  ) -> list[dict[str, Any]]:
    """Package records from the dpkg database files collected from an image. Entries that
    cannot be read go to `problems` ("file:line: why"; without `problems` the first is a
    ParseError, as apk's and rpm's readers do); a database with entries but none readable,
    or a file that is no dpkg database, is a ParseError."""
    return [record for record, _ in _read(files, problems)]


def _read(files: dict[str, bytes], problems: list[str] | None
          ) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """(record, its stanza's fields) of each installed package, one at a time (the file
    lists need a few fields of each, not every record held a second time); the errors of
    `read_database` come once every file is read."""
    found: list[str] = []
    count = 0
    for path in sorted(p for p in files if is_database(p)):
        names: set[str] = set()
        for lineno, fields in _stanzas(_text_lines(files[path]), path, found):
            names.update(fields)
            record = _record(fields, f"{path}:{lineno}", path == STATUS, found)
            if record is not None:
                count += 1
                yield record, fields
        if path == STATUS and _foreign(names):
            raise ParseError(f"{path}: not a dpkg database: its stanzas carry vcpkg's fields "
                             "(Abi, Port-Version, Feature) and none has a Maintainer")
    if found and problems is None:  # as apk and rpm: no list to report them in, an error
        raise ParseError(found[0])
    if problems is not None:
        problems.extend(found)
    if found and not count:
        raise ParseError(f"{found[0]} (no readable package entry: {len(found)} unreadable)")


def _foreign(fields: set[str]) -> bool:
    """Whether a database's field names are vcpkg's."""
    return bool(fields.intersection(_VCPKG_MARKS)) and not fields.intersection(_DPKG_MARKS)


def _record(stanza: dict[str, str], where: str, in_status: bool, problems: list[str]
            ) -> dict[str, Any] | None:
    name = stanza.get("package", "").strip()
    if not name:
        problems.append(f"{where}: a stanza without a Package field")
        return None
    status = stanza.get("status")
    if status is None:
        if in_status:
            return None  # dpkg reads a stanza without Status as not installed
        status = "install ok installed"
    words = status.split()
    if len(words) != 3 or words[0] not in _WANTS or words[1] not in _EFLAGS \
            or words[2] not in _STATES:
        problems.append(f"{where}: package {name}: bad Status {status[:60]!r}")
        return None
    if words[2] not in _INSTALLED:
        return None
    version = stanza.get("version", "").strip()
    if not version:
        problems.append(f"{where}: package {name}: no Version field")
        return None
    try:
        parsed = parse_dpkg_version(version)
    except ValueError as exc:
        problems.append(f"{where}: package {name}: {exc}")
        return None
    warning = dpkg_version_warning(parsed)
    if warning is not None:
        problems.append(f"{where}: package {name}: version {version[:60]!r}: {warning}")
        return None
    source = stanza.get("source", name).split(" ")[0] or name
    size_kib = stanza.get("installed-size", "").strip()
    return {
        "manager": "dpkg",
        "name": name,
        "arch": stanza.get("architecture", "").strip(),
        "epoch": parsed.epoch if ":" in version else None,
        "version": version.split(":", 1)[1] if ":" in version else version,
        "release": None,
        "evr": version,
        "source": source,
        "license": None,
        "size": int(size_kib) * 1024 if size_kib.isascii() and size_kib.isdigit() else None,
    }


def read_file_lists(files: dict[str, bytes]) -> dict[str, list[dict[str, Any]]]:
    """`name:arch` -> the paths its package records: `info/PKG.list`, else (distroless)
    `status.d/PKG.md5sums` and the stanza's Conffiles, with md5 digests where known (dpkg
    keeps no modes or owners). Conffiles are marked, as users edit them."""
    # name:arch -> (name, arch, Conffiles) of the packages that list files anywhere (a key
    # given twice takes its last stanza's): a database's packages are not all held again
    wanted: dict[str, tuple[str, str, str]] = {}
    for record, fields in _read(files, []):
        name, arch = record["name"], record["arch"]
        key = f"{name}:{arch}"
        listed_conffiles = fields.get("conffiles", "")
        if listed_conffiles or key in wanted or any(
                path in files for path in _listing_files(name, arch)):
            wanted[key] = (name, arch, listed_conffiles)
    lists: dict[str, list[dict[str, Any]]] = {}
    for key, (name, arch, listed_conffiles) in wanted.items():
        conffiles = _conffiles(listed_conffiles)
        digests = _md5sums(_first(files, [f"{INFO_DIR}{name}:{arch}.md5sums",
                                          f"{INFO_DIR}{name}.md5sums"]))
        listed = _first(files, [f"{INFO_DIR}{name}:{arch}.list", f"{INFO_DIR}{name}.list"])
        if listed is not None:
            paths = [line for line in listed.decode("utf-8", "surrogateescape").splitlines()
                     if line.startswith("/") and line != "/."]
        else:
            distroless = _md5sums(_first(files, [f"{STATUS_D}{name}.md5sums",
                                                 f"{STATUS_D}{name}:{arch}.md5sums"]))
            if distroless is None and not conffiles:
                continue
            digests = {**(distroless or {}), **(digests or {})}
            # md5sums leave conffiles out: dpkg records them in the stanza
            paths = sorted(set(digests) | set(conffiles))
        entries = []
        for path in paths:
            entry: dict[str, Any] = {"path": path, "config": path in conffiles}
            digest = (digests or {}).get(path) or conffiles.get(path)
            if digest:
                entry["digest"] = f"md5:{digest}"
            entries.append(entry)
        lists[key] = entries
    return lists


def _listing_files(name: str, arch: str) -> tuple[str, ...]:
    """Where a package's files may be listed apart from its stanza."""
    return (f"{INFO_DIR}{name}:{arch}.md5sums", f"{INFO_DIR}{name}.md5sums",
            f"{INFO_DIR}{name}:{arch}.list", f"{INFO_DIR}{name}.list",
            f"{STATUS_D}{name}.md5sums", f"{STATUS_D}{name}:{arch}.md5sums")


def _first(files: dict[str, bytes], paths: list[str]) -> bytes | None:
    return next((files[p] for p in paths if p in files), None)


def _conffiles(value: str) -> dict[str, str]:
    """Conffiles lines ` /etc/x 0123abcd... [obsolete|remove-on-upgrade]` -> path: md5."""
    out: dict[str, str] = {}
    for line in value.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("/"):
            digest = parts[1] if len(parts) > 1 and re.fullmatch(r"[0-9a-f]{32}", parts[1]) else ""
            out[parts[0]] = digest
    return out


def _md5sums(data: bytes | None) -> dict[str, str] | None:
    """`md5  relative/path` lines -> {"/relative/path": md5} (deb-md5sums(5))."""
    if data is None:
        return None
    out: dict[str, str] = {}
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        digest, _, path = line.partition(" ")
        path = path.lstrip(" *")
        if re.fullmatch(r"[0-9a-f]{32}", digest) and path:
            out["/" + path.lstrip("/")] = digest
    return out


def copyright_file(record: dict[str, Any]) -> str:
    """Where Debian policy puts a package's copyright file."""
    return f"{DOC_DIR}{record['name']}/copyright"


def is_copyright_file(path: str) -> bool:
    """`/usr/share/doc/PKG/copyright`."""
    if not (path.startswith(DOC_DIR) and path.endswith("/copyright")):
        return False
    return path.count("/") == DOC_DIR.count("/") + 1


def copyright_licence(data: bytes) -> str | None:
    """The licence expression of a machine-readable copyright file (None otherwise)."""
    return dep5_license(data.decode("utf-8", "replace"))


#: dpkg in the registry of managers (harness.snapshot.managers)
MANAGER = Manager("dpkg", dpkg_record_compare, purl_type="deb", distro=True,
                  reader=PackageReader("dpkg", is_database, read_database, read_file_lists, is_aux,
                                       (LOCATION,), copyright_file, is_copyright_file,
                                       copyright_licence))
