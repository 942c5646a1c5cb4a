"""Daemonless sources (`docker-archive:`, `oci:`, `oci-archive:`) against the engine.

The engine is the reference: for real images (the tiny base, debootstrap's minbase, a
multi-layer `docker build` image, foreign layers loaded with `docker load`, an arm64 image) the
baseline files `--update-baselines` writes through an archive are byte-identical to the ones
written through the engine. Then the platform choice in a multi-arch index, the end-to-end
gate with no engine at all, and every kind of bad archive as one error naming the thing.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import sys
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

import testimages
from harness.source.archive import open_archive, parse_platform
from harness.config import HarnessConfig, ImageSpec
from harness.source.createview import clean_path
from harness.source.engine import Engine
from harness.errors import ConfigError, HarnessError, ImageNotFound, SourceError
from harness.aspects import ASPECTS
from harness.gate import SnapshotStore, check_aspect
from harness.snapshot import take_snapshot
from harness.source.sources import open_source
from testimages import debian, layered, tiny

from conftest import tree_bytes

R, D, L, S, C, F = (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE,
                    tarfile.CHRTYPE, tarfile.FIFOTYPE)


def layer(*entries: tuple[str, bytes, dict[str, Any]]) -> bytes:
    """A layer tar from (name, type, attributes); `data` among the attributes is the content."""
    from testimages.hostile import tar_of

    return tar_of(list(entries))


def write_baselines(ref: str, root: Path, cache: Path, platform: str | None = None,
                    name: str = "img") -> Path:
    """`--update-baselines` of every aspect of one image into root, as the gate does."""
    # a run id of its own: the sweep below must not take a container another xdist worker
    # is reading (a shared id did, under `-n 2` without --dist loadfile)
    store = SnapshotStore(cache, f"daemonless-test-{uuid.uuid4().hex[:12]}", platform)
    try:
        for aspect in ASPECTS:
            result = check_aspect(ImageSpec(name, ref), aspect, store, root, HarnessConfig(),
                                  update=True)
            assert result.error is None, f"{ref} {aspect}: {result.error}"
    finally:
        store.cleanup()
    return root


class Baselines:
    """Baselines written per (image, source), each with its own snapshot cache (the cache is
    keyed by image id, equal through both sources: a shared one would prove nothing)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._done: dict[tuple[str, str | None], Path] = {}

    def of(self, ref: str, platform: str | None = None) -> Path:
        key = (ref, platform)
        if key not in self._done:
            n = len(self._done)
            self._done[key] = write_baselines(ref, self.base / f"b{n}", self.base / f"c{n}",
                                              platform)
        return self._done[key]


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> Baselines:
    """Baseline folders written through any source, each written once per module."""
    return Baselines(tmp_path_factory.mktemp("baselines"))


@pytest.fixture(scope="module")
def images(docker_engine: Any) -> dict[str, str]:
    """Engine tags: the tiny base, debootstrap's minbase and the multi-layer build."""
    tags = {"tiny": testimages.build(tiny.BASE), "minbase": testimages.build(debian.MINBASE)}
    tags["layered"] = layered.build_layered(tags["tiny"])
    return tags


