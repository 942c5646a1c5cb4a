"""Sources: where an image comes from. The snapshot needs only two things of a source: what
the image is (`ImageInfo`) and its merged filesystem: one tar stream, or a reader of its
members in the engine's export order (the engine's overlay2 layer folders read in place).

    REF                        the local engine's image, else pulled through the engine
    docker-archive:PATH        a `docker save` tarball, read without any daemon
    oci:PATH                   an OCI image layout (folder or tar), read without any daemon
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Protocol

from harness.source.createview import RootView, clean_path
from harness.rootfs.image import ImageInfo
from harness.source.engine import Engine
from harness.errors import ConfigError, SourceError
from harness.source.layerdirs import INIT_DIRS, INIT_PATHS, LayerDirsReader
from harness.rootfs.tarstream import Member, TarReader
from harness.rootfs.readers import Rootfs

DAEMONLESS_PREFIXES = ("docker-archive:", "oci:", "oci-archive:")
#: how an engine image's files are read: `export` (a created container's tar stream, any
#: engine), `layers` (the engine's overlay2 layer folders in place), `auto` (layers if it can)
READ_MODES = ("auto", "export", "layers")


class ImageSource(Protocol):
    """One image, reachable for a snapshot."""

    def inspect(self) -> ImageInfo:
        """Identity and config of the image."""

    def rootfs(self, run_id: str) -> contextlib.AbstractContextManager[Rootfs]:
        """The merged filesystem (whiteouts applied): a tar stream or a member reader."""

    @property
    def reads_in_place(self) -> bool:
        """Whether `rootfs` will likely hand the files over where they lie (the engine's
        layer folders on this host) rather than streamed: known only as it opens, so a guess
        (`auto` may still fall back to the export)."""


class EngineSource:
    """An image of the Docker Engine (`DOCKER_HOST`, else the local socket)."""

    def __init__(self, engine: Engine, ref: str, platform: str | None = None,
                 read: str = "auto") -> None:
        if read not in READ_MODES:
            raise ConfigError(f"read mode {read!r}: expected one of {', '.join(READ_MODES)}")
        self._engine = engine
        self._ref = ref
        self._platform = platform
        self._read = read
        self._info: ImageInfo | None = None

    @property
    def reads_in_place(self) -> bool:
        return self._read != "export"

    def inspect(self) -> ImageInfo:
        if self._info is None:
            self._info = self._engine.find_or_pull(self._ref, self._platform)
        return self._info

    @contextlib.contextmanager
    def rootfs(self, run_id: str) -> Iterator[Rootfs]:
        """`export`: a created container's tar stream; `layers`: its overlay2 layer folders
        read in place (the container pins them), else a SourceError saying why they cannot
        be; `auto`: the layer folders when they can be read, else the export."""
        image_id = self.inspect().image_id
        if self._read == "export":
            with self._engine.created(image_id, run_id) as cid:
                yield self._export(cid)
            return
        with self._engine.created(image_id, run_id) as cid:
            dirs = self._engine.layer_dirs(image_id, cid)
            if dirs is not None:
                yield LayerDirsReader(dirs, self._ref)
            elif self._read == "layers":
                raise SourceError(f"{self._ref}: the engine's layer folders cannot be read here "
                                  f"({self._engine.layer_dirs_reason}); use --compat-read=export")
            else:
                yield self._export(cid)

    def _export(self, cid: str) -> Rootfs:
        """The created container's export: Docker's as it is; Podman's completed with what
        Docker's create adds (`CreateViewReader`), so that one image gives one snapshot
        whichever engine holds it."""
        stream = self._engine.export(cid)
        if self._engine.product == "docker":
            return stream
        config = self.inspect().config
        return CreateViewReader(stream, self._ref, config.get("WorkingDir") or "",
                                config.get("Volumes") or ())


def _folder(path: str) -> Member:
    return Member(name=path.lstrip("/"), type=b"5", mode=0o755, uid=0, gid=0, size=0,
                  linkname="", devmajor=0, devminor=0)


class CreateViewReader(TarReader):
    """The export of a container whose engine's create left the image's merged layers as
    they are (Podman: its mount points and the WorkingDir appear at start), shown as Docker's
    export of a created container shows it, by the rules `harness.source.layermerge` applies to a
    daemonless merge: a non-folder at a path of Docker's init layer is hidden, the init
    layer's folders (/dev, /dev/pts, /dev/shm, /proc, /sys, /etc) are added when the image
    has none, then the config's WorkingDir is made and its volumes checked
    (`harness.source.createview`, which raises what Docker's create would refuse). The added
    folders come last, as in the daemonless merge; the walk does not depend on order."""

    def __init__(self, stream: IO[bytes], ref: str, workdir: str, volumes: Iterable[str]) -> None:
        super().__init__(stream)
        self._ref, self._workdir, self._volumes = ref, workdir, sorted(volumes)

    def __iter__(self) -> Iterator[Member]:
        init_dirs = ["/" + p.decode() for p in INIT_DIRS]
        init_paths = {"/" + p.decode() for p in INIT_PATHS}
        dirs: set[str] = set()
        others: dict[str, str | None] = {}  # non-folders shown: a symlink's target, else None
        for member in super().__iter__():
            path = clean_path(member.name)
            if member.type == b"5":
                dirs.add(path)
            elif path in init_paths:
                continue  # Docker's init layer puts its own entry there
            else:
                others[path] = member.linkname if member.type == b"2" else None
            yield member
        for path in init_dirs:
            if path not in dirs:
                dirs.add(path)
                yield _folder(path)
        for path in sorted(init_paths.difference(init_dirs, dirs)):
            others[path] = "/proc/mounts" if path == "/etc/mtab" else None
        for path in RootView(dirs, others, self._ref).create(self._workdir, self._volumes):
            yield _folder(path)


def open_source(ref: str, engine: Callable[[], Engine], platform: str | None = None,
                read: str = "auto") -> ImageSource:
    """The source a reference names; the engine is connected only when it is needed."""
    if ref.startswith(DAEMONLESS_PREFIXES):
        try:
            archive = importlib.import_module("harness.source.archive")
        except ModuleNotFoundError as exc:
            if exc.name != "harness.source.archive":
                raise
            raise ConfigError(f"{ref}: daemonless sources are not available in this build") from None
        source: ImageSource = archive.open_archive(ref, platform)
        return source
    return EngineSource(engine(), ref, platform, read)
