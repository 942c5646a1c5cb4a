"""Package-to-file ownership, like `rpm -V`: what the package databases promise against
what the image holds. Candidate-only: it needs no baseline.

- a package whose recorded files are gone: package-files-missing (break: a slimming accident)
- a file whose digest, mode or owner differs from its record: package-file-changed (review)
- regular files no package owns: counted (unowned-files, info)
"""

from __future__ import annotations

import re
import stat
from typing import Any

from harness.diff.change import Change
from harness.paths import Resolver

#: rpm file flags and states that make a recorded file legitimately absent or different
RPMFILE_CONFIG, RPMFILE_DOC, RPMFILE_MISSINGOK, RPMFILE_GHOST = 1, 2, 8, 64
RPMFILE_STATE_NORMAL = 0
#: documentation is often excluded on purpose (rpm --nodocs, dpkg path-exclude)
DOC_PATHS = re.compile(r"^/usr/share/(doc|man|info|locale|help|gtk-doc|lintian)/")
MAX_LISTED = 20


def verify(files: dict[str, dict[str, Any]], lists: dict[str, list[dict[str, Any]]],
           users: dict[int, str], groups: dict[int, str]) -> dict[str, Any]:
    """Compare the recorded files of every package with the image's files."""
    missing: dict[str, list[str]] = {}
    changed: dict[str, dict[str, Any]] = {}
    owned: set[str] = set()
    resolver = Resolver(files)
    for key, entries in lists.items():
        for entry in entries:
            path = str(entry["path"])
            flags = int(entry.get("flags") or 0)
            real = resolver.resolve(path, follow_last=False)
            if real is not None:
                owned.add(real)
            if entry.get("state") not in (None, RPMFILE_STATE_NORMAL) or flags & RPMFILE_GHOST:
                continue
            if real is None:
                if not (flags & (RPMFILE_MISSINGOK | RPMFILE_DOC) or DOC_PATHS.match(path)):
                    missing.setdefault(key, []).append(path)
                continue
            diff = _differences(entry, files[real], flags, users, groups)
            if diff:
                changed[real] = {"package": key, **diff}
    unowned = sorted(p for p, r in files.items() if r.get("type") == "file" and p not in owned)
    return {"missing": missing, "changed": changed, "unowned": unowned,
            "packages_with_lists": len(lists)}


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


def changes(result: dict[str, Any], packages: dict[str, dict[str, Any]],
            ignored: re.Pattern[str] | None) -> list[Change]:
    """The verification as changes of the packages aspect (ignore globs applied)."""
    out: list[Change] = []
    for key, paths in sorted(result.get("missing", {}).items()):
        paths = [p for p in paths if ignored is None or not ignored.match(p)]
        if paths:
            name = packages.get(key, {}).get("name", key.rsplit(":", 1)[0])
            out.append(Change("packages", "package-files-missing", name, before=key,
                              after={"missing": paths[:MAX_LISTED], "count": len(paths)}))
    for path, diff in sorted(result.get("changed", {}).items()):
        if ignored is None or not ignored.match(path):
            out.append(Change("packages", "package-file-changed", path,
                              before={k: v[0] for k, v in diff.items() if k != "package"} | {"package": diff["package"]},
                              after={k: v[1] for k, v in diff.items() if k != "package"}))
    unowned = [p for p in result.get("unowned", []) if ignored is None or not ignored.match(p)]
    if unowned:
        out.append(Change("packages", "unowned-files", "/", after={
            "count": len(unowned), "sample": unowned[:MAX_LISTED]}))
    return out
