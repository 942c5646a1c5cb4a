"""The Docker Engine, wrapped once: find (or pull) an image, stream a container's filesystem, clean up.

Every Docker error is translated into the `HarnessError` hierarchy here, so nothing above this
module imports `docker`. Containers are created, never started (the static snapshot needs only
the merged filesystem), carry the run's label, and are removed as soon as their stream ends
(or, when the snapshot reads the overlay2 layer folders in place, as soon as that read ends:
the container pins the image's layers meanwhile).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests.exceptions

from harness.source.dockersdk import docker, ssh_transport
from harness.errors import EngineUnavailable, ImageNotFound, SourceError
from harness.rootfs.image import ImageInfo
from harness.safepath import check_arch

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


def image_arch(go_arch: Any, variant: Any, image: str) -> str:
    """The image's architecture as baselines name it (`uname_arch`); the image chose the
    string, so anything but a plain name (`../x`, `/tmp/x`) is a `SourceError` naming it."""
    name = uname_arch(go_arch if isinstance(go_arch, str) else "",
                      variant if isinstance(variant, str) else None)
    return check_arch(name, image)


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
        self._remaps: bool | None = None  # the engine remaps user ids (asked once)
        self._product: str | None = None  # "docker" or "podman" (asked once)
        #: why the last `layer_dirs` call gave None
        self.layer_dirs_reason = ""

    @classmethod
    def connect(cls, timeout: int = 120) -> Engine:
        """Connect and ping; raise `EngineUnavailable` with one line when nothing answers."""
        if os.environ.get("DOCKER_HOST", "").startswith("ssh://"):
            ssh_transport()
        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            hint = "start dockerd or set DOCKER_HOST"
            if "paramiko" in reason:  # the SDK's ssh:// transport, its shell-out too, needs it
                hint = "DOCKER_HOST is an ssh:// URL: install paramiko (the `ssh` extra)"
            raise EngineUnavailable(f"no Docker Engine answers ({reason}); {hint}") from exc
        return cls(client)

    def for_child(self) -> Engine:
        """A connection of its own for a process forked from this one (a socket shared
        across a fork would mix both processes' requests), to the same engine: the API
        version and the facts this one asked are kept, and not asked again (the engine
        answered this process a moment ago: a failure shows on the first request)."""
        try:
            client = docker.from_env(version=self._client.api.api_version,
                                     timeout=self._client.api.timeout)
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"no Docker Engine answers ({exc})") from exc
        child = Engine(client)
        child._remaps, child._product = self._remaps, self._product
        return child

    @property
    def product(self) -> str:
        """`podman` when the API is Podman's Docker-compatible service, else `docker` (asked
        once). Podman's create makes neither Docker's init layer (/dev, /proc, /sys, /etc) nor
        the config's WorkingDir (its mount points and the WorkingDir appear at start), so its
        export of a created container shows the image's layers alone; `harness.source.sources`
        completes that view."""
        if self._product is None:
            try:
                version = self._client.api.version()
            except (requests.exceptions.RequestException, docker.errors.DockerException):
                return "docker"  # asked again next time: an engine that failed once may answer
            names = [str(c.get("Name") or "") for c in version.get("Components") or []
                     if isinstance(c, dict)]
            self._product = "podman" if any(n.startswith("Podman") for n in names) else "docker"
        return self._product

    def find_or_pull(self, ref: str, platform: str | None = None) -> ImageInfo:
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
    def created(self, image_id: str, run_id: str) -> Iterator[str]:
        """Yield the id of a created (never started) container of the image, labelled with
        the run; it is removed when the block exits, whatever happened inside it. While it
        exists it pins the image: its layers stay on disk even if the image is removed."""
        try:
            container = self._client.api.create_container(
                image_id, command=PLACEHOLDER_CMD, labels={RUN_LABEL: run_id},
                network_disabled=True)
        except (requests.exceptions.RequestException, docker.errors.APIError) as exc:
            raise SourceError(f"could not create a container of {image_id}: {exc}") from exc
        cid = container["Id"]
        try:
            yield cid
        finally:
            self.remove_container(cid)

    def export(self, cid: str) -> io.BufferedReader:
        """A created container's merged filesystem as a tar stream."""
        try:
            chunks = self._client.api.export(cid, chunk_size=EXPORT_CHUNK)
        except (requests.exceptions.RequestException, docker.errors.APIError) as exc:
            raise SourceError(f"could not export container {cid[:12]}: {exc}") from exc
        return io.BufferedReader(_ChunkReader(iter(chunks)), buffer_size=EXPORT_CHUNK)

    @contextlib.contextmanager
    def export_rootfs(self, image_id: str, run_id: str) -> Iterator[io.BufferedReader]:
        """Yield the merged filesystem of a created (never started) container as a tar stream.

        The container is removed when the block exits, whatever happened inside it.
        """
        with self.created(image_id, run_id) as cid:
            yield self.export(cid)

    def layer_dirs(self, image_id: str, container: str | None = None) -> list[Path] | None:
        """The image's overlay2 layer folders, top first, to read in place; given a created
        container of the image, the folders of that container's mount (its writable layer,
        which holds the WORKDIR the engine made at create, its init layer, then the image's):
        exactly what `export` walks. None when they cannot be read here, the reason then in
        `layer_dirs_reason`: a remote engine, another storage driver, user ids remapped by
        the engine, or no permission (the folders, and the overlay's trusted xattrs, need
        root)."""
        dirs, self.layer_dirs_reason = self._layer_dirs(image_id, container)
        return dirs

    def _layer_dirs(self, image_id: str, container: str | None) -> tuple[list[Path] | None, str]:
        if self._client.api.base_url != "http+docker://localhost":  # docker-py's unix socket
            return None, f"the engine is not local ({self._client.api.base_url})"
        if not _has_sys_admin():
            return None, "reading the overlay's trusted xattrs needs root (CAP_SYS_ADMIN)"
        try:
            if self._remaps is None:
                options = self._client.api.info().get("SecurityOptions") or []
                self._remaps = any(o in ("name=userns", "name=rootless") for o in options)
            image = self._client.api.inspect_image(image_id)
            attrs = self._client.api.inspect_container(container) if container else image
        except (requests.exceptions.RequestException, docker.errors.APIError) as exc:
            return None, f"the engine failed to describe {container or image_id}: {exc}"
        if self._remaps:
            return None, "the engine remaps user ids (userns-remap or rootless)"
        driver = (attrs.get("GraphDriver") or {}).get("Name")
        if driver != "overlay2":
            podman = " (Podman's containers-storage)" if self.product == "podman" else ""
            return None, f"the engine's storage driver is {driver!r}{podman}, not overlay2"
        dirs, below = _folders(attrs), _folders(image)
        if not dirs:
            return None, f"the engine names no layer folder of {container or image_id}"
        if container and below and dirs[-len(below):] != below:
            return None, f"container {container[:12]} is not on the layers of {image_id}"
        for folder in dirs:
            if not os.path.isdir(folder) or not os.access(folder, os.R_OK | os.X_OK):
                return None, f"no permission to read {folder} (or it is not on this machine)"
        return dirs, ""

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


def _folders(attrs: dict[str, Any]) -> list[Path]:
    """The overlay2 folders of an image or container inspect, top first."""
    data = (attrs.get("GraphDriver") or {}).get("Data") or {}
    lower = data.get("LowerDir") or ""
    return [Path(p) for p in [data.get("UpperDir") or "", *lower.split(":")] if p]


def _has_sys_admin() -> bool:
    """Whether this process holds CAP_SYS_ADMIN (needed to read `trusted.*` xattrs)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> 21 & 1)
    except (OSError, ValueError):
        pass
    return os.geteuid() == 0


def _image_info(ref: str, attrs: dict[str, Any]) -> ImageInfo:
    return ImageInfo(
        ref=ref,
        image_id=attrs["Id"],
        arch=image_arch(attrs.get("Architecture"), attrs.get("Variant"), ref),
        os=attrs.get("Os") or "",
        variant=attrs.get("Variant"),
        config=attrs.get("Config") or {},
        repo_digests=list(attrs.get("RepoDigests") or []),
        size=int(attrs.get("Size") or 0),
    )
