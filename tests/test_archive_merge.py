"""`harness.source.archive`'s merge against the engine where the engine does more than apply layers.

Each image here is made of layer tars loaded with `docker load`; the reference is the export of
a container the engine created from it (`--compat-read=export`), the same image read from its
`docker save`-style tarball must give the same records, or the same refusal:

- the WorkingDir the engine creates (missing parents 0755 root; relative, `..`, through
  symlinks inside the root, /etc/mtab of the init layer) and the WorkingDirs or volumes for
  which it refuses to create the container;
- `.wh..wh..opq` at a layer's root, which the kernel ignores;
- a folder made opaque by the PAX record `SCHILY.xattr.trusted.overlay.opaque=y` (and the
  records the engine does not obey), a redirect xattr (followed by the kernel: refused), a PAX
  global header (ignored by the engine's Go reader).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import testimages
from harness.source.archive import open_archive
from harness.source.engine import Engine
from harness.errors import SourceError
from harness.rootfs.tarstream import TarReader
from harness.snapshot.walk import walk
from harness.source.sources import EngineSource
from testimages import hostile, layered

from conftest import tree_bytes
from test_layerdirs import LOADED, write_baselines

R, D, L, S, C = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE
TAG = "harness-test/archive-merge"


def _xattr_dir(name: str, key: str, value: str) -> tuple[str, bytes, dict[str, Any]]:
    return (name, D, {"mode": 0o755, "pax_headers": {f"SCHILY.xattr.{key}": value}})


#: what WorkingDir and volumes meet: folders, files, symlinks in and out of the root, a loop,
#: a folder whited out above its content
BASE = hostile.tar_of([
    ("afile", R, {"data": b"f"}), ("d700", D, {"mode": 0o700, "uid": 5, "gid": 6}),
    ("link", S, {"linkname": "/target"}), ("target", D, {"mode": 0o711}),
    ("dangling", S, {"linkname": "/made/here"}), ("climber", S, {"linkname": "../../climbed"}),
    ("loop1", S, {"linkname": "loop2"}), ("loop2", S, {"linkname": "loop1"}),
    ("flink", S, {"linkname": "afile"}), ("dotdot", S, {"linkname": "target/.."}),
    ("wo/old", R, {"data": b"o"}), ("hl/a", R, {"data": b"a"}), ("hl/b", S, {"linkname": "/target"}),
    ("hl/c", L, {"linkname": "hl/b"})])  # a hard link to a symlink is a symlink too
WHITEOUT = hostile.tar_of([("wo", C, {"devmajor": 0, "devminor": 0})])

#: WorkingDir -> the folders the engine makes for it
CREATED = {
    "/nowhere/deep": ["/nowhere", "/nowhere/deep"],
    "reldir/x": ["/reldir", "/reldir/x"],                 # relative: from the root
    "../../up": ["/up"],                                  # `..` stops at the root
    "/afile/../z": ["/z"],                                # cleaned before anything is looked up
    "/link/sub": ["/target/sub"],                         # through an absolute symlink
    "/dangling": ["/made", "/made/here"],                 # a symlink to nothing: its target
    "/climber/x": ["/climbed", "/climbed/x"],             # a symlink climbing out: clamped
    "/dotdot/y": ["/y"],                                  # `..` in a target: lexical
    "/hl/c/n": ["/target/n"],                             # a hard-linked symlink
    "/d700/new": ["/d700/new"],                           # the 0700 parent kept as it is
    "/wo/new": ["/wo", "/wo/new"],                        # over a whiteout: lower content hidden
    "/etc/mtab/x": ["/proc/mounts", "/proc/mounts/x"],    # the init layer's symlink
    "/proc/z": ["/proc/z"],
    "/d700": [], "/": [], ".": [],
    "/" + "/".join(["a"] * 255): ["/" + "/".join(["a"] * n) for n in range(1, 256)],
}
#: WorkingDir or volume -> the engine's refusal, as this reader words it
REFUSED = {
    "/afile": "Cannot mkdir: /afile is not a directory",
    "/flink": "Cannot mkdir: /flink is not a directory",     # a symlink to a file
    "/etc/hosts": "Cannot mkdir: /etc/hosts is not a directory",  # the init layer's file
    "/afile/x": "lstat /afile/x: not a directory",
    "/loop1": "too many links",
    "/" + "/".join(["a"] * 256): "too many links",           # every step counts
    "/" + "n" * 256: "file name too long",
    "volume:/afile": "its volume '/afile': cannot mount volume over existing file",
    "volume:/link/../flink": "cannot mount volume over existing file",
}


def _config(case: str) -> dict[str, Any]:
    if case.startswith("volume:"):
        return {"Cmd": ["/bin/sh"], "Volumes": {case[7:]: {}, "/newvol/deep": {}}}
    return {"Cmd": ["/bin/sh"], "WorkingDir": case, "Volumes": {"/target": {}, "/newvol": {}}}


@pytest.fixture(scope="module")
def loaded(docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Per case, its `docker save`-style tarball, loaded into the engine under the tag
    f"{TAG}-{n}:{pid}" (n its index among the cases)."""
    work = tmp_path_factory.mktemp("archive-merge")
    out: dict[str, Path] = {}
    for n, case in enumerate([*CREATED, *REFUSED]):
        archive = layered.docker_archive(work / f"{n}.tar", [BASE, WHITEOUT],
                                         f"{TAG}-{n}:{os.getpid()}", config=_config(case))
        layered.load(archive)
        out[case] = archive
    yield out
    testimages.run(["docker", "rmi", "-f", *[_tag(p) for p in out.values()]])


