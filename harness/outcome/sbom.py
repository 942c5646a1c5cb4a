"""CycloneDX SBOM of what the gate saw in an image, so vulnerability scanners read the same
package list (`--sbom DIR`). Built with cyclonedx-python-lib; purls per ecosystem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
from cyclonedx.spdx import is_expression, is_supported_id
from cyclonedx.output.json import JsonV1Dot5
from packageurl import PackageURL

from harness import safepath
from harness.snapshot import Snapshot
from harness.snapshot.managers import manager

def purl(record: dict[str, Any], distro: str | None) -> PackageURL | None:
    """The package URL of a package record (None for ecosystems purl has no type for)."""
    entry = manager(str(record.get("manager")))
    kind = entry.purl_type if entry is not None else None
    if entry is None or kind is None:
        return None
    name, namespace = str(record["name"]), None
    qualifiers: dict[str, str] = {}
    if entry.distro:
        namespace = distro
        if record.get("arch"):
            qualifiers["arch"] = str(record["arch"])
        if record.get("epoch"):
            qualifiers["epoch"] = str(record["epoch"])
        version = str(record.get("version")) + (f"-{record['release']}" if record.get("release") else "")
    else:
        version = str(record.get("version"))
        if entry.scoped_names and name.startswith("@"):
            namespace, name = name.split("/", 1)
    return PackageURL(type=kind, namespace=namespace, name=name, version=version,
                      qualifiers=qualifiers or None)


def _is_library(record: dict[str, Any]) -> bool:
    entry = manager(str(record.get("manager")))
    return entry is not None and entry.library


def licenses(record: dict[str, Any]) -> list[License]:
    """The record's licence as CycloneDX has it: an SPDX id, an SPDX expression, else the
    text as written (a name)."""
    text = str(record.get("license") or "").strip()
    if not text:
        return []
    if is_supported_id(text):
        return [DisjunctiveLicense(id=text)]
    if is_expression(text):
        return [LicenseExpression(text)]
    return [DisjunctiveLicense(name=text)]


def build(snap: Snapshot, name: str) -> Bom:
    """One component per package record (OS and language packages)."""
    distro = (snap.image.get("os_release") or {}).get("ID")
    bom = Bom()
    root = Component(name=name, type=ComponentType.CONTAINER, version=str(snap.image.get("image_id")),
                     bom_ref=f"image:{name}")
    bom.metadata.component = root
    components = []
    for key, record in sorted(snap.packages.items()):
        components.append(Component(
            name=str(record["name"]), version=str(record.get("evr") or record.get("version")),
            type=ComponentType.LIBRARY if _is_library(record) else ComponentType.APPLICATION,
            purl=purl(record, distro), bom_ref=f"{record.get('manager')}:{key}",
            licenses=licenses(record)))
    for component in components:
        bom.components.add(component)
    bom.register_dependency(root, components)  # the image contains every package directly
    return bom


def write(directory: Path, name: str, snap: Snapshot) -> Path:
    """Write DIR/NAME-ARCH.cdx.json atomically; return its path."""
    safepath.check_part(name, "image name")
    safepath.check_arch(snap.arch, name)
    directory.mkdir(parents=True, exist_ok=True)
    target = safepath.inside(directory, f"{name}-{snap.arch}.cdx.json")
    text = JsonV1Dot5(build(snap, name)).output_as_string(indent=1)
    safepath.replace_file(target, text.encode("utf-8"))
    return target
