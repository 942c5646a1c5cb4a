"""A hard link group gives its content to every member a reader wants, whichever comes
first: `/etc/shadow` linked to `/bin/.shadow-data` (visited first) is read as /etc/shadow,
and so is a dpkg status behind a hard link, through the export stream, the layer folders
in place, and the daemonless `docker-archive:` and `oci:` sources."""

from __future__ import annotations

import io
import os
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

import testimages
from harness.config import HarnessConfig, ImageSpec
from harness.gate import SnapshotStore, check_aspect
from harness.snapshot.accounts import AccountsCollector
from harness.snapshot.walk import walk
from testimages import hostile, layered

MODES = ["export", "layers", "docker-archive", "oci"]


@pytest.fixture(scope="module")
def hardlinked(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return layered.read_refs(testimages.build(hostile.HARDLINKED),
                             tmp_path_factory.mktemp("hardlinked"))


@pytest.mark.parametrize("mode", MODES)
def test_hard_linked_shadow_and_package_database(hardlinked: dict[str, str], mode: str,
                                                 tmp_path: Path) -> None:
    if mode == "layers" and os.geteuid() != 0:
        pytest.skip("reading layer folders in place needs root")
    read = mode if mode in ("export", "layers") else "auto"
    store = SnapshotStore(tmp_path / "cache", f"hardlink-test-{uuid.uuid4().hex[:12]}", read=read)
    spec = ImageSpec("hl", hardlinked[mode])
    try:
        security = check_aspect(spec, "security", store, tmp_path / "b", HarnessConfig())
        packages = check_aspect(spec, "packages", store, tmp_path / "b", HarnessConfig())
        snap = store.snapshot(store.find_image(spec))
    finally:
        store.cleanup()
    assert security.error is None, security.error
    found = [(c.kind, c.subject, c.verdict) for c in security.changes]
    assert ("empty-password", "/etc/shadow", "break") in found, found
    assert packages.error is None, packages.error
    assert {"hello-demo", "libdemo1", "demo-data"} <= {r["name"] for r in snap.packages.values()}
    assert snap.files["/etc/shadow"]["link"] == "/bin/.shadow-data"


def test_walk_gives_the_link_its_content_either_order() -> None:
    shadow = b"root::19000:0:99999:7:::\n"
    for first, second in (("bin/.data", "etc/shadow"), ("etc/shadow", "zz/.data")):
        stream = hostile.tar_of([("etc/passwd", tarfile.REGTYPE, {"data": b"root:x:0:0::/:/bin/sh\n"}),
                                 (first, tarfile.REGTYPE, {"data": shadow}),
                                 (second, tarfile.LNKTYPE, {"linkname": first})])
        accounts = AccountsCollector()
        walk(io.BytesIO(stream), [accounts])
        assert accounts.result()["root"]["empty_password"], (first, second)