@pytest.fixture(scope="module")
def archives(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Per image, its daemonless references: `docker save` output, an OCI layout made from
    it (gzip layers, config kept), the same layout as a tar, and skopeo's OCI layout."""
    out: dict[str, dict[str, str]] = {}
    for name, tag in images.items():
        work = tmp_path_factory.mktemp(name)
        saved = layered.save(tag, work / "saved.tar")
        layout = layered.write_index(work / "oci", [layered.oci_image(work / "oci", saved)],
                                     ref_name="latest")
        refs = {"docker-archive": f"docker-archive:{saved}", "oci": f"oci:{layout}",
                "oci-archive": f"oci-archive:{layered.tar_folder(layout, work / 'oci.tar')}"}
        if shutil.which("skopeo"):
            testimages.run(["skopeo", "copy", "-q", f"docker-daemon:{tag}", f"oci:{work / 'sk'}:x"])
            refs["skopeo"] = f"oci:{work / 'sk'}:x"
        out[name] = refs
    return out


@pytest.mark.parametrize("source", ["docker-archive", "oci", "oci-archive"])
@pytest.mark.parametrize("image", ["tiny", "minbase", "layered"])
def test_baselines_equal_the_engines(image: str, source: str, images: dict[str, str],
                                     archives: dict[str, dict[str, str]], baselines: Baselines) -> None:
    engine = tree_bytes(baselines.of(images[image]))
    daemonless = tree_bytes(baselines.of(archives[image][source]))
    assert sorted(engine) == sorted(daemonless) == [
        "img/x86_64/abi.json", "img/x86_64/files.json", "img/x86_64/metadata.json",
        "img/x86_64/packages.json"]
    for name in engine:
        assert daemonless[name] == engine[name], f"{name} differs through {source}"


@pytest.mark.parametrize("image", ["tiny", "layered"])
def test_skopeo_layout_differs_only_in_the_image_id(image: str, images: dict[str, str],
                                                    archives: dict[str, dict[str, str]],
                                                    baselines: Baselines) -> None:
    """skopeo rewrites the config (so the id changes); everything the gate judges is equal."""
    if "skopeo" not in archives[image]:
        pytest.skip("skopeo is not installed (scripts/setup installs it)")
    engine_id = docker_id(images[image])
    skopeo_id = open_archive(archives[image]["skopeo"]).inspect().image_id
    assert skopeo_id != engine_id
    engine = tree_bytes(baselines.of(images[image]))
    other = tree_bytes(baselines.of(archives[image]["skopeo"]))
    assert {k: v.replace(skopeo_id.encode(), engine_id.encode()) for k, v in other.items()} == engine


def docker_id(tag: str) -> str:
    """The engine's image id of a tag."""
    return testimages.run(["docker", "image", "inspect", "-f", "{{.Id}}", tag]).stdout.decode().strip()


def test_image_info_matches_the_engine(images: dict[str, str], archives: dict[str, dict[str, str]]) -> None:
    engine = Engine.connect().find_or_pull(images["layered"])
    for source in ("docker-archive", "oci", "oci-archive"):
        info = open_archive(archives["layered"][source]).inspect()
        assert (info.image_id, info.arch, info.os, info.variant) == (
            engine.image_id, engine.arch, engine.os, engine.variant)
        assert {k: info.config.get(k) for k in ("Env", "Cmd", "WorkingDir", "Labels", "User")} == {
            k: engine.config.get(k) or info.config.get(k) for k in ("Env", "Cmd", "WorkingDir", "Labels", "User")}


# -- foreign layers: what `docker build` never writes, applied by `docker load` ---------------

FOREIGN = [
    layer(("./", D, {"mode": 0o755}),
          ("etc", D, {"mode": 0o750, "uid": 5}),            # replaced by an implied 0755 folder
          ("proc", D, {"mode": 0o700}),                     # kept: the init layer adds none
          ("a/b/c", R, {"data": b"c"}),                     # parents implied
          ("h/zz", R, {"data": b"zz", "mode": 0o600}),
          ("h/aa", L, {"linkname": "h/zz", "mode": 0o755, "uid": 7}),  # not walk-first
          ("g/1", R, {"data": b"one", "mode": 0o640}),
          ("g/2", L, {"linkname": "g/1"}),
          ("g/3", L, {"linkname": "g/2"}),                  # a link to a link
          ("s", S, {"linkname": "target", "mode": 0o755}),  # symlinks are 0777 on Linux
          ("../../up", R, {"data": b"up"}),                 # clamped at the root
          ("neg", R, {"data": b"n", "uid": -1}),
          ("fifo", F, {"mode": 0o600}),
          ("devnull", C, {"devmajor": 1, "devminor": 3, "mode": 0o666}),
          ("sl", S, {"linkname": "x"}),
          ("sl2", L, {"linkname": "sl", "uid": 3}),         # a hard link to a symlink
          ("opt/x/gone", R, {"data": b"g"}),
          ("opt/x/stay", R, {"data": b"s"}),
          ("q/old", R, {"data": b"o"}),
          ("dev", S, {"linkname": "/tmp"}),                 # the init layer makes it a folder
          ("etc/hostname", R, {"data": b"img"}),
          ("w/f", R, {"data": b"w"})),
    layer(("g/.wh.1", R, {"data": b""}),                    # whites out a group's first entry
          ("opt/x/gone", C, {"devmajor": 0, "devminor": 0}),  # an overlay-style whiteout
          ("q/.wh..wh..opq", R, {"data": b""}),             # opaque, its folder implied
          ("q/new", R, {"data": b"n"}),
          ("etc/new", R, {"data": b"new"}),
          ("w", R, {"data": b"file over a folder"}),
          ("h/zz", R, {"data": b"upper zz"})),              # shadows the group's first entry
]


def test_foreign_layers_match_the_engine(docker_engine: Any, tmp_path: Path, baselines: Baselines) -> None:
    archive = layered.docker_archive(tmp_path / "foreign.tar", FOREIGN, "harness-test/foreign:1")
    tag = layered.load(archive)
    try:
        engine = tree_bytes(baselines.of(tag))
        assert tree_bytes(baselines.of(f"docker-archive:{archive}")) == engine
    finally:
        testimages.run(["docker", "rmi", "-f", tag])
    files = json.loads(engine["img/x86_64/files.json"])["records"]
    assert files["/h/aa"]["mode"] == "0755" and "link" not in files["/h/aa"]
    assert files["/g/3"]["link"] == "/g/2" and "/g/1" not in files
    assert files["/etc"] == {"type": "dir", "mode": "0755", "uid": 0, "gid": 0}
    assert files["/proc"]["mode"] == "0700" and files["/dev"]["type"] == "dir"
    assert "/up" in files and "/opt/x/gone" not in files and "/q/old" not in files
    assert files["/s"]["mode"] == "0777" and files["/neg"]["uid"] == 0


# -- multi-arch ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def multiarch(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An OCI layout whose index holds the tiny amd64 image and a busybox arm64 image (also
    loaded into the engine, which creates and exports a foreign-arch container unstarted)."""
    work = tmp_path_factory.mktemp("multiarch")
    arm = layered.docker_archive(work / "arm64.tar", [layered.tar_root(layered.arm64_root())],
                                 "harness-test/busybox-arm64:1", arch="arm64", variant="v8")
    amd = layered.save(images["tiny"], work / "amd64.tar")
    descs = [layered.oci_image(work / "oci", amd), layered.oci_image(work / "oci", arm)]
    layout = layered.write_index(work / "oci", descs, nested=True, ref_name="multi")
    return {"layout": layout, "arm_archive": arm, "arm_tag": layered.load(arm)}


def test_platform_picks_from_a_multiarch_index(multiarch: dict[str, Any], images: dict[str, str],
                                               baselines: Baselines) -> None:
    ref = f"oci:{multiarch['layout']}"
    assert open_archive(ref).inspect().arch == "x86_64"  # the host's platform by default
    arm = open_archive(ref, "linux/arm64").inspect()
    assert (arm.arch, arm.os, arm.variant) == ("aarch64", "linux", "v8")
    assert open_archive(f"{ref}:multi", "linux/arm64/v8").inspect().image_id == arm.image_id
    assert open_archive(ref, "linux/amd64").inspect().image_id == docker_id(images["tiny"])
    with pytest.raises(ImageNotFound, match=r"linux/s390x.*holds linux/amd64, linux/arm64"):
        open_archive(ref, "linux/s390x").inspect()

    root = baselines.of(ref, "linux/arm64")
    assert sorted(tree_bytes(root)) == [f"img/aarch64/{a}.json" for a in
                                        ("abi", "files", "metadata", "packages")]
    abi = json.loads((root / "img/aarch64/abi.json").read_text())
    assert abi["image"]["arch"] == "aarch64"
    # the arm64 image through the engine: the same bytes
    assert tree_bytes(baselines.of(multiarch["arm_tag"])) == tree_bytes(root)


# -- end to end, with no engine at all -----------------------------------------------------------

def test_gate_runs_with_no_engine(run_gate: Any, archives: dict[str, dict[str, str]],
                                  multiarch: dict[str, Any], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    b = tmp_path / "baselines"
    base, candidate = archives["tiny"]["docker-archive"], archives["layered"]["docker-archive"]

    first = run_gate({"x": base}, baselines=b)
    assert first.result.ret == 1 and not b.exists()
    first.result.stdout.fnmatch_lines(["*no baseline at*files.json*", "*--update-baselines*"])

    run_gate({"x": base}, "--update-baselines", baselines=b).result.assert_outcomes(passed=5)
    again = run_gate({"x": base}, baselines=b)
    again.result.assert_outcomes(passed=5)
    assert again.image("x")["verdict"] == "pass" and again.image("x")["arch"] == "x86_64"

    gate = run_gate({"x": candidate}, baselines=b)
    assert gate.result.ret == 1
    changes = {(c["kind"], c["subject"]): c["verdict"] for c in gate.image("x")["changes"]}
    assert changes[("setuid-added", "/usr/bin/hello-demo")] == "break"
    assert changes[("package-files-missing", "demo-data")] == "break"  # a whiteout seen
    assert ("file-removed", "/usr/share/demo/data.txt") in changes
    assert ("file-removed", "/opt/demo/old/a") not in changes  # lower content of an opaque dir
    assert "Traceback" not in gate.result.stdout.str() + gate.result.stderr.str()

    arm = run_gate({"m": f"oci:{multiarch['layout']}"}, "--platform=linux/arm64",
                   "--update-baselines", baselines=b)
    arm.result.assert_outcomes(passed=5)
    assert arm.image("m")["arch"] == "aarch64" and (b / "m" / "aarch64" / "files.json").is_file()


def test_open_source_never_connects_for_an_archive(archives: dict[str, dict[str, str]]) -> None:
    def no_engine() -> Engine:
        raise AssertionError("the engine was asked for")

    source = open_source(archives["tiny"]["oci"], no_engine)
    assert source.inspect().arch == "x86_64"


# -- compression -----------------------------------------------------------------------------

def _tiny_layers(archive: str) -> list[bytes]:
    with tarfile.open(archive.partition(":")[2]) as tar:
        entry = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        return [tar.extractfile(n).read() for n in entry["Layers"]]  # type: ignore[union-attr]


@pytest.mark.parametrize("compression", ["gzip", "bz2", "xz", "zstd"])
def test_compressed_layers_read_the_same(compression: str, archives: dict[str, dict[str, str]],
                                         tmp_path: Path) -> None:
    """docker-archive layers compressed as `docker load` accepts them; the same files."""
    if compression == "zstd":
        pytest.importorskip("zstandard")
    plain = _tiny_layers(archives["tiny"]["docker-archive"])
    packed = [layered.compress(data, compression) for data in plain]
    ref = f"docker-archive:{layered.docker_archive(tmp_path / 'c.tar', packed, 'c:1', diff_of=plain)}"
    want = open_archive(f"docker-archive:{layered.docker_archive(tmp_path / 'p.tar', plain, 'p:1')}")
    assert snapshot_of(ref).files == snapshot_of(want).files


def snapshot_of(source: Any) -> Any:
    """Take a snapshot through a source or a daemonless reference."""
    if isinstance(source, str):
        source = open_archive(source)
    with source.rootfs("test") as stream:
        return take_snapshot(source.inspect(), stream)


def test_zstd_without_the_module_names_the_layer(archives: dict[str, dict[str, str]], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("zstandard")
    plain = _tiny_layers(archives["tiny"]["docker-archive"])
    ref = (f"docker-archive:{layered.docker_archive(tmp_path / 'z.tar', [layered.compress(plain[0], 'zstd')], 'z:1', diff_of=plain)}")
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(SourceError, match=r"layer .*/layer.tar is zstd-compressed.*zstandard"):
        snapshot_of(ref)


# -- bad input: one error naming the thing ---------------------------------------------------

def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFound, match="no such file"):
        open_archive(f"docker-archive:{tmp_path}/absent.tar")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(SourceError, match="junk.tar: not an uncompressed tar"):
        open_archive(f"docker-archive:{junk}").inspect()
    gz = tmp_path / "saved.tar.gz"
    gz.write_bytes(gzip.compress(layer(("a", R, {"data": b"a"}))))
    with pytest.raises(SourceError, match="not an uncompressed tar"):
        open_archive(f"docker-archive:{gz}")
    no_manifest = tmp_path / "plain.tar"
    no_manifest.write_bytes(layer(("a", R, {"data": b"a"})))
    with pytest.raises(SourceError, match="no manifest.json"):
        open_archive(f"docker-archive:{no_manifest}").inspect()
    with pytest.raises(SourceError, match="no index.json"):
        open_archive(f"oci:{tmp_path}").inspect()
    with pytest.raises(ConfigError, match="OS/ARCH"):
        open_archive(f"oci:{tmp_path}", "arm64")


def _archive_with(tmp_path: Path, manifest: bytes, members: dict[str, bytes]) -> str:
    out = tmp_path / "a.tar"
    with tarfile.open(out, "w") as tar:
        for name, data in {"manifest.json": manifest, **members}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return f"docker-archive:{out}"


def _j(value: Any) -> bytes:
    return json.dumps(value).encode()


AMD64 = {"os": "linux", "architecture": "amd64"}
NO_LAYERS = {"rootfs": {"type": "layers", "diff_ids": []}}


@pytest.mark.parametrize("manifest, members, match", [
    (b"not json", {}, "manifest.json is not valid JSON"),
    (_j([]), {}, "lists no image"),
    (_j([{"Config": "c.json"}]), {}, "without Config/Layers"),
    (_j([{"Config": "c.json", "Layers": []}]), {}, "c.json is missing"),
    (_j([{"Config": "c.json", "Layers": []}]), {"c.json": b"[1]"}, "not a JSON object"),
    (_j([{"Config": "c.json", "Layers": []}]), {"c.json": _j({**AMD64, **NO_LAYERS, "config": {"Env": 5}})},
     "Env is not a list of strings"),
    (_j([{"Config": "c.json", "Layers": []}]),
     {"c.json": _j({**AMD64, **NO_LAYERS, "config": {"Labels": {"a": 1}}})}, "Labels is not a dict of strings"),
    (_j([{"Config": "c.json", "Layers": ["l.tar"]}]),
     {"c.json": _j({**AMD64, "rootfs": {"diff_ids": []}})}, "diff_ids"),
    (_j([{"Config": "c.json", "Layers": ["l.tar"]}]), {"c.json": _j(AMD64)}, "no rootfs.diff_ids"),
    (_j([{"Config": "c.json", "Layers": ["l.tar"]}]),
     {"c.json": _j({**AMD64, "rootfs": {"diff_ids": ["sha256:" + "0" * 64]}})}, "l.tar is missing"),
], ids=["json", "empty", "fields", "config-missing", "config-type", "config-field", "labels",
        "diff-ids", "no-diff-ids", "layer-missing"])
def test_bad_manifests_and_configs(tmp_path: Path, manifest: bytes, members: dict[str, bytes],
                                   match: str) -> None:
    with pytest.raises(SourceError, match=match):
        snapshot_of(_archive_with(tmp_path, manifest, members))


def test_damaged_layers_name_the_layer(archives: dict[str, dict[str, str]], tmp_path: Path) -> None:
    saved = Path(archives["tiny"]["docker-archive"].partition(":")[2])
    # truncated: the outer tar ends inside the layer
    short = tmp_path / "short.tar"
    short.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(SourceError, match=r"short.tar.*truncated|short.tar: not an uncompressed"):
        snapshot_of(f"docker-archive:{short}")
    # one byte flipped inside a file of the layer: the diff id check fails the stream at the
    # layer's end, and no snapshot is taken
    plain = _tiny_layers(archives["tiny"]["docker-archive"])
    damaged = bytearray(plain[0])
    damaged[len(damaged) // 2] ^= 0xFF
    ref = f"docker-archive:{layered.docker_archive(tmp_path / 'd.tar', [bytes(damaged)], 'd:1', diff_of=plain)}"
    with pytest.raises(SourceError, match=r"layer .*layer.tar does not match its diff id"):
        snapshot_of(ref)
    # a gzip blob cut short in an OCI layout
    layout = Path(archives["tiny"]["oci"].partition(":")[2])
    copy = tmp_path / "oci"
    shutil.copytree(layout, copy)
    blob = max((copy / "blobs/sha256").iterdir(), key=lambda p: p.stat().st_size)
    blob.write_bytes(blob.read_bytes()[:-100])
    with pytest.raises(SourceError, match=rf"layer blobs/sha256/{blob.name}: gzip stream is truncated"):
        snapshot_of(f"oci:{copy}")


def test_a_layer_twice_holding_a_path_is_refused(tmp_path: Path) -> None:
    twice = layer(("a", R, {"data": b"1"}), ("a", R, {"data": b"2"}))
    ref = f"docker-archive:{layered.docker_archive(tmp_path / 't.tar', [twice], 't:1')}"
    with pytest.raises(SourceError, match="holds '/a' twice"):
        snapshot_of(ref)


def test_blob_names_cannot_leave_the_layout(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps([{"Config": "../secret", "Layers": []}]))
    with pytest.raises(SourceError, match="points outside"):
        open_archive(f"docker-archive:{folder}").inspect()
    (folder / "index.json").write_text(json.dumps({"manifests": [{"digest": "sha256:../../x"}]}))
    with pytest.raises(SourceError, match="malformed digest"):
        open_archive(f"oci:{folder}").inspect()


def test_selectors_and_platform_parsing(archives: dict[str, dict[str, str]]) -> None:
    saved = archives["tiny"]["docker-archive"]
    tag = open_archive(saved).inspect()
    with tarfile.open(saved.partition(":")[2]) as tar:
        repo_tag = json.load(tar.extractfile("manifest.json"))[0]["RepoTags"][0]  # type: ignore[arg-type]
    assert open_archive(f"{saved}:{repo_tag}").inspect().image_id == tag.image_id
    assert open_archive(f"{saved}:@0").inspect().image_id == tag.image_id
    with pytest.raises(ImageNotFound, match="no image 'nope:1'"):
        open_archive(f"{saved}:nope:1").inspect()
    with pytest.raises(ImageNotFound, match="holds linux/amd64"):
        open_archive(saved, "linux/arm64").inspect()
    assert parse_platform("linux/arm64/v8") == ("linux", "arm64", None)
    assert parse_platform("linux/arm/v7") == ("linux", "arm", "v7")
    assert clean_path("../../etc/passwd") == "/etc/passwd" == clean_path("/./etc//x/../passwd")


def test_errors_are_harness_errors() -> None:
    """Everything above surfaces as the one hierarchy the gate turns into a result's error."""
    assert issubclass(SourceError, HarnessError) and issubclass(ImageNotFound, HarnessError)


