"""Tiny .deb packages made with the real dpkg-deb, installed into a root with the real dpkg."""

from __future__ import annotations

import tempfile
from pathlib import Path

from testimages import run


def make_deb(out_dir: Path, name: str, version: str, files: dict[str, bytes | str],
             arch: str = "amd64", source: str | None = None, depends: str | None = None,
             modes: dict[str, int] | None = None) -> Path:
    """Build `name_version_arch.deb` holding `files` (path -> content)."""
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "pkg"
        (pkg / "DEBIAN").mkdir(parents=True)
        for rel, content in files.items():
            target = pkg / rel.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
            target.chmod((modes or {}).get(rel, 0o755 if "/bin/" in rel else 0o644))
        control = [f"Package: {name}", f"Version: {version}", f"Architecture: {arch}",
                   "Maintainer: Harness Tests <tests@example.invalid>",
                   f"Installed-Size: {max(1, sum(len(c) for c in files.values()) // 1024)}"]
        if source:
            control.append(f"Source: {source}")
        if depends:
            control.append(f"Depends: {depends}")
        control.append(f"Description: {name} test package")
        (pkg / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
        deb = out_dir / f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
        run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(pkg), str(deb)])
    return deb


def init_admindir(root: Path) -> None:
    """An empty dpkg database under `root`."""
    admin = root / "var/lib/dpkg"
    for sub in ("info", "updates", "triggers"):
        (admin / sub).mkdir(parents=True, exist_ok=True)
    for name in ("status", "available"):
        (admin / name).touch()


def dpkg(root: Path, *args: str) -> None:
    """Run the host's dpkg on an image root (no maintainer scripts in our packages)."""
    run(["dpkg", f"--root={root}", "--force-script-chrootless", "--force-not-root",
         "--force-bad-path", "--force-unsafe-io", *args])
