"""Hostile images: the gate survives every one, with a clean snapshot or a recorded parse
error, never a traceback.

Through the engine and the daemonless sources: non-UTF-8 names, absolute, escaping and
looping symlinks, a self-including loader configuration, ELF-looking garbage, garbage package
databases and account files, names that climb out of the root, 2,000-level folders; and at
scale, a million files (a tar made on the fly, never stored) and a 10 GiB sparse file, each
with its time and peak RSS measured in a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

import testimages
from harness.config import HarnessConfig, ImageSpec
from harness.aspects import ASPECTS
from harness.gate import SnapshotStore, check_aspect
from harness.snapshot.walk import walk
from testimages import hostile, layered

from conftest import tree_bytes

REPO = Path(__file__).resolve().parent.parent
MILLION = int(os.environ.get("HARNESS_MILLION_FILES", "1000000"))


def gate_all(ref: str, root: Path, cache: Path, update: bool) -> dict[str, Any]:
    """Every aspect of one image through the gate; HarnessErrors become results, anything
    else would escape here as the traceback this suite forbids."""
    store = SnapshotStore(cache, f"hostile-test-{uuid.uuid4().hex[:12]}")
    try:
        return {aspect: check_aspect(ImageSpec("h", ref), aspect, store, root, HarnessConfig(),
                                     update=update) for aspect in ASPECTS}
    finally:
        store.cleanup()


def measured(code: str, *args: str, timeout: int = 900) -> dict[str, Any]:
    """Run a snippet in a fresh interpreter; it prints one JSON line, to which the peak RSS
    of the process and of its children (the ELF parser's workers) is added."""
    prologue = textwrap.dedent("""\
        import json, resource, sys, time
        def done(**figures):
            usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            print(json.dumps({**figures, "rss_mb": usage // 1024, "children_rss_mb": children // 1024}))
        """)
    proc = subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def hostile_tag(docker_engine: Any) -> str:
    """The hostile image, imported into the engine."""
    return testimages.build(hostile.HOSTILE)


def test_hostile_image_through_engine_and_archive(hostile_tag: str, tmp_path: Path) -> None:
    saved = layered.save(hostile_tag, tmp_path / "hostile.tar")
    results = {}
    for name, ref in (("engine", hostile_tag), ("archive", f"docker-archive:{saved}")):
        root = tmp_path / name
        results[name] = gate_all(ref, root, tmp_path / f"cache-{name}", update=True)
        again = gate_all(ref, root, tmp_path / f"cache-{name}", update=False)
        for aspect, result in again.items():
            if aspect == "packages":  # every database is garbage: an error naming each file
                assert result.verdict == "error"
                for path in ("/var/lib/dpkg/status", "/var/lib/rpm/rpmdb.sqlite", "/lib/apk/db/installed"):
                    assert path in (result.error or "")
            else:
                assert result.error is None, (aspect, result.error)
    assert tree_bytes(tmp_path / "engine") == tree_bytes(tmp_path / "archive")

    files = json.loads((tmp_path / "engine/h/x86_64/files.json").read_text(encoding="ascii"))["records"]
    assert f"/{hostile.NON_UTF8}" in files and os.fsdecode(b"/opt/\xff\xfe-dir") in files
    assert files["/etc/escape"]["target"] == "../../../../../../etc/passwd"
    assert files["/etc/loop-a"]["target"] == "loop-b" and files["/etc/self"]["target"] == "self"
    assert files["/etc/abs-shadow"]["uid"] == 4294967294
    assert "/deep" + "/d" * 200 + "/leaf" in files


def test_hostile_image_end_to_end(run_gate: Any, hostile_tag: str, tmp_path: Path) -> None:
    b = tmp_path / "b"
    update = run_gate({"h": hostile_tag}, "--update-baselines", baselines=b)
    gate = run_gate({"h": hostile_tag}, baselines=b)
    for run in (update, gate):
        text = run.result.stdout.str() + run.result.stderr.str()
        assert "Traceback" not in text and "INTERNALERROR" not in text
        assert run.result.ret == 1  # the packages aspect is an error, the rest judged
    outcomes = gate.result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 5
    assert gate.image("h")["verdict"] in ("error", "fail")


def test_names_climbing_out_of_the_root(docker_engine: Any, tmp_path: Path) -> None:
    """The walk keeps such names as they are (it never resolves `..`); the engine applies
    layers in a chroot, so `..` stops at the root, and the daemonless merge does the same."""
    stream = hostile.climbing_tar()
    raw = walk(io.BytesIO(stream), [])
    assert "/../../etc/passwd" in raw and "/a/../../../b" in raw
    archive = layered.docker_archive(tmp_path / "climb.tar", [stream], "harness-test/climb:1")
    tag = layered.load(archive)
    try:
        engine = gate_all(tag, tmp_path / "e", tmp_path / "ce", update=True)
        daemonless = gate_all(f"docker-archive:{archive}", tmp_path / "d", tmp_path / "cd", update=True)
    finally:
        testimages.run(["docker", "rmi", "-f", tag])
    assert all(r.error is None for r in [*engine.values(), *daemonless.values()] if r.aspect != "packages")
    assert tree_bytes(tmp_path / "e") == tree_bytes(tmp_path / "d")
    files = json.loads((tmp_path / "d/h/x86_64/files.json").read_text())["records"]
    assert files["/etc/passwd"]["size"] == 21 and "/b" in files and "/c" in files
    assert files["/hard-escape"]["link"] == "/b"


def test_two_thousand_levels(tmp_path: Path) -> None:
    """Deeper than the engine can store (it fails with `file name too long`): the walk and
    the daemonless source read it, and its baseline is written."""
    data = hostile.deep_tar(2000)
    leaf = "/deep" + "/d" * 2000 + "/leaf"
    assert walk(io.BytesIO(data), [])[leaf]["size"] == 5
    archive = layered.docker_archive(tmp_path / "deep.tar", [data], "harness-test/deep:1")
    results = gate_all(f"docker-archive:{archive}", tmp_path / "b", tmp_path / "c", update=True)
    assert all(r.error is None for r in results.values() if r.aspect != "packages")
    files = json.loads((tmp_path / "b/h/x86_64/files.json").read_text())["records"]
    assert files[leaf]["sha256"] and len(files) == 2002 + 4  # + /dev /etc /proc /sys


@pytest.mark.exclusive  # a memory bound means something only on a machine not shared with other tests
def test_a_million_files(record_property: Any) -> None:
    """A million-file tar made on the fly through the whole snapshot: time and peak RSS."""
    figures = measured("""
        import io
        from harness.rootfs.image import ImageInfo
        from harness.snapshot import take_snapshot
        from testimages.hostile import PartsStream, million_files
        n = int(sys.argv[1])
        info = ImageInfo("million", "sha256:" + "0" * 64, "x86_64", "linux", None, {})
        start = time.perf_counter()
        snap = take_snapshot(info, io.BufferedReader(PartsStream(million_files(n)), 1 << 20))
        done(files=len(snap.files), seconds=round(time.perf_counter() - start, 1))
        """, str(MILLION))
    record_property("million_files", figures)
    print("million files:", figures)
    assert figures["files"] == MILLION + MILLION // 1000
    # the file records themselves are the memory (about 0.6 KB each); nothing else grows
    assert figures["rss_mb"] < 300 + MILLION // 1000


@pytest.mark.exclusive  # a memory bound means something only on a machine not shared with other tests
@pytest.mark.skipif(bool(os.environ.get("HARNESS_SKIP_SPARSE")), reason="HARNESS_SKIP_SPARSE is set")
def test_sparse_ten_gib_file(docker_engine: Any, record_property: Any) -> None:
    """The gate hashes every byte of a 10 GiB file through the engine in bounded memory."""
    tag = hostile.build_sparse()
    try:
        figures = measured("""
            from harness.source.engine import Engine
            from harness.source.sources import open_source
            from harness.snapshot import take_snapshot
            source = open_source(sys.argv[1], Engine.connect)
            info = source.inspect()
            start = time.perf_counter()
            with source.rootfs("hostile-sparse") as stream:
                snap = take_snapshot(info, stream)
            done(record=snap.files["/data/sparse.img"], seconds=round(time.perf_counter() - start, 1))
            """, tag, timeout=1800)
    finally:
        testimages.run(["docker", "rmi", "-f", tag])  # the engine stores the zeros: 10 GiB
    record_property("sparse_10gib", figures)
    print("sparse file:", figures)
    assert figures["record"]["size"] == hostile.SPARSE_GIB << 30
    if hostile.SPARSE_GIB in hostile.SPARSE_SHA256:
        assert figures["record"]["sha256"] == hostile.SPARSE_SHA256[hostile.SPARSE_GIB]
    assert figures["rss_mb"] < 300 and figures["children_rss_mb"] < 300
