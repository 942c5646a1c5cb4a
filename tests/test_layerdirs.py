"""The engine's overlay2 layer folders read in place (`--compat-read=layers`) against the engine.

The export is the reference: for real images (the tiny base, debootstrap's minbase, the
multi-layer `docker build` image, the hostile image, layers loaded with `docker load` that hold
whiteouts, opaque folders, hard links, names climbing out of the root) the baseline files
written through the layer folders are byte-identical to those written through the export.
Then the merge rules on layer folders made by hand (whiteout devices, opaque xattrs, `.wh.`
files, hard links, a sparse file) against `harness.source.archive` merging the same layers as tars,
the order of the export's walk, and every failure as one SourceError naming the thing.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import testimages
from harness.source import layerdirs
from harness.source.archive import open_archive
from harness.source.engine import RUN_LABEL, Engine
from harness.errors import SourceError
from harness.source.layerdirs import LayerDirsReader
from harness.source.layermerge import INIT_DIRS, INIT_PATHS
from harness.snapshot.walk import BACKGROUND_MIN, walk
from harness.source.sources import EngineSource
from testimages import debian, hostile, layered, tiny

from conftest import write_baselines as update_baselines

R, D, L, S = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="whiteout devices and trusted xattrs need root")


def write_baselines(ref: str, root: Path, cache: Path, read: str) -> dict[str, bytes]:
    """conftest's, where the hostile image's packages aspect is an error by design."""
    hostile_image = ref.startswith(hostile.HOSTILE.tag.partition(":")[0])
    return update_baselines(ref, root, cache, read, ("packages",) if hostile_image else ())


def both_ways(ref: str, tmp: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The baselines of one image through its layer folders and through the export."""
    return (write_baselines(ref, tmp / "layers", tmp / "cache-layers", "layers"),
            write_baselines(ref, tmp / "export", tmp / "cache-export", "export"))


# -- real images through the engine ------------------------------------------------------------

@pytest.fixture(scope="module")
def images(docker_engine: Any) -> dict[str, str]:
    """Engine tags: the tiny base, debootstrap's minbase, the multi-layer build, the hostile
    image (non-UTF-8 names, 200-level folders, looping symlinks, a setuid file)."""
    tags = {"tiny": testimages.build(tiny.BASE), "minbase": testimages.build(debian.MINBASE),
            "hostile": testimages.build(hostile.HOSTILE)}
    tags["layered"] = layered.build_layered(tags["tiny"])
    return tags


@pytest.mark.docker
def test_this_engine_gives_its_layer_folders(docker_engine: Engine, images: dict[str, str]) -> None:
    """The container's mount, top first: its writable layer, its init layer, the image's."""
    info = docker_engine.find_or_pull(images["layered"])
    image = docker_engine.layer_dirs(info.image_id)
    assert image is not None, docker_engine.layer_dirs_reason
    with docker_engine.created(info.image_id, f"layerdirs-test-{os.getpid()}") as cid:
        mount = docker_engine.layer_dirs(info.image_id, cid)
        assert mount is not None, docker_engine.layer_dirs_reason
    assert mount[2:] == image and len(image) == 6  # the tiny base and five RUN layers
    assert mount[1].parent.name.endswith("-init")


@pytest.mark.docker
@pytest.mark.parametrize("image", ["tiny", "minbase", "layered", "hostile"])
def test_baselines_equal_the_export(image: str, images: dict[str, str], tmp_path: Path) -> None:
    through_layers, through_export = both_ways(images[image], tmp_path)
    aspects = ("abi", "files", "metadata") + (() if image == "hostile" else ("packages",))
    assert sorted(through_layers) == sorted(through_export) == [
        f"img/x86_64/{aspect}.json" for aspect in aspects]  # the hostile databases are garbage
    for name, data in through_export.items():
        assert through_layers[name] == data, f"{image}: {name} differs through the layers"
    if image == "hostile":
        files = json.loads(through_layers["img/x86_64/files.json"])["records"]
        assert f"/{hostile.NON_UTF8}" in files and "/deep" + "/d" * 200 + "/leaf" in files
        assert files["/usr/bin/absurd"]["mode"] == "4755"
        assert files["/etc/loop-a"]["target"] == "loop-b"


