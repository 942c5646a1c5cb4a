"""What the gate knows of a package manager or language ecosystem: its database reader (where
its database lies and how to read it), how its versions order and how the SBOM names its
packages. Each manager's module holds its entry; the registry is `harness.snapshot.managers`."""

from __future__ import annotations

from dataclasses import dataclass

from harness.snapshot.packages import PackageReader
from harness.versions import RecordOrder


@dataclass(frozen=True)
class Manager:
    """One package manager (`dpkg`, `rpm`, `apk`) or language ecosystem (`pypi`, `npm` ...)."""

    name: str
    #: its version order of two of its package records
    compare: RecordOrder
    #: its purl type (`deb` for dpkg); None where purl has none
    purl_type: str | None = None
    #: how to find and read its database in an image's files (an OS package manager);
    #: None for an ecosystem the language collector reads
    reader: PackageReader | None = None
    #: an OS distribution's packages: their purls take the distribution as namespace, the
    #: arch and epoch as qualifiers, version-release as version
    distro: bool = False
    #: its packages are libraries to the SBOM (else applications)
    library: bool = False
    #: a name `@scope/name` is purl's namespace and name (npm)
    scoped_names: bool = False
