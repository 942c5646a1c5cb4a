"""Path lookups inside a snapshot's file records, following the image's own symlinks
(merged /usr: a package may record /bin/ls while the image holds /usr/bin/ls)."""

from __future__ import annotations

from typing import Any

MAX_LINKS = 16


def normal(path: str) -> str:
    """Collapse `.`, `..` and repeated slashes (never above /)."""
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/" + "/".join(out)


def resolve(files: dict[str, dict[str, Any]], path: str, follow_last: bool = True) -> str | None:
    """The path a lookup of `path` lands on in the image, or None when nothing is there.

    Symlinks in parent directories are always followed; the last component only with
    `follow_last`. Loops and dangling links give None.
    """
    parts = [p for p in normal(path).split("/") if p]
    current = ""
    links = 0
    i = 0
    while i < len(parts):
        candidate = current + "/" + parts[i]
        record = files.get(candidate)
        if record is None:
            return None
        last = i == len(parts) - 1
        if record.get("type") == "symlink" and (not last or follow_last):
            links += 1
            if links > MAX_LINKS:
                return None
            target = str(record.get("target", ""))
            base = "" if target.startswith("/") else current
            parts = [p for p in normal(base + "/" + target).split("/") if p] + parts[i + 1:]
            current, i = "", 0
            continue
        current = candidate
        i += 1
    return current or "/"


class Resolver:
    """`resolve` for many paths of one snapshot: parent folders are resolved once each (a
    package database lists thousands of files in a few hundred folders)."""

    def __init__(self, files: dict[str, dict[str, Any]]) -> None:
        self.files = files
        self._dirs: dict[str, str | None] = {}

    def resolve(self, path: str, follow_last: bool = True) -> str | None:
        """As `resolve(files, path, follow_last)`."""
        record = self.files.get(path)
        if record is not None and (not follow_last or record.get("type") != "symlink"):
            return path  # the common case: the path is there as written
        parent, _, name = normal(path).rpartition("/")
        if parent not in self._dirs:
            self._dirs[parent] = resolve(self.files, parent or "/")
        real_parent = self._dirs[parent]
        if real_parent is None:
            return None
        if not name:
            return real_parent
        joined = real_parent.rstrip("/") + "/" + name
        if joined == path and record is None:
            return None
        return resolve(self.files, joined, follow_last)
