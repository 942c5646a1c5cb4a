"""A release family: Debian bookworm minbase and derived images that share its layer, each
adding one layer of its own (`docker build` FROM the base, one COPY), as a base image's
runtime variants are built.

A member's layer holds Debian packages unpacked on the host (`apt-get download` from this
machine's mirror, `dpkg-deb -x`; no network inside a build), their stanzas appended to the
base's dpkg status (`Status: install ok installed`) and their file lists in
/var/lib/dpkg/info, so the packages aspect sees them as dpkg would have installed them.
Dependencies are not resolved: the packages listed are what each member adds. Images are
tagged by the hash of the member's package list, its base and this module's build code.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from filelock import FileLock

from testimages import CACHE, REPO, build, run
from testimages import debian

#: member -> the packages its layer adds (bookworm names)
MEMBERS: dict[str, tuple[str, ...]] = {
    "rt-python": ("python3.11", "python3.11-minimal", "libpython3.11-minimal",
                  "libpython3.11-stdlib", "libexpat1", "libgdbm6", "libgdbm-compat4",
                  "libgssapi-krb5-2", "libk5crypto3", "libkeyutils1", "libkrb5-3",
                  "libkrb5support0", "libncursesw6", "libnsl2", "libreadline8", "readline-common",
                  "libsqlite3-0", "libssl3", "libtirpc-common", "libtirpc3", "media-types",
                  "libffi8"),
    "rt-nodejs": ("libnode108", "libuv1", "libc-ares2", "libbrotli1", "libicu72",
                  "libnghttp2-14", "libssl3"),
    "rt-php": ("php8.2-cli", "php8.2-common", "php8.2-opcache", "php8.2-readline", "php-common",
               "libargon2-1", "libsodium23", "libxml2", "libicu72", "libedit2", "libbsd0",
               "libmagic1", "libmagic-mgc", "libssl3", "libonig5"),
    "rt-perl": ("perl", "perl-modules-5.36", "libperl5.36", "libgdbm6", "libgdbm-compat4"),
    "busybox": ("busybox",),
    "libs": ("libicu72", "libssl3", "libxslt1.1", "libxml2", "libsqlite3-0"),
    "tools": ("curl", "libcurl4", "libnghttp2-14", "librtmp1", "libssh2-1", "libpsl5", "openssl",
              "libssl3", "libldap-2.5-0", "libsasl2-2", "libsasl2-modules-db", "libbrotli1",
              "libgssapi-krb5-2", "libk5crypto3", "libkeyutils1", "libkrb5-3",
              "libkrb5support0"),
}

#: merged /usr: a package's /bin, /sbin and /lib* go under /usr, as in the base
_MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def _download(packages: tuple[str, ...], into: Path) -> list[Path]:
    into.mkdir(parents=True, exist_ok=True)
    run(["apt-get", "download", "-q", *packages], cwd=into)
    return sorted(into.glob("*.deb"))


def _unpack(debs: list[Path], base_root: Path, root: Path) -> None:
    """Each .deb unpacked into `root`, its stanza appended to a copy of the base's status."""
    stanzas = []
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        with tempfile.TemporaryDirectory() as tmp:
            run(["dpkg-deb", "-x", str(deb), tmp])
            files = []
            for top in _MERGED:  # merged /usr: their content lies under /usr
                moved = Path(tmp) / top
                if moved.is_dir() and not moved.is_symlink():
                    (Path(tmp) / "usr" / top).mkdir(parents=True, exist_ok=True)
                    run(["cp", "-a", f"{moved}/.", str(Path(tmp) / "usr" / top)])
                    shutil.rmtree(moved)
            for path in sorted(Path(tmp).rglob("*")):
                files.append("/" + str(path.relative_to(tmp)))
            run(["cp", "-a", f"{tmp}/.", str(root)])
        control = run(["dpkg-deb", "-f", str(deb)]).stdout.decode()
        name = run(["dpkg-deb", "-f", str(deb), "Package"]).stdout.decode().strip()
        arch = run(["dpkg-deb", "-f", str(deb), "Architecture"]).stdout.decode().strip()
        lines = control.rstrip("\n").split("\n")
        lines.insert(1, "Status: install ok installed")
        stanzas.append("\n".join(lines) + "\n")
        listname = name if arch == "all" else f"{name}:{arch}"
        (info / f"{listname}.list").write_text("\n".join(["/.", *files]) + "\n")
    status = (base_root / "var/lib/dpkg/status").read_text()
    (root / "var/lib/dpkg/status").write_text(status.rstrip("\n") + "\n\n" + "\n".join(stanzas))


def _digest(name: str) -> str:
    h = hashlib.sha256()
    for part in (name, *MEMBERS[name], debian.MINBASE.digest, inspect.getsource(_unpack),
                 inspect.getsource(build_member)):
        h.update(part.encode())
    return h.hexdigest()[:12]


def build_base() -> str:
    """The family's base: Debian bookworm minbase."""
    return build(debian.MINBASE)


def build_member(name: str, salt: str = "") -> str:
    """The member's image (built once, reused by its tag): FROM the base, one COPY layer.
    `salt` makes a rebuilt member: the same layer content plus one marker file naming it."""
    base = build_base()
    tag = f"{REPO}/family-{name}:{_digest(name)}{'-' + salt if salt else ''}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0:
        return tag
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE / f"family-{name}.lock")):
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            ctx = Path(tmp)
            root = ctx / "root"
            root.mkdir()
            base_root = _base_root()
            status = (base_root / "var/lib/dpkg/status").read_text()
            installed = {line.split(":", 1)[1].strip() for line in status.splitlines()
                         if line.startswith("Package:")}
            adds = tuple(p for p in MEMBERS[name] if p not in installed)
            _unpack(_download(adds, ctx / "debs"), base_root, root)
            if salt:
                (root / "etc" / f"family-{name}.build").write_text(salt + "\n")
            (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY root/ /\n")
            run(["docker", "build", "-q", "-t", tag, str(ctx)],
                env={**os.environ, "DOCKER_BUILDKIT": "0"})
    return tag


def _base_root() -> Path:
    from testimages import rootfs

    return rootfs(debian.MINBASE)


def build_family() -> tuple[str, dict[str, str]]:
    """The base's tag and each member's."""
    return build_base(), {name: build_member(name) for name in MEMBERS}
