"""Files and security diffs: per path type, mode, owner, link target and content."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.diff.change import Change
from harness.filetable import FileTable
from harness.diff.records import diff_keyed

SETID_BITS = 0o6000
STICKY = 0o1000
WORLD_WRITE = 0o002


def _mode(record: dict[str, Any]) -> int:
    return int(record.get("mode", "0"), 8)


def diff_files(before: Mapping[str, dict[str, Any]], after: Mapping[str, dict[str, Any]]
               ) -> list[Change]:
    """file-removed/added/type-changed/mode-changed/owner-changed/symlink-target-changed/modified."""
    keyed = diff_keyed(before, after)
    changes = [Change("files", "file-removed", p, before=_brief(before[p])) for p in keyed.removed]
    changes += [Change("files", "file-added", p, after=_brief(after[p])) for p in keyed.added]
    for path in keyed.changed:
        old, new = before[path], after[path]
        if old["type"] != new["type"]:
            changes.append(Change("files", "file-type-changed", path, old["type"], new["type"]))
            continue
        if old["mode"] != new["mode"]:
            changes.append(Change("files", "mode-changed", path, old["mode"], new["mode"]))
        if (old["uid"], old["gid"]) != (new["uid"], new["gid"]):
            changes.append(Change("files", "owner-changed", path,
                                  f"{old['uid']}:{old['gid']}", f"{new['uid']}:{new['gid']}"))
        if old.get("target") != new.get("target"):
            changes.append(Change("files", "symlink-target-changed", path,
                                  old.get("target"), new.get("target")))
        if (old.get("sha256"), old.get("size")) != (new.get("sha256"), new.get("size")):
            changes.append(Change("files", "file-modified", path,
                                  _owned({"size": old.get("size"), "sha256": old.get("sha256")}, old),
                                  _owned({"size": new.get("size"), "sha256": new.get("sha256")}, new)))
    return changes


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items()
            if k in ("type", "mode", "uid", "gid", "size", "target", "package")}


def _owned(facts: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """`facts` plus the package that owns the file, when a database lists it."""
    return {**facts, "package": record["package"]} if record.get("package") else facts


def is_setid(record: dict[str, Any]) -> bool:
    """A regular file with setuid or setgid."""
    return record.get("type") == "file" and bool(_mode(record) & SETID_BITS)


def is_world_writable(record: dict[str, Any]) -> bool:
    """A file, or a directory without the sticky bit, that anyone may write."""
    kind = record.get("type")
    mode = _mode(record)
    if kind == "file":
        return bool(mode & WORLD_WRITE)
    if kind == "dir":
        return bool(mode & WORLD_WRITE) and not mode & STICKY
    return False


def candidate_security(metadata: dict[str, Any], secrets: dict[str, str]) -> list[Change]:
    """Checks of the candidate alone: root as the default user, secrets baked into files."""
    changes = [Change("security", "secret-found", path, after=kind) for path, kind in secrets.items()]
    if str(metadata.get("User", "")).split(":")[0] in ("", "root", "0"):
        changes.append(Change("security", "root-user", "User", after=metadata.get("User") or "root"))
    return changes


def diff_security(before: Mapping[str, dict[str, Any]] | None, after: Mapping[str, dict[str, Any]],
                  accounts: dict[str, dict[str, Any]]) -> list[Change]:
    """setuid-added, world-writable-added against a baseline; empty-password on the candidate
    alone (an account that logs in with no password is a break with or without a baseline)."""
    changes = [Change("security", "empty-password", acct.get("source", "/etc/shadow"),
                      after={"account": name, "password": ""})
               for name, acct in sorted(accounts.items()) if acct.get("empty_password")]
    if before is None:
        return changes
    # of a table only the records with such a bit are unpacked
    flagged = (after.with_mode(SETID_BITS | WORLD_WRITE) if isinstance(after, FileTable)
               else after.items())
    for path, rec in flagged:
        old = before.get(path)
        if is_setid(rec) and (old is None or not is_setid(old) or
                              _mode(old) & SETID_BITS != _mode(rec) & SETID_BITS):
            changes.append(Change("security", "setuid-added", path,
                                  old["mode"] if old else None, rec["mode"]))
        if is_world_writable(rec) and (old is None or not is_world_writable(old)):
            changes.append(Change("security", "world-writable-added", path,
                                  old["mode"] if old else None, rec["mode"]))
    return changes
