"""The security aspect: new setuid/world-writable files against the files baseline (it has
no baseline file of its own); empty passwords, root as the default user, secrets and files
hidden in lower layers on the candidate alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.aspects.aspect import Aspect, Linkage, kind, unignored_files
from harness.aspects.hidden import HIDDEN, hidden_changes
from harness.config import HarnessConfig
from harness.diff.change import Change
from harness.diff.files import candidate_security, diff_security
from harness.snapshot import Snapshot


def _alone(snap: Snapshot, config: HarnessConfig, linkage: Linkage) -> list[Change]:
    return (diff_security(None, {}, snap.accounts) + candidate_security(snap.metadata, snap.secrets)
            + hidden_changes(snap))


def _diff(before: Mapping[str, Any], snap: Snapshot, config: HarnessConfig, linkage: Linkage,
          before_files: Mapping[str, Any] | None) -> list[Change]:
    return (diff_security(unignored_files(before, config), unignored_files(snap.files, config),
                          snap.accounts) + candidate_security(snap.metadata, snap.secrets)
            + hidden_changes(snap))


ASPECT = Aspect(
    "security", "New setuid/world-writable files; accounts with empty passwords.",
    kinds=(
        kind("setuid-added", "security", "break", "a new privileged program widens the attack surface",
             True),
        kind("world-writable-added", "security", "break", "anyone in the container can change the file",
             True),
        kind("empty-password", "security", "break",
             "an account logs in with no password (CVE-2019-5021 class)", True),
        kind("secret-found", "security", "review", "a private key or token baked into the image leaks"),
        kind("root-user", "security", "review", "the container runs as root unless told otherwise"),
        HIDDEN,
    ),
    reads="files",
    diff=_diff,
    alone=_alone,
    order=1,
)
