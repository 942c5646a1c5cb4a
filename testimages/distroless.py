"""A distroless-style image: a few real Debian packages' files and their dpkg data in
`var/lib/dpkg/status.d/` (one control stanza per package, no Status field, with the
`.md5sums` beside it), and neither dpkg nor a shell, as Google's distroless images are made.

The packages come from the debootstrap image (testimages.debian), so their stanzas are real.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from testimages import Recipe, rootfs
from testimages.debian import MINBASE

PACKAGES = ("base-files", "tzdata", "gcc-12-base", "libgcc-s1", "libc6", "libstdc++6", "zlib1g")
#: the merged-/usr symlinks of Debian 12, made first so package paths land under /usr
MERGED = {"bin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib64", "sbin": "usr/sbin"}


def status_stanzas(admin: Path) -> dict[str, str]:
    """Package name -> its stanza in a dpkg `status` file (text, without the blank line)."""
    stanzas: dict[str, str] = {}
    for block in (admin / "status").read_text().split("\n\n"):
        if block.strip():
            name = block.split("\n", 1)[0].removeprefix("Package: ")
            stanzas[name] = block.strip("\n")
    return stanzas


def _info(admin: Path, name: str, suffix: str) -> Path:
    """`info/NAME.SUFFIX`, or `info/NAME:ARCH.SUFFIX` for Multi-Arch: same packages."""
    plain = admin / "info" / f"{name}.{suffix}"
    return plain if plain.exists() else next((admin / "info").glob(f"{name}:*.{suffix}"))


def _copy_path(source_root: Path, root: Path, path: str) -> None:
    src, dst = source_root / path.lstrip("/"), root / path.lstrip("/")
    if os.path.lexists(dst) or not os.path.lexists(src):
        return
    if src.is_symlink():
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def _build(root: Path) -> None:
    source = rootfs(MINBASE)
    admin = source / "var/lib/dpkg"
    (root / "usr").mkdir()
    for link, target in MERGED.items():
        (root / target).mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / link)
    stanzas = status_stanzas(admin)
    status_d = root / "var/lib/dpkg/status.d"
    status_d.mkdir(parents=True)
    for name in PACKAGES:
        for path in _info(admin, name, "list").read_text().splitlines():
            if path not in ("/.", ""):
                _copy_path(source, root, path)
        control = [line for line in stanzas[name].split("\n") if not line.startswith("Status:")]
        (status_d / name).write_text("\n".join(control) + "\n")
        shutil.copy2(_info(admin, name, "md5sums"), status_d / f"{name}.md5sums")
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/sbin/nologin\n"
                                     "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    (root / "etc/group").write_text("root:x:0:\nnonroot:x:65532:\n")
    (root / "tmp").mkdir(mode=0o1777, exist_ok=True)
    (root / "tmp").chmod(0o1777)


BASE = Recipe("distroless-cc", _build, changes=("USER 65532",), extra=(MINBASE.digest,))
