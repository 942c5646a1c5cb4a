"""Path lookups inside a snapshot's file records, following the image's own symlinks
(merged /usr: a package may record /bin/ls while the image holds /usr/bin/ls)."""

from __future__ import annotations

from collections import deque
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

def glob_regex(globs: Iterable[str]) -> re.Pattern[str] | None:
    """One compiled regex for many globs: matching 100,000 paths stays linear."""
    parts = [fnmatch.translate(g) for g in globs]
    return re.compile("|".join(parts)) if parts else None


#: symlinks followed in one lookup before it is declared a loop (the kernel's limit)
MAX_LINKS = 40


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


def follow(path: str, target_of: Callable[[str], str | None],
           present: Callable[[str], bool] | None = None, follow_last: bool = True) -> str | None:
    """Resolve an absolute image path through the image's symlinks, as the kernel does: each
    component in turn, a symlink's target spliced in where it stands (relative to its
    folder, or from the root), and `..` applied to the path resolved so far, never above /.

    `target_of` gives a path's symlink target (None: not a symlink); `present`, when given,
    says whether a path exists (None is returned for a missing component, so a dangling link
    resolves to None). The last component is followed only with `follow_last`. More than
    `MAX_LINKS` links (a loop) give None.
    """
    parts = deque(path.split("/"))
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        resolved.append(part)
        current = "/" + "/".join(resolved)
        if present is not None and not present(current):
            return None
        target = target_of(current)
        if target is None:
            continue
        if not follow_last and all(p in ("", ".") for p in parts):
            continue  # the last component, asked for as it is
        links += 1
        if links > MAX_LINKS:
            return None
        resolved.pop()
        if target.startswith("/"):
            resolved = []
        parts.extendleft(reversed(target.split("/")))
    return "/" + "/".join(resolved)


def real_path(files: Mapping[str, dict[str, Any]], path: str, follow_last: bool = True) -> str | None:
    """The path a lookup of `path` lands on in the image, or None when nothing is there.

    Symlinks in parent directories are always followed; the last component only with
    `follow_last`. Loops and dangling links give None.
    """
    def target_of(p: str) -> str | None:
        record = files[p]
        return str(record.get("target", "")) if record.get("type") == "symlink" else None

    return follow(path, target_of, files.__contains__, follow_last)


#: what `type_of` gives for a path with no record
_ABSENT = object()


def type_of(files: Mapping[str, dict[str, Any]], path: str) -> Any:
    """The `type` of the record at `path` (None for a record without one), `_ABSENT` when
    there is none; a packed table's record not unpacked (harness.filetable)."""
    of = getattr(files, "type_of", None)
    if of is not None:
        return of(path, _ABSENT)
    record = files.get(path)
    return _ABSENT if record is None else record.get("type")


class SymlinkResolver:
    """`real_path` for many paths of one snapshot: parent folders are resolved once each (a
    package database lists thousands of files in a few hundred folders)."""

    def __init__(self, files: Mapping[str, dict[str, Any]]) -> None:
        self.files = files
        self._dirs: dict[str, str | None] = {}

    def real_path(self, path: str, follow_last: bool = True) -> str | None:
        """As `real_path(files, path, follow_last)`."""
        kind = type_of(self.files, path)
        if kind is not _ABSENT and (not follow_last or kind != "symlink"):
            return path  # the common case: the path is there as written
        parent, _, name = normal(path).rpartition("/")
        if parent not in self._dirs:
            self._dirs[parent] = real_path(self.files, parent or "/")
        real_parent = self._dirs[parent]
        if real_parent is None:
            return None
        if not name:
            return real_parent
        joined = real_parent.rstrip("/") + "/" + name
        if joined == path and kind is _ABSENT:
            return None
        return real_path(self.files, joined, follow_last)
