"""hidden-in-lower-layer: files a later layer deleted still ship in the image. A layered
image (`testimages.layered.HIDDEN_DOCKERFILE`, built by `docker build`) holds a whited-out
private key, a whited-out setuid script, an ELF program in a folder made opaque, a plain note
there and a folder replaced by a file: the engine's layer folders read in place and the
daemonless sources report each (break for the key, the setuid file and the ELF; info
otherwise) and their bytes in the size aspect; an export stream says the check needs the
layers."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness.config import HarnessConfig, ImageSpec
from harness.gate import SnapshotStore, check_aspect
from testimages import layered

EXPECTED = {"/root/.ssh/id_ed25519": "break", "/usr/bin/suid-helper": "break",
            "/opt/build/tool": "break", "/opt/build/cache/notes.txt": "info",
            "/opt/tools/t": "info"}


@pytest.fixture(scope="module")
def hidden_refs(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return layered.read_refs(layered.build_hidden(), tmp_path_factory.mktemp("hidden"))


def _judge(ref: str, read: str, tmp_path: Path) -> dict[str, Any]:
    store = SnapshotStore(tmp_path / f"cache-{read}", f"hidden-test-{uuid.uuid4().hex[:8]}",
                          read=read)
    try:
        return {a: check_aspect(ImageSpec("hidden", ref), a, store, tmp_path / "b",
                                HarnessConfig()) for a in ("security", "metadata")}
    finally:
        store.cleanup()


@pytest.mark.parametrize("mode", ["layers", "docker-archive", "oci"])
def test_deleted_files_are_reported(hidden_refs: dict[str, str], mode: str, tmp_path: Path) -> None:
    if mode == "layers" and os.geteuid() != 0:
        pytest.skip("reading layer folders in place needs root")
    results = _judge(hidden_refs[mode], "layers" if mode == "layers" else "auto", tmp_path)
    security = results["security"]
    assert security.error is None, security.error
    found = {c.subject: c for c in security.changes if c.kind == "hidden-in-lower-layer"}
    assert {p: c.verdict for p, c in found.items()} == EXPECTED, found
    assert found["/root/.ssh/id_ed25519"].after["found"] == ["secret (private-key)"]
    assert found["/usr/bin/suid-helper"].after["found"] == ["setuid/setgid"]
    assert found["/usr/bin/suid-helper"].after["mode"] == "4755"
    assert found["/opt/build/tool"].after["found"] == ["ELF"]
    assert found["/opt/build/tool"].after["layers"] == [found["/opt/tools/t"].after["layers"][0]]
    size = [c for c in results["metadata"].changes if c.kind == "hidden-in-lower-layer"]
    busybox = Path("/bin/busybox").stat().st_size
    assert [(c.aspect, c.subject, c.verdict) for c in size] == [("size", "image", "info")]
    assert size[0].after["files"] == 5 and size[0].after["bytes"] > busybox
    # none of them is in the merged view
    assert not any(p in {c.subject for c in security.changes if c.kind != "hidden-in-lower-layer"}
                   for p in EXPECTED)


def test_export_says_the_check_needs_the_layers(hidden_refs: dict[str, str], tmp_path: Path) -> None:
    security = _judge(hidden_refs["export"], "export", tmp_path)["security"]
    notes = [c for c in security.changes if c.kind == "hidden-in-lower-layer"]
    assert len(notes) == 1 and notes[0].verdict == "info" and notes[0].subject == "image"
    assert "needs its layers" in notes[0].after
