"""The Docker Engine, wrapped once: resolve an image, stream a container's filesystem, clean up.

Every Docker error is translated into the `HarnessError` hierarchy here, so nothing above this
module imports `docker`. Containers are created, never started (the static snapshot needs only
the merged filesystem), carry the run's label, and are removed as soon as their stream ends.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import requests.exceptions

from harness.errors import EngineUnavailable, ImageNotFound, SourceError

#: Every container the harness creates carries this label; its value is the run id.
RUN_LABEL = "io.harness.run"
#: An image made with `docker import` has no CMD, and the engine refuses to create a container
#: without one. The container is never started, so any path will do.
PLACEHOLDER_CMD = ["/harness-never-started"]
EXPORT_CHUNK = 1 << 20

#: The engine reports Go architecture names; baselines and reports use `uname -m` names.
ARCH_NAMES = {"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "arm": "armv7l",
              "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def uname_arch(go_arch: str, variant: str | None = None) -> str:
    """Map an engine architecture (`amd64`) to the name `uname -m` prints (`x86_64`)."""
    if go_arch == "arm" and variant == "v6":
        return "armv6l"
    return ARCH_NAMES.get(go_arch, go_arch)


@dataclass(frozen=True)
class ImageInfo:
    """What the engine knows about an image, apart from its filesystem."""

    ref: str
    image_id: str
    arch: str
    os: str
    variant: str | None
    config: dict[str, Any]
    repo_digests: list[str] = field(default_factory=list)
    size: int = 0


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (the engine's export stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
            except (requests.exceptions.RequestException, docker.errors.DockerException,
                    OSError) as exc:
                raise SourceError(f"export stream broke off: {exc}") from exc
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class Engine:
    """A connection to one Docker Engine (`DOCKER_HOST`, else the local socket)."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client

    @classmethod
    def connect(cls, timeout: int = 120) -> Engine:
        """Connect and ping; raise `EngineUnavailable` with one line when nothing answers."""
        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise EngineUnavailable(
                f"no Docker Engine answers ({reason}); start dockerd or set DOCKER_HOST"
            ) from exc
        return cls(client)

    def resolve(self, ref: str, platform: str | None = None) -> ImageInfo:
        """Find `ref` among local images, else pull it through the engine."""
        try:
            try:
                image = self._client.images.get(ref)
            except docker.errors.ImageNotFound:
                image = self._pull(ref, platform)
            attrs = image.attrs
        except (requests.exceptions.RequestException, docker.errors.APIError) as exc:
            raise EngineUnavailable(f"engine failed while resolving image {ref!r}: {exc}") from exc
        return _image_info(ref, attrs)

    def _pull(self, ref: str, platform: str | None) -> Any:
        repo, tag = _split_ref(ref)
        try:
            return self._client.images.pull(repo, tag=tag, platform=platform)
        except (docker.errors.ImageNotFound, docker.errors.NotFound) as exc:
            raise ImageNotFound(f"image {ref!r} is not local and could not be pulled") from exc
        except docker.errors.APIError as exc:
            first = str(exc.explanation or exc).splitlines()[0]
            raise ImageNotFound(f"image {ref!r} is not local and pulling it failed: {first}") from exc

    @contextlib.contextmanager
    def export_rootfs(self, image_id: str, run_id: str) -> Iterator[io.BufferedReader]:
        """Yield the merged filesystem of a created (never started) container as a tar stream.

        The container is removed when the block exits, whatever happened inside it.
        """
        try:
            container = self._client.api.create_container(
                image_id, command=PLACEHOLDER_CMD, labels={RUN_LABEL: run_id},
                network_disabled=True)
        except (requests.exceptions.RequestException, docker.errors.APIError) as exc:
            raise SourceError(f"could not create a container of {image_id}: {exc}") from exc
        cid = container["Id"]
        try:
            try:
                chunks = self._client.api.export(cid, chunk_size=EXPORT_CHUNK)
            except (requests.exceptions.RequestException, docker.errors.APIError) as exc:
                raise SourceError(f"could not export container {cid[:12]}: {exc}") from exc
            yield io.BufferedReader(_ChunkReader(iter(chunks)), buffer_size=EXPORT_CHUNK)
        finally:
            self.remove_container(cid)

    def remove_container(self, cid: str) -> None:
        """Remove a container, ignoring one that is already gone."""
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError,
                                 requests.exceptions.RequestException):
            self._client.api.remove_container(cid, force=True, v=True)

    def remove_labelled(self, run_id: str | None = None) -> int:
        """Remove every container of this run (or of any run); return how many went."""
        selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
        try:
            found = self._client.api.containers(all=True, filters={"label": selector})
        except (requests.exceptions.RequestException, docker.errors.DockerException):
            return 0
        for c in found:
            self.remove_container(c["Id"])
        return len(found)

    @property
    def client(self) -> docker.DockerClient:
        """The underlying SDK client, for the runtime layer that starts containers."""
        return self._client


def _split_ref(ref: str) -> tuple[str, str | None]:
    """Split `repo[:tag][@digest]` the way the engine does (a port colon is not a tag)."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return repo, digest
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = ref.rsplit(":", 1)
        return repo, tag
    return ref, "latest"


def _image_info(ref: str, attrs: dict[str, Any]) -> ImageInfo:
    return ImageInfo(
        ref=ref,
        image_id=attrs["Id"],
        arch=uname_arch(attrs.get("Architecture") or "", attrs.get("Variant")),
        os=attrs.get("Os") or "",
        variant=attrs.get("Variant"),
        config=attrs.get("Config") or {},
        repo_digests=list(attrs.get("RepoDigests") or []),
        size=int(attrs.get("Size") or 0),
    )