def test_a_compressed_layer_is_decompressed_once(archives: dict[str, dict[str, str]],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The index pass keeps the decompressed tar for the emitting pass; past the size limit
    the layer is decompressed again, to the same snapshot."""
    from harness.source import layermerge

    opened: list[str] = []
    inflate = layermerge._Inflate.__init__

    def counting(self: Any, raw: Any, what: str) -> None:
        opened.append(what)
        inflate(self, raw, what)

    monkeypatch.setattr(layermerge._Inflate, "__init__", counting)
    ref = archives["layered"]["oci"]
    kept = snapshot_of(ref)
    layers = set(opened)
    assert len(layers) > 1 and sorted(opened) == sorted(layers)
    opened.clear()
    monkeypatch.setattr(layermerge, "MAX_SPILL", 0)
    again = snapshot_of(ref)
    assert sorted(opened) == sorted([*layers, *layers])
    assert again.files == kept.files and again.abi == kept.abi
    # a temporary folder that cannot be written: decompressed twice, the same snapshot
    opened.clear()
    monkeypatch.setattr(layermerge, "MAX_SPILL", 8 << 30)
    monkeypatch.setattr(layermerge.tempfile, "gettempdir", lambda: "/nonexistent/tmp")
    unkept = snapshot_of(ref)
    assert sorted(opened) == sorted([*layers, *layers])
    assert unkept.files == kept.files


def test_gzip_layers_read_the_same_through_zlib(archives: dict[str, dict[str, str]],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """ISA-L inflates where it is installed; the standard library's zlib, its fallback,
    gives the same snapshot."""
    import zlib

    from harness.source import layermerge

    ref = archives["layered"]["oci"]
    fast = snapshot_of(ref)
    monkeypatch.setattr(layermerge, "_inflater", zlib)
    plain = snapshot_of(ref)
    assert plain.files == fast.files and plain.packages == fast.packages
