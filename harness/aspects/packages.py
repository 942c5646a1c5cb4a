"""The packages aspect: the installed packages of every package database the image holds
(harness.snapshot.managers), against the baseline; on the candidate alone, databases that
are missing, empty or partly unreadable, and files the databases promise that the image
lacks or holds differently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.aspects.aspect import Aspect, Linkage, kind
from harness.config import HarnessConfig
from harness.diff import ownership
from harness.diff.change import Change
from harness.diff.packages import diff_packages
from harness.paths import glob_regex
from harness.snapshot import Snapshot
from harness.snapshot.managers import managers


def package_checks(snap: Snapshot, config: HarnessConfig) -> list[Change]:
    """Candidate-only checks of the packages aspect: no database at all, an empty one,
    entries skipped as unreadable, or files the databases promise that the image lacks or
    holds differently."""
    return (no_database(snap) + database_findings(snap)
            + ownership.changes(snap.ownership, snap.packages, glob_regex(config.ignore)))


def database_findings(snap: Snapshot) -> list[Change]:
    """package-record-malformed (subject: the file and line or record) for every entry a
    reader skipped; package-database-empty for an existing database of no entries."""
    out: list[Change] = []
    for db in snap.package_dbs:
        where = str(db.get("location") or ", ".join(db.get("paths", [])))
        if db.get("empty"):
            out.append(Change("packages", "package-database-empty", where,
                              after=f"{db.get('manager')} database with no package"))
        for problem in db.get("malformed", []):
            subject, _, reason = str(problem).partition(": ")
            if reason.startswith("package #"):  # rpm: the file and the header's number
                number, _, reason = reason.partition(": ")
                subject = f"{subject} {number}"
            out.append(Change("packages", "package-record-malformed", subject,
                              after=reason or subject, detail={"manager": db.get("manager")}))
    return out


def no_database(snap: Snapshot) -> list[Change]:
    """An image without any package database says so (info), never "zero packages"."""
    if snap.package_dbs:
        return []
    names = [m.name for m in managers().values() if m.reader is not None]
    known = " or ".join(filter(None, (", ".join(names[:-1]), names[-1])))
    return [Change("packages", "no-package-database", "/", after=f"no {known} database")]


def _diff(before: Mapping[str, Any], snap: Snapshot, config: HarnessConfig, linkage: Linkage,
          before_files: Mapping[str, Any] | None) -> list[Change]:
    return (diff_packages(before, snap.packages, before_files, snap.files)
            + package_checks(snap, config))


def _damaged_databases(snap: Snapshot) -> list[str]:
    return [db["error"] for db in snap.package_dbs if db.get("error")]


ASPECT = Aspect(
    "packages", "Installed packages from the image's package databases.",
    kinds=(
        kind("package-removed", "packages", "break",
             "dependants and users of its files and commands lose them", True),
        kind("package-replaced", "packages", "review",
             "another package now owns its files: dependencies on the old name break", True),
        kind("package-downgraded", "packages", "break",
             "package managers will not treat the candidate as an update", True),
        kind("package-epoch-changed", "packages", "break", "an epoch can never be lowered", True),
        kind("package-arch-changed", "packages", "break",
             "a different architecture changes what is installed", True),
        kind("package-added", "packages", "info", "a new package is expected evolution"),
        kind("package-upgraded", "packages", "info", "a higher version is expected evolution"),
        kind("license-changed", "packages", "review", "licence compliance must be checked again"),
        kind("license-added", "packages", "info",
             "a new package under a licence the project may not accept"),
        kind("package-files-missing", "packages", "break",
             "the package database promises files the image no longer has", True),
        kind("package-file-changed", "packages", "review",
             "a file differs from what its package's database records (mode, owner, digest)"),
        kind("unowned-files", "packages", "info",
             "files no package lists escape package updates and the SBOM"),
        kind("package-record-malformed", "packages", "review",
             "an unreadable database entry is skipped: that package is not judged"),
        kind("package-database-empty", "packages", "info",
             "a database of no packages is said aloud, never taken for a full one"),
        kind("no-package-database", "packages", "info",
             "an image without a package database has no packages aspect to judge"),
    ),
    records=lambda snap, config: snap.packages,
    diff=_diff,
    alone=lambda snap, config, linkage: package_checks(snap, config),
    unjudgeable=_damaged_databases,
    order=2,
)
