"""Package-to-file ownership, like `rpm -V`: what the package databases promise against
what the image holds. Candidate-only: it needs no baseline.

- a package whose recorded files are gone: package-files-missing (break: a slimming accident)
- a file whose digest, mode or owner differs from its record: package-file-changed (review)
- regular files no package owns: counted (unowned-files, info)
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from typing import Any

from harness.filetable import FileTable
from harness.paths import _ABSENT, SymlinkResolver, type_of

#: rpm file flags and states that make a recorded file legitimately absent or different
RPMFILE_CONFIG, RPMFILE_DOC, RPMFILE_MISSINGOK, RPMFILE_GHOST = 1, 2, 8, 64
RPMFILE_STATE_NORMAL = 0
#: documentation is often excluded on purpose (rpm --nodocs, dpkg path-exclude)
DOC_PATHS = re.compile(r"^/usr/share/(doc|man|info|locale|help|gtk-doc|lintian)/")
MAX_LISTED = 20


def verify(files: Mapping[str, dict[str, Any]], lists: dict[str, list[dict[str, Any]]],
           users: dict[int, str], groups: dict[int, str]) -> dict[str, Any]:
    """Compare the recorded files of every package with the image's files."""
    missing: dict[str, list[str]] = {}
    changed: dict[str, dict[str, Any]] = {}
    owned: set[str] = set()
    resolver = SymlinkResolver(files)
    for key, entries in lists.items():
        for entry in entries:
            path = str(entry["path"])
            flags = int(entry.get("flags") or 0)
            real = resolver.real_path(path, follow_last=False)
            if real is not None:
                owned.add(real)
            if entry.get("state") not in (None, RPMFILE_STATE_NORMAL) or flags & RPMFILE_GHOST:
                continue
            if real is None:
                if not (flags & (RPMFILE_MISSINGOK | RPMFILE_DOC) or DOC_PATHS.match(path)):
                    missing.setdefault(key, []).append(path)
                continue
            if not _compares(entry):
                continue  # nothing recorded to compare (dpkg keeps md5s only): not unpacked
            diff = _differences(entry, files[real], flags, users, groups)
            if diff:
                changed[real] = {"package": key, **diff}
    regular = (files.paths_of("file") if isinstance(files, FileTable)
               else (p for p, r in files.items() if r.get("type") == "file"))
    unowned = sorted(p for p in regular if p not in owned)
    return {"missing": missing, "changed": changed, "unowned": unowned,
            "packages_with_lists": len(lists)}


def _compares(entry: dict[str, Any]) -> bool:
    """Whether a recorded file holds anything `_differences` compares."""
    return (entry.get("mode") is not None or bool(entry.get("user") or entry.get("group"))
            or str(entry.get("digest") or "").startswith("sha256:"))


def _differences(entry: dict[str, Any], record: dict[str, Any], flags: int,
                 users: dict[int, str], groups: dict[int, str]) -> dict[str, Any]:
    diff: dict[str, Any] = {}
    mode = entry.get("mode")
    if mode is not None and record.get("type") in ("file", "dir") and not stat.S_ISLNK(int(mode)):
        want = format(stat.S_IMODE(int(mode)), "04o")
        if want != record.get("mode"):
            diff["mode"] = [want, record.get("mode")]
    user, group = entry.get("user"), entry.get("group")
    have_user, have_group = users.get(int(record.get("uid", -1))), groups.get(int(record.get("gid", -1)))
    if user and have_user and user != have_user:
        diff["user"] = [user, have_user]
    if group and have_group and group != have_group:
        diff["group"] = [group, have_group]
    digest = str(entry.get("digest") or "")
    if (digest.startswith("sha256:") and record.get("type") == "file" and "sha256" in record
            and not flags & RPMFILE_CONFIG and digest[7:] != record["sha256"]):
        diff["sha256"] = [digest[7:], record["sha256"]]
    return diff


def file_owners(files: Mapping[str, dict[str, Any]], lists: Mapping[str, list[dict[str, Any]]],
                packages: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    """Image path -> the name of the package whose database lists it (directories, which
    many packages list, are left out; of several owners the first by key). A listed path is
    looked up through the image's symlinks, as `verify` does (merged /usr)."""
    owners: dict[str, str] = {}
    resolver: SymlinkResolver | None = None
    for key in sorted(lists):
        name = str(packages.get(key, {}).get("name") or key.rsplit(":", 1)[0])
        for entry in lists[key]:
            path = str(entry["path"])
            kind = type_of(files, path)  # no record unpacked
            real: str | None = path
            if kind is _ABSENT or kind == "symlink":
                resolver = resolver or SymlinkResolver(files)
                real = resolver.real_path(path, follow_last=False)
                kind = type_of(files, real) if real is not None else _ABSENT
            if kind is _ABSENT or kind == "dir" or real is None:
                continue
            owners.setdefault(real, name)
    return owners


def set_owners(files: FileTable | dict[str, dict[str, Any]], owners: Mapping[str, str]) -> None:
    """Record each file's owner as its `package` field (the baseline keeps it: a removed
    package's files are then known after the package is gone)."""
    if isinstance(files, FileTable):
        for path, name in owners.items():
            files.set_package(path, name)
        return
    for path, name in owners.items():
        files[path]["package"] = name
