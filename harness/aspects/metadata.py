"""The metadata aspect: the image config (user, entrypoint, cmd, workdir, env, ports,
volumes, labels ...), flattened to its contract subjects (`Labels.KEY`); the image's size
changes are judged with it (harness.aspects.size)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.aspects import size
from harness.aspects.aspect import Aspect, Linkage, kind
from harness.aspects.hidden import hidden_size
from harness.config import HarnessConfig
from harness.diff.change import Change
from harness.diff.metadata import diff_metadata
from harness.snapshot import Snapshot


def _diff(before: Mapping[str, Any], snap: Snapshot, config: HarnessConfig, linkage: Linkage,
          before_files: Mapping[str, Any] | None) -> list[Change]:
    return diff_metadata(before, snap.metadata) + hidden_size(snap)


ASPECT = Aspect(
    "metadata", "User, entrypoint, cmd, workdir, env, ports, volumes, labels.",
    kinds=(
        kind("user-changed", "metadata", "break", "every `docker run` runs as a different user", True),
        kind("entrypoint-changed", "metadata", "break", "every `docker run` runs a different program",
             True),
        kind("cmd-changed", "metadata", "break",
             "every `docker run` without arguments runs a different command", True),
        kind("workdir-changed", "metadata", "break", "relative paths of every `docker run` change",
             True),
        kind("platform-changed", "metadata", "break",
             "the image runs on another architecture or OS than its users expect"),
        kind("stopsignal-changed", "metadata", "review", "`docker stop` signals the program differently"),
        kind("healthcheck-changed", "metadata", "review", "orchestrators judge the container's health "
                                                          "differently"),
        kind("env-removed", "metadata", "break", "programs relying on the variable lose it", True),
        kind("env-added", "metadata", "info", "a new variable is expected evolution"),
        kind("env-changed", "metadata", "review", "programs see another value (PATH, LANG ...)"),
        kind("port-removed", "metadata", "break", "deployments relying on the exposed port lose it",
             True),
        kind("port-added", "metadata", "info", "a new exposed port is expected evolution"),
        kind("port-changed", "metadata", "review", "deployments relying on the port may see it differ"),
        kind("volume-removed", "metadata", "break", "data written to the volume is no longer kept apart",
             True),
        kind("volume-added", "metadata", "info", "a new volume is expected evolution"),
        kind("volume-changed", "metadata", "review", "data written to the volume may be kept otherwise"),
        kind("label-changed", "metadata", "info", "labels describe the image; programs do not use them"),
        kind("config-changed", "metadata", "review", "another image config key differs"),
        *size.KINDS,
    ),
    records=lambda snap, config: snap.metadata,
    diff=_diff,
    alone=lambda snap, config, linkage: hidden_size(snap),
    against_header=size.size_changes,
    order=0,
)
