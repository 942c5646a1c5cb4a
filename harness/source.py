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
from collections.abc import Callable, Iterator
from typing import Protocol

from harness.engine import Engine, ImageInfo
from harness.errors import ConfigError, SourceError
from harness.layerdirs import LayerDirsReader
from harness.snapshot.walk import Rootfs

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

    def inspect(self) -> ImageInfo:
        if self._info is None:
            self._info = self._engine.resolve(self._ref, self._platform)
        return self._info

    @contextlib.contextmanager
    def rootfs(self, run_id: str) -> Iterator[Rootfs]:
        """`export`: a created container's tar stream; `layers`: its overlay2 layer folders
        read in place (the container pins them), else a SourceError saying why they cannot
        be; `auto`: the layer folders when they can be read, else the export."""
        image_id = self.inspect().image_id
        if self._read == "export":
            with self._engine.export_rootfs(image_id, run_id) as stream:
                yield stream
            return
        with self._engine.created(image_id, run_id) as cid:
            dirs = self._engine.layer_dirs(image_id, cid)
            if dirs is not None:
                yield LayerDirsReader(dirs, self._ref)
            elif self._read == "layers":
                raise SourceError(f"{self._ref}: the engine's layer folders cannot be read here "
                                  f"({self._engine.layer_dirs_reason}); use --compat-read=export")
            else:
                yield self._engine.export(cid)


def open_source(ref: str, engine: Callable[[], Engine], platform: str | None = None,
                read: str = "auto") -> ImageSource:
    """The source a reference names; the engine is connected only when it is needed."""
    if ref.startswith(DAEMONLESS_PREFIXES):
        try:
            archive = importlib.import_module("harness.archive")
        except ModuleNotFoundError as exc:
            if exc.name != "harness.archive":
                raise
            raise ConfigError(f"{ref}: daemonless sources are not available in this build") from None
        source: ImageSource = archive.open_archive(ref, platform)
        return source
    return EngineSource(engine(), ref, platform, read)
