"""The ownership verification of a candidate (`harness.snapshot.ownership.verify`) as
changes of the packages aspect (docs/compat-rules.md): package-files-missing,
package-file-changed, unowned-files."""

from __future__ import annotations

import re
from typing import Any

from harness.diff.change import Change
from harness.snapshot.ownership import MAX_LISTED


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
