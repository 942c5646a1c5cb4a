"""The abi aspect: libraries, sonames, symbols and versions against the baseline, and the
linkage closure of every ELF object of the candidate alone (harness.diff.abi)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.aspects.aspect import Aspect, Linkage, kind
from harness.config import HarnessConfig
from harness.diff import abi
from harness.diff.change import Change
from harness.diff.linkage import Finding, linkage_findings
from harness.snapshot import Snapshot


def suppressions(config: HarnessConfig) -> abi.Suppressions:
    """The configured ABI suppressions (`[tool.harness.abi]`)."""
    return abi.Suppressions(config.abi_suppress_versions, config.abi_suppress_symbols,
                            config.abi_suppress_sonames)


def abi_with_env(snap: Snapshot) -> dict[str, Any]:
    """The ABI section plus the image's LD_LIBRARY_PATH, which the loader searches too, and
    each object's sha256 (harness.diff.linkage shares checks by content)."""
    digests = {path: digest for path in snap.abi.get("objects") or {}
               if (digest := abi.digest_of(snap.files, path)) is not None}
    return {**snap.abi, "library_path": snap.metadata.get("Env.LD_LIBRARY_PATH"),
            "digests": digests}


def linkage_here(snap: Snapshot) -> list[Finding]:
    """The snapshot's linkage findings, computed in this process."""
    return linkage_findings(abi_with_env(snap))


def _alone(snap: Snapshot, config: HarnessConfig, linkage: Linkage) -> list[Change]:
    return abi.linkage_changes(abi_with_env(snap), linkage(snap))


def _diff(before: Mapping[str, Any], snap: Snapshot, config: HarnessConfig, linkage: Linkage,
          before_files: Mapping[str, Any] | None) -> list[Change]:
    return abi.diff_abi(before, snap.abi, suppressions(config)) + _alone(snap, config, linkage)


ASPECT = Aspect(
    "abi", "Libraries, sonames, symbols and versions; the linkage closure of every ELF object.",
    kinds=(
        kind("library-removed", "abi", "break", "programs linked against the soname fail to start", True),
        kind("soname-changed", "abi", "break", "programs linked against the old soname fail to start",
             True),
        kind("symbol-removed", "abi", "break",
             "programs using the symbol fail to load or crash on first call", True),
        kind("symbol-moved", "abi", "info",
             "the loader still binds the symbol, from the library that now defines it"),
        kind("symbol-version-removed", "abi", "break",
             "glibc refuses to load every consumer that needs the version node", True),
        kind("symbol-type-changed", "abi", "break",
             "code expecting a function gets data (or the reverse)", True),
        kind("symbol-size-changed", "abi", "break", "copy relocations silently truncate a grown object",
             True),
        kind("symbol-added", "abi", "info", "a new symbol is expected evolution"),
        kind("needed-unresolved", "abi", "break", "the dynamic loader cannot find a needed library",
             True),
        kind("symbol-unresolved", "abi", "break", "the dynamic loader cannot bind a needed symbol",
             True),
        kind("needed-added", "abi", "review", "a new dependency must ship wherever the library does"),
        kind("runpath-changed", "abi", "review",
             "the loader searches other folders for the library's dependencies"),
    ),
    records=lambda snap, config: abi.baseline_records(snap.abi, suppressions(config),
                                                       snap.files),
    diff=_diff,
    alone=_alone,
    order=3,
)