def _xattr_dir(name: str, value: str) -> tuple[str, bytes, dict[str, Any]]:
    return (name, D, {"mode": 0o755,
                      "pax_headers": {"SCHILY.xattr.trusted.overlay.opaque": value}})


#: layers `docker load` applies, beyond what `docker build` writes (test_daemonless's foreign
#: layers and more): the engine turns `.wh.` names into whiteout devices and opaque xattrs
LOADED = [
    hostile.tar_of([
        ("./", D, {"mode": 0o755}),
        ("etc", D, {"mode": 0o750, "uid": 5}), ("proc", D, {"mode": 0o700}),
        ("h/zz", R, {"data": b"zz", "mode": 0o600}),
        ("h/aa", L, {"linkname": "h/zz", "mode": 0o755, "uid": 7}),
        ("g/1", R, {"data": b"one", "mode": 0o640}), ("g/2", L, {"linkname": "g/1"}),
        ("g/3", L, {"linkname": "g/2"}),
        ("sl", S, {"linkname": "x"}), ("sl2", L, {"linkname": "sl", "uid": 3}),
        ("../../up", R, {"data": b"up"}), ("neg", R, {"data": b"n", "uid": -1}),
        ("opt/x/gone", R, {"data": b"g"}), ("opt/x/stay", R, {"data": b"s"}),
        ("q/old", R, {"data": b"o"}), ("m/low", R, {"data": b"low"}),
        ("t/old", R, {"data": b"t"}), ("u/old", R, {"data": b"u"}),
        ("dev", S, {"linkname": "/tmp"}), ("etc/hostname", R, {"data": b"img"}),
        ("w/f", R, {"data": b"w"})]),
    hostile.tar_of([
        ("g/.wh.1", R, {"data": b""}), ("opt/x/gone", tarfile.CHRTYPE, {}),
        ("q/.wh..wh..opq", R, {"data": b""}), ("q/new", R, {"data": b"n"}),
        ("m/.wh..wh..opq", R, {"data": b""}), ("m/mid", R, {"data": b"mid"}),
        _xattr_dir("t", "y"), ("t/new", R, {"data": b"t"}),   # opaque through a PAX xattr
        _xattr_dir("u", "n"), ("u/new", R, {"data": b"u"}),   # not "y": not opaque
        ("etc/new", R, {"data": b"new"}), ("w", R, {"data": b"file over a folder"}),
        ("h/zz", R, {"data": b"upper zz"})]),
    hostile.tar_of([("m/top", R, {"data": b"top"}), ("m", D, {"mode": 0o711}),
                    ("root-opaque/.wh..wh..opq", R, {"data": b""}),
                    (".wh..wh..opq", R, {"data": b""})]),  # the kernel ignores it at the root
]