def _tag(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        return str(json.load(tar.extractfile("manifest.json"))[0]["RepoTags"][0])  # type: ignore[arg-type]


def engine_records(engine: Engine, tag: str) -> dict[str, Any]:
    """The records of the export of a container the engine created (the reference)."""
    with EngineSource(engine, tag, read="export").rootfs(f"archive-merge-{os.getpid()}") as rootfs:
        return walk(rootfs, [])


def archive_records(archive: Path) -> dict[str, Any]:
    with open_archive(f"docker-archive:{archive}").rootfs("archive-merge") as stream:
        return walk(stream, [])


@pytest.mark.docker
@pytest.mark.parametrize("workdir", list(CREATED), ids=lambda w: w if len(w) < 30 else "255-steps")
def test_the_workdir_is_created_as_the_engine_does(workdir: str, loaded: dict[str, Path],
                                                   docker_engine: Engine) -> None:
    engine = engine_records(docker_engine, _tag(loaded[workdir]))
    merged = archive_records(loaded[workdir])
    assert merged == engine
    plain = archive_records(loaded["/d700"])  # nothing made
    assert sorted(set(merged) - set(plain)) == CREATED[workdir]
    for path in CREATED[workdir]:
        assert merged[path] == {"type": "dir", "mode": "0755", "uid": 0, "gid": 0}
    assert merged["/d700"] == {"type": "dir", "mode": "0700", "uid": 5, "gid": 6}
    assert "/wo/old" not in merged and "/newvol" not in merged  # volumes: made at start only


@pytest.mark.docker
@pytest.mark.parametrize("case", list(REFUSED), ids=lambda w: w if len(w) < 30 else f"{len(w)}-bytes")
def test_what_the_engine_refuses_to_create_is_refused(case: str, loaded: dict[str, Path],
                                                      docker_engine: Engine) -> None:
    with pytest.raises(SourceError, match="could not create a container"):
        engine_records(docker_engine, _tag(loaded[case]))
    with pytest.raises(SourceError, match="the engine refuses to create a container of this "
                                          "image: .*" + REFUSED[case]):
        archive_records(loaded[case])


# -- opaque marks and xattr records ---------------------------------------------------------

LOW = hostile.tar_of([
    ("kept", R, {"data": b"k"}), ("t/old", R, {"data": b"t"}), ("u/old", R, {"data": b"u"}),
    ("user/old", R, {"data": b"o"}), ("yes/old", R, {"data": b"o"}), ("lib/old", R, {"data": b"o"}),
    ("deep/er/old", R, {"data": b"o"}), ("elsewhere/e", R, {"data": b"e"}),
    ("r/old", R, {"data": b"o"}), ("g/old", R, {"data": b"o"})])
MARKS = hostile.tar_of([
    (".wh..wh..opq", R, {"data": b""}),                                   # at the root: ignored
    ("./", D, {"mode": 0o755, "pax_headers": {"SCHILY.xattr.trusted.overlay.opaque": "y"}}),
    _xattr_dir("t", "trusted.overlay.opaque", "y"), ("t/new", R, {"data": b"t"}),
    _xattr_dir("u", "trusted.overlay.opaque", "n"), ("u/new", R, {"data": b"u"}),
    _xattr_dir("user", "user.overlay.opaque", "y"),                       # rootless only
    _xattr_dir("yes", "trusted.overlay.opaque", "yes"),                   # exactly "y" counts
    ("lib", D, {"pax_headers": {"LIBARCHIVE.xattr.trusted.overlay.opaque": "eQ=="}}),
    ("deep", D, {"mode": 0o755}), _xattr_dir("deep/er", "trusted.overlay.opaque", "y"),
    ("f", R, {"data": b"f", "pax_headers": {"SCHILY.xattr.trusted.overlay.opaque": "y"}})])


def _global_header_layer() -> bytes:
    """A layer opening with a PAX global header (uid 77, an opaque xattr): the engine's Go
    reader hands it over as an entry of its own, which the engine ignores."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={
            "uid": "77", "SCHILY.xattr.trusted.overlay.opaque": "y"}) as tar:
        info = tarfile.TarInfo("glob")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"g"))
        info = tarfile.TarInfo("g")
        info.type, info.mode = D, 0o755
        tar.addfile(info)
    return buf.getvalue()


REDIRECT = hostile.tar_of([_xattr_dir("r", "trusted.overlay.redirect", "/elsewhere"),
                           ("r/new", R, {"data": b"n"})])


@pytest.fixture(scope="module")
def marked(docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Tarballs loaded into the engine: LOADED (test_layerdirs: `.wh.` markers, an opaque
    xattr record, a root `.wh..wh..opq`) with a WorkingDir it lacks, the opaque marks above,
    a global header, a redirect (over the lowest layer, and in it)."""
    work = tmp_path_factory.mktemp("marked")
    out: dict[str, Path] = {}
    images = {"loaded": (LOADED, {"Cmd": ["/bin/sh"], "WorkingDir": "/nowhere/deep"}),
              "marks": ([LOW, MARKS], None), "global": ([LOW, _global_header_layer()], None),
              "redirect": ([LOW, REDIRECT], None), "redirect-lowest": ([REDIRECT, LOW], None)}
    for name, (layers, config) in images.items():
        out[name] = layered.docker_archive(work / f"{name}.tar", layers,
                                           f"{TAG}-{name}:{os.getpid()}", config=config)
        layered.load(out[name])
    yield out
    testimages.run(["docker", "rmi", "-f", *[_tag(p) for p in out.values()]])


@pytest.mark.docker
def test_loaded_layers_baselines_equal_the_engines(marked: dict[str, Path], tmp_path: Path) -> None:
    """Every aspect's baseline file, through the engine's export and through the tarball."""
    archive = marked["loaded"]
    engine = write_baselines(_tag(archive), tmp_path / "engine", tmp_path / "c1", "export")
    daemonless = write_baselines(f"docker-archive:{archive}", tmp_path / "archive",
                                 tmp_path / "c2", "export")
    assert daemonless == engine
    files = json.loads(engine["img/x86_64/files.json"])["records"]
    for path in ("/nowhere", "/nowhere/deep"):
        assert files[path] == {"type": "dir", "mode": "0755", "uid": 0, "gid": 0}
    assert "/h/zz" in files and "/w" in files  # lower layers kept: the root's opaque mark
    assert "/t/old" not in files and "/t/new" in files and "/u/old" in files
    assert tree_bytes(tmp_path / "archive") == daemonless


@pytest.mark.docker
@pytest.mark.parametrize("image", ["marks", "global", "redirect-lowest"])
def test_opaque_marks_as_the_engine(image: str, marked: dict[str, Path], docker_engine: Engine) -> None:
    engine = engine_records(docker_engine, _tag(marked[image]))
    assert archive_records(marked[image]) == engine
    if image == "marks":
        assert {"/kept", "/u/old", "/user/old", "/yes/old", "/lib/old", "/deep/er"} <= set(engine)
        assert "/t/old" not in engine and "/deep/er/old" not in engine and "/t/new" in engine
    elif image == "global":
        assert engine["/glob"]["uid"] == 0 and "/g/old" in engine


@pytest.mark.docker
def test_a_redirect_above_the_lowest_layer_is_refused(marked: dict[str, Path],
                                                      docker_engine: Engine) -> None:
    """The kernel follows it (the export shows the redirect's target, not the lower copy);
    this reader does not, so it refuses rather than show something else."""
    engine = engine_records(docker_engine, _tag(marked["redirect"]))
    assert {"/r/e", "/r/new"} <= set(engine) and "/r/old" not in engine
    with pytest.raises(SourceError, match=r"layer .*: /r carries the xattr "
                                          r"trusted.overlay.redirect, which the kernel follows"):
        archive_records(marked["redirect"])


# -- the tar reader's part, no engine ----------------------------------------------------------

def test_member_xattrs_and_global_headers() -> None:
    members = list(TarReader(io.BytesIO(MARKS)))
    by_name = {m.name.rstrip("/"): m for m in members}
    assert by_name["t"].xattrs == {"trusted.overlay.opaque": "y"}
    assert by_name["lib"].xattrs is None and by_name["t/new"].xattrs is None
    assert by_name["f"].xattrs == {"trusted.overlay.opaque": "y"}
    glob = {m.name.rstrip("/"): m for m in TarReader(io.BytesIO(_global_header_layer()))}
    assert glob["glob"].uid == 0 and glob["g"].xattrs is None


def test_an_opaque_file_or_root_hides_nothing(tmp_path: Path) -> None:
    archive = layered.docker_archive(tmp_path / "m.tar", [LOW, MARKS], "m:1")
    files = archive_records(archive)
    assert {"/kept", "/u/old", "/user/old", "/yes/old", "/lib/old", "/f"} <= set(files)
    assert "/t/old" not in files and "/deep/er/old" not in files


def _deep_layer(files: int, depth: int) -> bytes:
    """A layer of `files` files, each at the bottom of a folder chain of its own `depth`
    folders deep, none of the folders given an entry (every one implied)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(files):
            info = tarfile.TarInfo(f"d{i}/" + "b/" * depth + "f")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    return out.getvalue()


def test_a_layer_of_deep_implied_folders_is_refused(tmp_path: Path) -> None:
    # 40 chains of 2,000 implied folders: each file's chain names ~4 MB of folders, which the
    # merge would hold and hand to the walk as records (the layer itself is ~0.5 MB)
    archive = layered.docker_archive(tmp_path / "deep.tar", [_deep_layer(40, 2000)], "deep:1")
    with pytest.raises(SourceError, match="implies folders whose names take more than 16 MiB"):
        with open_archive(f"docker-archive:{archive}").rootfs("deep") as stream:
            walk(stream, [])
    # the same depth, once, is an image like any other
    one = layered.docker_archive(tmp_path / "one.tar", [_deep_layer(1, 2000)], "one:1")
    with open_archive(f"docker-archive:{one}").rootfs("one") as stream:
        files = walk(stream, [])
    assert "/d0/" + "b/" * 2000 + "f" in files


def test_a_member_path_past_path_max_is_refused(tmp_path: Path) -> None:
    archive = layered.docker_archive(tmp_path / "long.tar", [_deep_layer(1, 2100)], "long:1")
    with pytest.raises(SourceError, match="past the kernel's PATH_MAX"):
        with open_archive(f"docker-archive:{archive}").rootfs("long") as stream:
            walk(stream, [])
