"""The files aspect: every path's type, mode, owner, link target and content (minus the
config's ignore globs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.aspects.aspect import Aspect, Linkage, kind, unignored_files
from harness.config import HarnessConfig
from harness.diff.change import Change
from harness.diff.files import diff_files
from harness.snapshot import Snapshot


def _diff(before: Mapping[str, Any], snap: Snapshot, config: HarnessConfig, linkage: Linkage,
          before_files: Mapping[str, Any] | None) -> list[Change]:
    return diff_files(unignored_files(before, config), unignored_files(snap.files, config))


ASPECT = Aspect(
    "files", "Every path: type, mode, owner, link target, content.",
    kinds=(
        kind("file-removed", "files", "break", "scripts and programs using the path fail", True),
        kind("file-type-changed", "files", "break", "users of the path get a different kind of file",
             True),
        kind("mode-changed", "files", "review",
             "its permissions changed: a lost read or execute bit fails its users, a new bit widens "
             "who may use it", True),
        kind("owner-changed", "files", "review", "programs running as the old owner may lose access"),
        kind("symlink-target-changed", "files", "review", "users of the link reach another file"),
        kind("file-added", "files", "info", "a new file is expected evolution"),
        kind("file-modified", "files", "info", "content changes are expected in updates"),
    ),
    records=lambda snap, config: unignored_files(snap.files, config),
    diff=_diff,
    order=4,
)
