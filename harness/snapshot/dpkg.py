"""dpkg databases: `var/lib/dpkg/status` and distroless `var/lib/dpkg/status.d/*`.

Read from the image's files; the image's own dpkg is never run (distroless images have none).
"""

from __future__ import annotations

import re
from typing import Any

from harness.errors import ParseError
from harness.versions import parse_dpkg_version

STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d/"
INFO_DIR = "/var/lib/dpkg/info/"
#: dpkg states in which a package's files are on disk.
_PRESENT = {"installed", "unpacked", "half-configured", "triggers-awaited", "triggers-pending"}
_FIELD = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(.*)$")


def is_database(path: str) -> bool:
    """True for the files that make up a dpkg database."""
    if path == STATUS:
        return True
    if path.startswith(STATUS_D):
        # distroless writes one stanza file per package, plus `<pkg>.md5sums` beside it
        return not path.endswith(".md5sums") and "/" not in path[len(STATUS_D):]
    return False


def parse_stanzas(text: str, origin: str) -> list[dict[str, str]]:
    """Split a deb822 file into stanzas (field name -> value, continuation lines joined)."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if current:
                stanzas.append(current)
            current, last = {}, None
            continue
        if line[0] in " \t":
            if last is None:
                raise ParseError(f"{origin}:{lineno}: continuation line before any field")
            current[last] += "\n" + line[1:]
            continue
        m = _FIELD.match(line)
        if not m:
            raise ParseError(f"{origin}:{lineno}: not a 'Field: value' line: {line[:60]!r}")
        last = m.group(1).lower()
        current[last] = m.group(2)
    if current:
        stanzas.append(current)
    return stanzas


def read_database(files: dict[str, bytes]) -> list[dict[str, Any]]:
    """Package records from the dpkg database files collected from an image."""
    records: list[dict[str, Any]] = []
    for path in sorted(files):
        try:
            text = files[path].decode("utf-8")
        except UnicodeDecodeError:
            text = files[path].decode("latin-1")
        stanzas = parse_stanzas(text, path)
        if path == STATUS and not stanzas and files[path]:
            raise ParseError(f"{path}: no package stanzas in a non-empty file")
        for stanza in stanzas:
            record = _record(stanza, path)
            if record is not None:
                records.append(record)
    return records


def _record(stanza: dict[str, str], origin: str) -> dict[str, Any] | None:
    name = stanza.get("package")
    if not name:
        raise ParseError(f"{origin}: a stanza has no Package field")
    status = stanza.get("status", "install ok installed").split()
    if not status or status[-1] not in _PRESENT:
        return None
    version = stanza.get("version", "")
    try:
        parsed = parse_dpkg_version(version)
    except ValueError as exc:
        raise ParseError(f"{origin}: package {name}: {exc}") from exc
    source = stanza.get("source", name).split(" ")[0] or name
    size_kib = stanza.get("installed-size", "").strip()
    return {
        "manager": "dpkg",
        "name": name,
        "arch": stanza.get("architecture", ""),
        "epoch": parsed.epoch if ":" in version else None,
        "version": version.split(":", 1)[1] if ":" in version else version,
        "release": None,
        "evr": version,
        "source": source,
        "license": None,
        "size": int(size_kib) * 1024 if size_kib.isascii() and size_kib.isdigit() else None,
    }


def is_file_list(path: str) -> bool:
    """dpkg's per-package file lists: `info/PKG.list` or `info/PKG:ARCH.list`."""
    return path.startswith(INFO_DIR) and path.endswith(".list") and "/" not in path[len(INFO_DIR):]


def read_file_lists(files: dict[str, bytes]) -> dict[str, list[dict[str, Any]]]:
    """`name:arch` -> the paths its list records (dpkg keeps no modes or owners; md5sums are
    not compared: the snapshot hashes with sha256). Conffiles are marked, as users edit them."""
    records = read_database({p: d for p, d in files.items() if is_database(p)})
    conffiles: dict[str, set[str]] = {}
    for path, data in files.items():
        if is_database(path):
            for stanza in parse_stanzas(data.decode("utf-8", "replace"), path):
                name = stanza.get("package", "")
                arch = stanza.get("architecture", "")
                conffiles[f"{name}:{arch}"] = {
                    line.split()[0] for line in stanza.get("conffiles", "").splitlines()
                    if line.strip()}
    lists: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        name, arch = record["name"], record["arch"]
        key = f"{name}:{arch}"
        listed = files.get(f"{INFO_DIR}{name}:{arch}.list", files.get(f"{INFO_DIR}{name}.list"))
        if listed is None:
            continue
        config = conffiles.get(key, set())
        lists[key] = [{"path": line, "config": line in config}
                      for line in listed.decode("utf-8", "surrogateescape").splitlines()
                      if line.startswith("/") and line != "/."]
    return lists