@pytest.fixture(scope="module")
def loaded(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Images `docker load` made: LOADED (with a WORKDIR the image lacks: the engine makes
    it at create) and the names of hostile.climbing_tar (clamped at the root by the engine)."""
    work = tmp_path_factory.mktemp("loaded")
    out: dict[str, Any] = {}
    for name, layers, config in (
            ("loaded", LOADED, {"Cmd": ["/bin/sh"], "WorkingDir": "/no/such/dir"}),
            ("climbing", [hostile.climbing_tar()], None)):
        archive = layered.docker_archive(work / f"{name}.tar", layers,
                                         f"harness-test/layerdirs-{name}:{os.getpid()}",
                                         config=config)
        out[name], out[f"{name}-archive"] = layered.load(archive), archive
    yield out
    testimages.run(["docker", "rmi", "-f", out["loaded"], out["climbing"]])


@pytest.mark.docker
@pytest.mark.parametrize("image", ["loaded", "climbing"])
def test_loaded_layers_equal_the_export(image: str, loaded: dict[str, Any], tmp_path: Path) -> None:
    through_layers, through_export = both_ways(loaded[image], tmp_path)
    assert through_layers == through_export
    files = json.loads(through_layers["img/x86_64/files.json"])["records"]
    if image == "climbing":
        assert files["/hard-escape"]["link"] == "/b" and "/etc/passwd" in files
        return
    assert files["/h/aa"]["mode"] == "0755" and "link" not in files["/h/aa"]
    assert files["/g/3"]["link"] == "/g/2" and "/g/1" not in files
    assert files["/sl2"]["link"] == "/sl" and files["/dev"]["type"] == "dir"
    assert files["/etc"]["mode"] == "0755" and files["/proc"]["mode"] == "0700"
    assert "/opt/x/gone" not in files and "/q/old" not in files and "/q/new" in files
    assert "/m/low" not in files and {"/m/mid", "/m/top"} <= set(files)
    assert files["/m"]["mode"] == "0711"
    assert "/t/old" not in files and "/u/old" in files  # the xattr, as the engine reads it
    assert "/up" in files and files["/neg"]["uid"] == 0
    assert files["/no/such/dir"] == {"type": "dir", "mode": "0755", "uid": 0, "gid": 0}


@pytest.mark.docker
def test_the_image_is_pinned_while_its_layers_are_read(docker_engine: Engine, tmp_path: Path) -> None:
    """`docker rmi -f` of the image once its read began: the created container keeps its
    layer folders on disk until the read ends."""
    unique = f"{os.getpid()}-{time.time_ns()}".encode()
    layers = [hostile.tar_of([("etc/unique", R, {"data": unique}), ("bin/x", R, {"data": b"x"})]),
              hostile.tar_of([("etc/more", R, {"data": b"more"})])]
    tag = layered.load(layered.docker_archive(tmp_path / "pinned.tar", layers,
                                              f"harness-test/layerdirs-pinned:{os.getpid()}"))
    source = EngineSource(docker_engine, tag, read="layers")
    with source.rootfs(f"layerdirs-pin-{os.getpid()}") as rootfs:
        assert isinstance(rootfs, LayerDirsReader)
        testimages.run(["docker", "rmi", "-f", tag])
        files = walk(rootfs, [])
    assert subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode
    assert {"/etc/unique", "/etc/more", "/bin/x"} <= set(files)
    assert files["/etc/unique"]["size"] == len(unique)


# -- the choice of reader, and failures ---------------------------------------------------------

@pytest.mark.docker
def test_layers_mode_says_why_it_cannot_read(docker_engine: Engine, images: dict[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = f"layerdirs-why-{os.getpid()}"

    def unreadable(image_id: str, container: str | None = None) -> None:
        docker_engine.layer_dirs_reason = "the engine's storage driver is 'btrfs', not overlay2"
        return None

    monkeypatch.setattr(docker_engine, "layer_dirs", unreadable)
    with pytest.raises(SourceError, match=r"storage driver is 'btrfs'.*--compat-read=export"):
        with EngineSource(docker_engine, images["tiny"], read="layers").rootfs(run_id):
            pass
    with EngineSource(docker_engine, images["tiny"], read="auto").rootfs(run_id) as rootfs:
        assert not isinstance(rootfs, LayerDirsReader)  # the export instead
        assert "/bin/busybox" in walk(rootfs, [])
    monkeypatch.undo()
    with EngineSource(docker_engine, images["tiny"], read="auto").rootfs(run_id) as rootfs:
        assert isinstance(rootfs, LayerDirsReader)
    left = docker_engine.client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    assert left == []


@pytest.mark.docker
def test_layer_dirs_reasons(docker_engine: Engine, images: dict[str, str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    image_id = docker_engine.find_or_pull(images["tiny"]).image_id
    monkeypatch.setattr(docker_engine.client.api, "base_url", "https://10.0.0.1:2376")
    assert docker_engine.layer_dirs(image_id) is None
    assert "not local" in docker_engine.layer_dirs_reason
    monkeypatch.undo()
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    assert docker_engine.layer_dirs(image_id) is None
    assert docker_engine.layer_dirs_reason.startswith("no permission to read /")
    monkeypatch.undo()
    assert docker_engine.layer_dirs(image_id) is not None and not docker_engine.layer_dirs_reason


# -- layer folders made by hand, against harness.source.archive -----------------------------------------

def _write(path: Path, data: bytes, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chown(path, *owner)
    os.chmod(path, mode)  # after chown, which clears setuid
    return path


def _whiteout(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def _opaque(path: Path, ns: str = "trusted") -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.setxattr(path, f"{ns}.overlay.opaque", b"y")


def hand_layers(base: Path) -> list[Path]:
    """Three layer folders, bottom first, as the engine's unpacker leaves them."""
    low, mid, top = base / "0", base / "1", base / "2"
    _write(low / "etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
    os.chmod(low / "etc", 0o750)
    _write(low / "opt/x/gone", b"g")
    _write(low / "opt/x/stay", b"s")
    _write(low / "q/old", b"o")
    _write(low / "m/low", b"low")
    _write(low / "g/1", b"one", 0o640)
    os.link(low / "g/1", low / "g/2")
    os.link(low / "g/1", low / "g/3")
    _write(low / "h/zz", b"zz", 0o600, (7, 8))
    os.link(low / "h/zz", low / "h/aa")
    os.symlink("target", low / "s")
    os.symlink("loop", low / "loop")
    os.link(low / "s", low / "s-hard", follow_symlinks=False)
    os.mkfifo(low / "fifo", 0o600)
    os.mknod(low / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(low / "loop0", stat.S_IFBLK | 0o660, os.makedev(7, 0))
    os.chmod(low / "loop0", 0o660)  # mknod's mode goes through the umask
    _write(low / "w/f", b"w")
    _write(low / "usr/bin/su", b"\x7fELF not really", 0o4755)
    (low / "tmp").mkdir()
    os.chmod(low / "tmp", 0o1777)
    _write(low / os.fsdecode(b"caf\xe9-\xff"), b"latin-1 name", 0o644, (1000, 1000))
    _write(low / "f2d", b"a file, then a folder")
    with open(low / "sparse", "wb") as sparse:  # 3 MiB of holes then data: spans the buffer
        sparse.truncate(3 << 20)
        sparse.seek((3 << 20) - 4)
        sparse.write(b"tail")
    os.symlink("/tmp", low / "dev")
    _write(low / "etc/hostname", b"img")
    _write(low / "rmdir/inner", b"i")

    _whiteout(mid / "g/1")
    _write(mid / "opt/x/.wh.gone", b"")       # a tar-style whiteout, read as harness.source.archive does
    _opaque(mid / "q")
    _write(mid / "q/new", b"n")
    _opaque(mid / "m")
    _write(mid / "m/mid", b"mid")
    _write(mid / "w", b"file over a folder")
    _write(mid / "h/zz", b"upper zz")
    _write(mid / "f2d/inner", b"inner")
    _whiteout(mid / "rmdir")
    _write(mid / "etc/new", b"new")
    os.chmod(mid / "etc", 0o700)

    _write(top / "m/top", b"top")
    os.chmod(top / "m", 0o711)
    _write(top / "a-b", b"sorted after a/ and its content")
    _write(top / "a/x", b"x")
    return [low, mid, top]


def as_tar(folder: Path) -> bytes:
    """A layer folder as the engine's overlay diff writes it: opaque xattrs as `.wh..wh..opq`,
    every non-folder with more than one link grouped by inode (tarfile groups files only)."""
    out = Path(str(folder) + ".tar")
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(dirs + files):
                path = Path(root, name)
                arcname = str(path.relative_to(folder))
                info = tar.gettarinfo(path, arcname)
                st = path.lstat()
                first = seen.setdefault((st.st_dev, st.st_ino), arcname)
                if not info.isdir() and st.st_nlink > 1 and first != arcname:
                    info.type, info.linkname, info.size = L, first, 0
                if info.isreg():
                    with open(path, "rb") as data:
                        tar.addfile(info, data)
                else:
                    tar.addfile(info)
                if info.isdir() and "trusted.overlay.opaque" in os.listxattr(path):
                    tar.addfile(tarfile.TarInfo(arcname + "/.wh..wh..opq"))
    return out.read_bytes()


@needs_root
def test_hand_made_layers_merge_as_the_archive_merge(tmp_path: Path) -> None:
    bottom_first = hand_layers(tmp_path)
    merged = walk(LayerDirsReader(bottom_first[::-1], "hand"), [])
    archive = layered.docker_archive(tmp_path / "hand.tar", [as_tar(f) for f in bottom_first],
                                     "hand:1")
    with open_archive(f"docker-archive:{archive}").rootfs("hand") as stream:
        assert walk(stream, []) == merged
    assert merged["/g/3"]["link"] == "/g/2" and "/g/1" not in merged
    assert "link" not in merged["/h/aa"] and merged["/h/aa"]["uid"] == 7
    assert merged["/s-hard"]["link"] == "/s" and merged["/s"]["mode"] == "0777"
    assert merged["/sparse"]["size"] == 3 << 20 and merged["/null"]["dev"] == "1,3"
    assert merged["/loop0"] == {"type": "block", "mode": "0660", "uid": 0, "gid": 0, "dev": "7,0"}
    assert merged["/usr/bin/su"]["mode"] == "4755" and merged["/tmp"]["mode"] == "1777"
    assert merged["/" + os.fsdecode(b"caf\xe9-\xff")]["uid"] == 1000
    assert "/opt/x/gone" not in merged and "/rmdir" not in merged and "/rmdir/inner" not in merged
    assert "/q/old" not in merged and "/m/low" not in merged
    assert {"/m/mid", "/m/top", "/q/new", "/f2d/inner", "/etc/new", "/etc/passwd"} <= set(merged)
    assert merged["/w"]["type"] == "file" and "/w/f" not in merged
    assert merged["/m"]["mode"] == "0711" and merged["/etc"]["mode"] == "0700"
    assert merged["/dev"] == {"type": "dir", "mode": "0755", "uid": 0, "gid": 0}
    assert "/etc/hostname" not in merged and {"/proc", "/sys"} <= set(merged)


@needs_root
def test_members_come_in_the_export_walk_order(tmp_path: Path) -> None:
    """Depth first, each folder's names sorted as bytes (Go's filepath.Walk)."""
    low = tmp_path / "l"
    for name in ("B", "a/x", "a-b", "a/y/z", os.fsdecode(b"\xff"), "_"):
        _write(low / name, b"")
    names = [m.name for m in LayerDirsReader([low], "order")]
    assert names == ["B", "_", "a", "a/x", "a/y", "a/y/z", "a-b", "dev", "dev/pts", "dev/shm",
                     "etc", "proc", "sys", os.fsdecode(b"\xff")]


@needs_root
def test_the_root_is_never_opaque_and_rootless_xattrs(tmp_path: Path) -> None:
    """The kernel ignores an opaque mark on a layer's root (the engine puts one there for a
    root `.wh..wh..opq`); `user.overlay.opaque` is the mark of rootless engines."""
    low, top = tmp_path / "low", tmp_path / "top"
    _write(low / "kept", b"k")
    _write(low / "d/old", b"o")
    _opaque(top)
    _opaque(top / "d", "user")
    _write(top / "d/new", b"n")
    assert {"/kept", "/d/old", "/d/new"} <= set(walk(LayerDirsReader([top, low], "t"), []))
    rootless = walk(LayerDirsReader([top, low], "t", xattr_ns="user"), [])
    assert "/kept" in rootless and "/d/old" not in rootless


@needs_root
def test_an_overlay_redirect_is_refused(tmp_path: Path) -> None:
    """The kernel follows a redirect xattr (which only a hostile tar's xattr record can put in
    the engine's layers); this reader refuses it rather than show something else."""
    low, top = tmp_path / "low", tmp_path / "top"
    _write(low / "elsewhere/f", b"f")
    (top / "d").mkdir(parents=True)
    os.setxattr(top / "d", "trusted.overlay.redirect", b"/elsewhere")
    with pytest.raises(SourceError, match=r"t: /d is an overlay redirect.*--compat-read=export"):
        walk(LayerDirsReader([top, low], "t"), [])


def test_init_paths_equal_the_archive_merge() -> None:
    assert {"/" + p.decode() for p in layerdirs.INIT_PATHS} == INIT_PATHS
    assert tuple("/" + p.decode() for p in layerdirs.INIT_DIRS) == INIT_DIRS


# -- a file changing under the reader ----------------------------------------------------------

def _one_file(tmp_path: Path, size: int) -> tuple[LayerDirsReader, Iterator[Any], Path]:
    layer = tmp_path / "layer"
    path = _write(layer / "big", os.urandom(size))
    reader = LayerDirsReader([layer], "img:1")
    members = iter(reader)
    assert next(members).name == "big"
    return reader, members, path


def test_a_file_shrinking_before_its_read(tmp_path: Path) -> None:
    reader, _, path = _one_file(tmp_path, 3 << 20)
    os.truncate(path, 10)
    where = re.escape(f"in layer {tmp_path}/layer")
    with pytest.raises(SourceError, match=rf"img:1: /big shrank while read \(ends at 10 of 3145728 bytes\) {where}"):
        list(reader.chunks())


def test_a_file_shrinking_while_read(tmp_path: Path) -> None:
    reader, _, path = _one_file(tmp_path, 3 << 20)
    chunks = reader.chunks()
    assert len(next(chunks)) == 1 << 20
    os.truncate(path, 1 << 20)
    with pytest.raises(SourceError, match=r"/big shrank while read \(ends at 1048576 of 3145728"):
        list(chunks)


def test_a_file_growing_or_vanishing(tmp_path: Path) -> None:
    reader, _, path = _one_file(tmp_path, (1 << 20) + 100)
    chunks = reader.chunks()
    assert len(next(chunks)) == 1 << 20
    with open(path, "ab") as grow:
        grow.write(b"more")
    with pytest.raises(SourceError, match="/big grew while read"):
        list(chunks)
    reader, _, path = _one_file(tmp_path / "again", 100)
    path.unlink()
    with pytest.raises(SourceError, match=r"/big vanished or cannot be opened in layer .*No such file"):
        list(reader.chunks())


def test_an_unreadable_folder_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = tmp_path / "layer"
    _write(layer / "etc/secret/f", b"")
    real = os.scandir

    def refuse(path: Any) -> Any:
        if os.fsdecode(path).endswith("/secret"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(layerdirs.os, "scandir", refuse)
    where = re.escape(f"in layer {layer} (Permission denied)")
    with pytest.raises(SourceError, match=rf"img:1: /etc/secret cannot be listed {where}"):
        walk(LayerDirsReader([layer], "img:1"), [])


def test_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    """Every view comes from the one 1 MiB buffer, whatever the file's size."""
    layer = tmp_path / "layer"
    layer.mkdir()
    with open(layer / "f", "wb") as big:
        big.truncate(5 << 20)
    reader = LayerDirsReader([layer], "img:1")
    assert next(m for m in reader if m.name == "f").size == 5 << 20
    views = list(reader.chunks())
    assert [len(v) for v in views] == [1 << 20] * 5
    assert len({id(v.obj) for v in views}) == 1


# -- large files hashed beside the walk --------------------------------------------------------

class _Wants:
    """A collector that wants files by name and keeps what it gets."""

    def __init__(self, name: str) -> None:
        self.name, self.got = name, {}  # type: ignore[var-annotated]

    def wants(self, path: str, head: bytes, size: int) -> bool:
        return path.endswith(self.name)

    def take(self, path: str, data: bytes) -> None:
        self.got[path] = data


def test_large_files_hashed_beside_the_walk_equal_the_tar_walk(tmp_path: Path) -> None:
    import hashlib

    layer = tmp_path / "layer"
    big, taken = os.urandom(BACKGROUND_MIN + 5), os.urandom(BACKGROUND_MIN)
    _write(layer / "a/big", big)
    _write(layer / "a/taken", taken)
    os.link(layer / "a/big", layer / "a/link")
    _write(layer / "small", b"x")
    wanted = _Wants("/taken")
    files = walk(LayerDirsReader([layer], "img:1"), [wanted])
    assert files["/a/big"]["sha256"] == hashlib.sha256(big).hexdigest()
    assert files["/a/link"] == {**files["/a/big"], "link": "/a/big"}
    # a file a collector wants is read through `chunks` and handed over whole
    assert wanted.got == {"/a/taken": taken}
    assert files["/a/taken"]["sha256"] == hashlib.sha256(taken).hexdigest()
    # as the same folder read as a tar (which lacks the init layer's folders)
    assert {p: r for p, r in files.items() if p not in INIT_DIRS} == walk(
        io.BytesIO(as_tar(layer)), [_Wants("/taken")])


def test_a_large_file_changing_beside_the_walk_fails_the_walk(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    layer = tmp_path / "layer"
    path = _write(layer / "big", os.urandom(BACKGROUND_MIN))
    reader = LayerDirsReader([layer], "img:1")
    detach = reader.detach

    def truncating() -> Any:
        digest = detach()
        os.truncate(path, 10)  # after the walk handed it over, before the thread reads it
        return digest

    monkeypatch.setattr(reader, "detach", truncating)
    with pytest.raises(SourceError, match=r"/big shrank while read \(ends at 10 of 8388608 bytes\)"):
        walk(reader, [])
