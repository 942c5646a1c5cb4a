"""A daemonless image cannot borrow another's cached snapshot or verdict: a config without
`rootfs.diff_ids` (or with fewer than the layers) is refused as the engine refuses it, and
the caches key a daemonless image on its layer blobs too, so an archive holding a benign
archive's config over hostile layers is read (and fails its diff ids) instead of passing on
the benign snapshot."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness.config import HarnessConfig, ImageSpec
from harness.errors import SourceError
from harness.aspects import ASPECTS
from harness.gate import SnapshotStore, check_aspect
from harness.source.sources import open_source
from testimages import layered


def _layer(shadow: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), ("etc/shadow", shadow)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


BENIGN = _layer(b"root:*:19000:0:99999:7:::\n")
HOSTILE = _layer(b"root::19000:0:99999:7:::\n")


def _gate(store: SnapshotStore, ref: str, root: Path, update: bool = False) -> dict[str, Any]:
    return {a: check_aspect(ImageSpec("img", ref), a, store, root, HarnessConfig(), update=update)
            for a in ASPECTS}


@pytest.mark.parametrize("shared", ["one-process", "two-runs"])
def test_benign_config_over_hostile_layers(tmp_path: Path, shared: str) -> None:
    benign = layered.docker_archive(tmp_path / "benign.tar", [BENIGN], "x/img:1")
    hostile = layered.docker_archive(tmp_path / "hostile.tar", [HOSTILE], "x/img:1",
                                     diff_of=[BENIGN])
    refs = [f"docker-archive:{benign}", f"docker-archive:{hostile}"]
    assert (open_source(refs[0], lambda: None).inspect().image_id  # type: ignore[arg-type,return-value]
            == open_source(refs[1], lambda: None).inspect().image_id)  # type: ignore[arg-type,return-value]
    cache, root = tmp_path / "cache", tmp_path / "b"
    store = SnapshotStore(cache, f"cache-test-{uuid.uuid4().hex[:8]}")
    first = _gate(store, refs[0], root, update=True)
    assert all(r.error is None for r in first.values() if r.aspect != "packages")
    assert all(r.verdict == "pass" for r in _gate(store, refs[0], root).values()
               if r.aspect != "packages")
    if shared == "two-runs":
        store = SnapshotStore(cache, f"cache-test-{uuid.uuid4().hex[:8]}")
    second = _gate(store, refs[1], root)
    for aspect, result in second.items():
        assert result.verdict == "error", (aspect, result.verdict, result.changes)
        assert "does not match its diff id" in (result.error or ""), result.error


def _archive(tmp_path: Path, rootfs: Any) -> str:
    diff = "sha256:" + __import__("hashlib").sha256(BENIGN).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         **({"rootfs": rootfs(diff)} if rootfs else {})}).encode()
    manifest = json.dumps([{"Config": "c.json", "Layers": ["l/layer.tar", "m/layer.tar"]}])
    out = tmp_path / "a.tar"
    with tarfile.open(out, "w") as tar:
        for name, data in (("c.json", config), ("l/layer.tar", BENIGN), ("m/layer.tar", BENIGN),
                           ("manifest.json", manifest.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return f"docker-archive:{out}"


@pytest.mark.parametrize("rootfs", [None, lambda d: {"type": "layers"},
                                    lambda d: {"diff_ids": [d]},
                                    lambda d: {"diff_ids": [d, "md5:" + "0" * 32]},
                                    lambda d: {"diff_ids": [d, 7]}],
                         ids=["no-rootfs", "no-diff-ids", "short", "algorithm", "type"])
def test_unverifiable_layers_refused(tmp_path: Path, rootfs: Any) -> None:
    ref = _archive(tmp_path, rootfs)
    with pytest.raises(SourceError, match=r"a\.tar.*(diff_ids|malformed digest)"):
        open_source(ref, lambda: None).inspect()  # type: ignore[arg-type,return-value]
    result = check_aspect(ImageSpec("img", ref), "files", SnapshotStore(tmp_path / "c", "t"),
                          tmp_path / "b", HarnessConfig(), update=True)
    assert result.verdict == "error" and ref in (result.error or "")
    assert not (tmp_path / "b").exists()
