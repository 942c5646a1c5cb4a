"""A tiny dpkg-based image (static busybox + packages installed by the real dpkg) and
candidates that each carry one planted change, for the gate's end-to-end tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from testimages import Recipe
from testimages.debs import dpkg, init_admindir, make_deb

APPLETS = ("sh", "ls", "cat", "rm", "chmod", "chown", "echo", "sed", "id", "true", "env")


def _base(root: Path) -> None:
    for d in ("bin", "etc", "tmp", "usr/bin", "usr/lib", "root", "var/lib"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                     "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n")
    (root / "etc/shadow").chmod(0o640)
    (root / "etc/os-release").write_text('ID=harness-tiny\nVERSION_ID="1"\n')
    init_admindir(root)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        debs = [
            make_deb(out, "hello-demo", "1.0-1", {"/usr/bin/hello-demo": "#!/bin/sh\necho hello\n"}),
            make_deb(out, "libdemo1", "2.0-1", {"/usr/lib/libdemo.so.1": "not really a library\n"},
                     source="libdemo (2.0-1)"),
            make_deb(out, "demo-data", "1.0-1", {"/usr/share/demo/data.txt": "data\n"}, arch="all"),
        ]
        dpkg(root, "-i", *map(str, debs))


BASE = Recipe("tiny-base", _base, changes=(
    "ENV PATH=/usr/bin:/bin", "ENV DEMO_HOME=/usr/share/demo", "WORKDIR /", 'CMD ["/bin/sh"]'))


def _rebuild(root: Path) -> None:
    """An untouched rebuild: same content, new image id."""
    (root / "etc/rebuild-stamp").write_text("1\n")
    (root / "etc/rebuild-stamp").unlink()


def _purge_package(root: Path) -> None:
    dpkg(root, "--purge", "--force-depends", "libdemo1")


def _remove_file(root: Path) -> None:
    (root / "usr/bin/hello-demo").unlink()


def _change_mode(root: Path) -> None:
    (root / "usr/share/demo/data.txt").chmod(0o600)
    (root / "bin/busybox").chmod(0o644)  # the owner loses execute: a break


def _add_setuid(root: Path) -> None:
    (root / "usr/bin/hello-demo").chmod(0o4755)


def _empty_root_password(root: Path) -> None:
    shadow = root / "etc/shadow"
    shadow.write_text(shadow.read_text().replace("root:*:", "root::"))


def _add_file_and_package(root: Path) -> None:
    (root / "usr/share/demo/new.txt").write_text("new\n")
    with tempfile.TemporaryDirectory() as tmp:
        deb = make_deb(Path(tmp), "extra-tool", "0.1-1", {"/usr/bin/extra-tool": "#!/bin/sh\n"})
        dpkg(root, "-i", str(deb))


def _noop(root: Path) -> None:
    return None


REBUILD = Recipe("tiny-rebuild", _rebuild, parent=BASE)
PURGED = Recipe("tiny-purged", _purge_package, parent=BASE)
FILE_REMOVED = Recipe("tiny-file-removed", _remove_file, parent=BASE)
MODE_CHANGED = Recipe("tiny-mode-changed", _change_mode, parent=BASE)
SETUID = Recipe("tiny-setuid", _add_setuid, parent=BASE)
USER_CHANGED = Recipe("tiny-user", _noop, changes=("USER nobody",), parent=BASE)
ENV_REMOVED = Recipe("tiny-env-removed", _noop, parent=BASE, inherit_changes=False, changes=(
    "ENV PATH=/usr/bin:/bin", "WORKDIR /", 'CMD ["/bin/sh"]'))
EMPTY_PASSWORD = Recipe("tiny-empty-password", _empty_root_password, parent=BASE)
ADDITIONS = Recipe("tiny-additions", _add_file_and_package, parent=BASE)

#: Every candidate with one planted change, and what the gate must report for it:
#: (aspect, kind, subject, verdict).
PLANTED = {
    PURGED: ("packages", "package-removed", "libdemo1", "break"),
    FILE_REMOVED: ("files", "file-removed", "/usr/bin/hello-demo", "break"),
    MODE_CHANGED: ("files", "mode-changed", "/bin/busybox", "break"),
    SETUID: ("security", "setuid-added", "/usr/bin/hello-demo", "break"),
    USER_CHANGED: ("metadata", "user-changed", "User", "break"),
    ENV_REMOVED: ("metadata", "env-removed", "Env.DEMO_HOME", "break"),
    EMPTY_PASSWORD: ("security", "empty-password", "/etc/shadow", "break"),
}


def _drop_applet(root: Path) -> None:
    (root / "bin/ls").unlink()


#: runtime: a busybox applet link removed (the static files aspect sees a file removed too)
APPLET_REMOVED = Recipe("tiny-applet-removed", _drop_applet, parent=BASE)
