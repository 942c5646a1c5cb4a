"""What the gate knows of a package manager or language ecosystem beside its reader: how its
versions order and its package-URL type. Each manager's module holds its entry; the registry
is `harness.snapshot.managers`."""

from __future__ import annotations

from dataclasses import dataclass

from harness.versions import RecordOrder


@dataclass(frozen=True)
class Manager:
    """One package manager (`dpkg`, `rpm`, `apk`) or language ecosystem (`pypi`, `npm` ...)."""

    name: str
    #: its version order of two of its package records
    compare: RecordOrder
    #: its purl type (`deb` for dpkg); None where purl has none
    purl_type: str | None = None
