"""Strings an image chooses never lead a path out of its folder: an Architecture of
`../../../../tmp/x`, `/tmp/x/sub` or `../other-image/x86_64` (an image `docker load`ed, and
the same archive read daemonless) is an error naming the image, and `--update-baselines`
writes nothing anywhere. Temp files are made exclusively, never through a planted symlink.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

import testimages
from harness import baseline, safepath
from harness.config import HarnessConfig, ImageSpec
from harness.errors import HarnessError, SourceError
from harness.aspects import ASPECTS
from harness.gate import SnapshotStore, check_aspect
from harness.outcome.model import ImageReport
from harness.outcome.report import write_report
from harness.snapshot import Snapshot
from testimages import layered


def _layer() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), ("bin/x", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _gate(ref: str, root: Path, cache: Path) -> dict[str, Any]:
    store = SnapshotStore(cache, f"paths-test-{uuid.uuid4().hex[:12]}")
    try:
        return {aspect: check_aspect(ImageSpec("img", ref), aspect, store, root,
                                     HarnessConfig(), update=True) for aspect in ASPECTS}
    finally:
        store.cleanup()


def test_hostile_architecture_writes_nowhere(docker_engine: Any, tmp_path: Path) -> None:
    outside = Path(f"/tmp/harness-i13-{uuid.uuid4().hex[:12]}")
    arches = ["../../../../tmp/x", f"{outside}/sub", "../other-image/x86_64", "X86_64",
              "x86_64/../../x"]
    work = tmp_path / "a" / "b" / "c" / "d"
    root = work / "baselines"
    victim = root / "other-image" / "x86_64" / "metadata.json"
    victim.parent.mkdir(parents=True)
    victim.write_text("the other image's baseline\n")
    before = _tree(tmp_path)
    tags = []
    try:
        for i, arch in enumerate(arches):
            tag = f"harness-test/hostile-arch:{uuid.uuid4().hex[:12]}"
            archive = layered.docker_archive(tmp_path / f"arch{i}.tar", [_layer()], tag, arch=arch)
            tags.append(layered.load(archive))
            for ref in (tag, f"docker-archive:{archive}"):
                results = _gate(ref, root, tmp_path / f"cache{i}")
                for aspect, result in results.items():
                    assert result.verdict == "error", (ref, aspect)
                    assert ref in (result.error or "") and repr(arch) in (result.error or ""), \
                        result.error
                    assert result.updated is None
    finally:
        for tag in tags:
            testimages.run(["docker", "rmi", "-f", tag])
    assert not outside.exists()
    new = _tree(tmp_path) - before
    assert all(p.startswith("cache") or p.endswith(".tar") for p in new), sorted(new)
    assert victim.read_text() == "the other image's baseline\n"


def test_normalised_architectures_pass() -> None:
    from harness.source.engine import image_arch

    assert image_arch("amd64", None, "i") == "x86_64"
    assert image_arch("arm64", "v8", "i") == "aarch64"
    assert image_arch("arm", "v6", "i") == "armv6l"
    for bad in ("", None, 7, "..", "x86-64", "amd64\n", "a/b"):
        with pytest.raises(SourceError, match="image 'i'"):
            image_arch(bad, None, "i")


def test_baseline_paths_stay_inside(tmp_path: Path) -> None:
    root = tmp_path / "baselines"
    (root / "img").mkdir(parents=True)
    os.symlink(tmp_path / "elsewhere", root / "img" / "x86_64")  # planted in the folder
    with pytest.raises(HarnessError, match="outside"):
        baseline.write(root, "img", "x86_64", "files", {}, {})
    with pytest.raises(HarnessError, match="outside"):
        baseline.load(root, "img", "x86_64", "files")
    assert not (tmp_path / "elsewhere").exists()
    for name, arch, aspect in (("..", "x86_64", "files"), ("img", "x86_64", "../files"),
                               ("a/b", "x86_64", "files"), ("img", "x86_64", "probes.x/y")):
        with pytest.raises(HarnessError):
            baseline.aspect_path(root, name, arch, aspect)


def test_temp_files_never_follow_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / "report.md.tmp")  # the old fixed temp names
    write_report(out / "report.md", [ImageReport("img", "ref")])
    cache = tmp_path / "cache"
    cache.mkdir()
    snap = Snapshot(image={"arch": "x86_64"}, metadata={}, files={}, packages={})
    os.symlink(victim, cache / "k.snapshot.tmp")
    snap.keep(cache / "k.snapshot")
    assert victim.read_text() == "keep\n"
    assert (out / "report.md").read_text().startswith("#")
    assert Snapshot.recall(cache / "k.snapshot") is not None
    # a planted symlink AT the target is replaced, not written through
    os.symlink(victim, out / "r.json")
    write_report(out / "r.json", [ImageReport("img", "ref")])
    assert victim.read_text() == "keep\n" and json.loads((out / "r.json").read_text())


def test_sbom_name_checked(tmp_path: Path) -> None:
    from harness.outcome import sbom

    snap = Snapshot(image={"arch": "../../x", "image_id": "sha256:0"}, metadata={}, files={},
                    packages={})
    with pytest.raises(HarnessError):
        sbom.write(tmp_path / "sbom", "img", snap)
    assert not list(tmp_path.rglob("*.json"))
    with pytest.raises(safepath.UnsafePath):
        safepath.inside(tmp_path, "..", "x")
