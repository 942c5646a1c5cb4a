"""Daemonless sources: an image read from a `docker save` tarball or an OCI layout, no engine.

    docker-archive:PATH[:REPO:TAG|:@N]   `docker save` output (layers plain tar or compressed)
    oci:PATH[:REF]  oci-archive:PATH[:REF]   an OCI image layout, as a folder or as one tar

This module finds the image and reads what describes it: the blobs of a folder or of an
uncompressed tar (its members indexed once, then read in place by offset), the `docker save`
manifest or the OCI index (nested indexes expanded, attestation manifests skipped), the choice
by tag, index or platform, and the config as the engine decodes it (typed fields, the image id
being the digest of the config blob).

The filesystem is built by the next two steps, each in its own module: `harness.source.layermerge`
streams the layers merged into ONE tar stream, as the engine's `docker export` shows a
container it created, and `harness.source.createview` does to that view what the engine's create
does (the WorkingDir made, the volumes checked). Nothing is unpacked.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import platform as host
import posixpath
import re
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.rootfs.image import ImageInfo
from harness.source.engine import ARCH_NAMES, image_arch
from harness.errors import ConfigError, ImageNotFound, SourceError
from harness.source.layermerge import CHUNK, LayerMerge, MergedReader

MAX_JSON = 16 << 20  # manifests and configs are small; a bigger one is not what it claims
MAX_NESTING = 4      # OCI indexes pointing at indexes: deeper is a loop or an attack
_DIGEST = re.compile(r"^(sha256|sha512):([0-9a-f]{64}|[0-9a-f]{128})$")
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json")
_REF_NAME = "org.opencontainers.image.ref.name"
Platform = tuple[str, str, "str | None"]


# -- blobs of a folder or of an uncompressed tar, as bounded streams ---------------------------

class _Slice(io.RawIOBase):
    """`size` bytes of a file from `offset` (a member of the archive tar)."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._file.seek(offset)
        self._offset, self._size, self._left = offset, size, size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._size - self._left

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """A position within the slice, held at its end: a skip past it finds the end."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.tell(), io.SEEK_END: self._size}[whence]
        target = min(max(base + offset, 0), self._size)
        self._file.seek(self._offset + target)
        self._left = self._size - target
        return target

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")[:self._left]
        got = self._file.readinto(view) if len(view) else 0
        if len(view) and not got:
            raise SourceError(f"{self._file.name} ends early (truncated)")
        self._left -= got
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


class _Blobs:
    """Named blobs of a folder, or of a tar (its members indexed once, read by offset)."""

    def __init__(self, path: Path, what: str) -> None:
        self.path, self.what = path, what
        self._members: dict[str, tuple[int, int]] | None = None
        if path.is_dir():
            return
        members: dict[str, tuple[int, int]] = {}
        links: dict[str, str] = {}
        try:
            end = path.stat().st_size
            with tarfile.open(path, "r:") as tar:
                for m in tar:
                    name = posixpath.normpath("/" + m.name)[1:]
                    if m.isfile():
                        members[name] = (m.offset_data, m.size)
                    elif m.issym():  # `docker save` links a layer saved twice to its first copy
                        links[name] = posixpath.normpath(
                            posixpath.join("/" + posixpath.dirname(name), m.linkname))[1:]
        except (tarfile.TarError, EOFError, UnicodeError, ValueError) as exc:
            raise SourceError(f"{what}: not an uncompressed tar archive ({exc})") from None
        except OSError as exc:
            raise SourceError(f"{what}: unreadable ({exc})") from None
        for name, (offset, size) in members.items():
            if offset + size > end:
                raise SourceError(f"{what}: {name} is truncated (the archive ends early)")
        for name, target in links.items():
            for _ in range(8):
                target = links.get(target, target)
            if target in members:
                members.setdefault(name, members[target])
        self._members = members

    def has(self, name: str) -> bool:
        """Whether the blob exists (`open` says when it is not a regular file)."""
        if self._members is not None:
            return name in self._members
        return os.path.lexists(_inside(self.path, name))

    def open(self, name: str) -> IO[bytes]:
        """A stream of one blob."""
        if self._members is None:
            return os.fdopen(_open_regular(self.path, name, self.what), "rb")
        if name not in self._members:
            raise SourceError(f"{self.what}: {name} is missing from the archive")
        return io.BufferedReader(_Slice(self.path, *self._members[name]), CHUNK)

    def size(self, name: str) -> int:
        """The blob's size in bytes."""
        if self._members is not None:
            return self._members.get(name, (0, 0))[1]
        fd = _open_regular(self.path, name, self.what)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def raw(self, name: str) -> bytes:
        """A small blob's bytes (a manifest, an index, a config)."""
        with self.open(name) as stream:
            data = stream.read(MAX_JSON + 1)
        if len(data) > MAX_JSON:
            raise SourceError(f"{self.what}: {name} is over {MAX_JSON >> 20} MiB, not a manifest")
        return data

    def json(self, name: str) -> Any:
        """A small JSON blob, parsed."""
        return _parse_json(self.raw(name), f"{self.what}: {name}")


def _inside(root: Path, name: str) -> Path:
    """A blob name from a manifest as a path under root; `..` and absolute names refused."""
    if not name or name.startswith("/") or ".." in name.split("/"):
        raise SourceError(f"{root}: blob name {name!r} points outside the archive")
    return root.joinpath(*name.split("/"))


def _open_regular(root: Path, name: str, what: str) -> int:
    """A descriptor of a blob of a layout folder: a regular file inside the folder, reached
    through no symlink (neither the blob nor a folder on its way), never a FIFO or device
    (opened non-blocking, then checked). The layout is image content: a blob linked to a
    host file must neither be read nor have its bytes quoted."""
    path = _inside(root, name)
    top = os.path.realpath(root)
    folder = os.path.realpath(path.parent)
    if folder != top and not folder.startswith(top.rstrip("/") + "/"):
        raise SourceError(f"{what}: {name} lies outside the layout (through a symlinked folder)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
                     | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SourceError(f"{what}: {name} is a symlink; blobs must be regular files "
                              "inside the layout") from None
        raise SourceError(f"{what}: {name} is missing ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SourceError(f"{what}: {name} is not a regular file")
    os.set_blocking(fd, True)
    return fd


def _parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"{what} is not valid JSON ({exc})") from None


# -- choosing the image -------------------------------------------------------------------------

@dataclass
class _Candidate:
    """One image an archive holds."""

    config: str
    layers: list[str]
    tags: list[str] = field(default_factory=list)
    platform: Platform | None = None


def _variant(arch: str, variant: Any) -> str | None:
    ok = isinstance(variant, str) and (arch, variant) not in (("arm64", "v8"), ("amd64", "v1"))
    return variant if ok else None


def parse_platform(text: str | None) -> Platform:
    """`linux/arm64[/v8]` -> (os, arch, variant); None -> the host's platform."""
    if text is None:
        machine = host.machine()
        variant = {"armv7l": "v7", "armv6l": "v6"}.get(machine)
        arch = "arm" if variant else {v: k for k, v in ARCH_NAMES.items()}.get(machine, machine)
        return "linux", arch, variant
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigError(f"platform {text!r} is not OS/ARCH[/VARIANT] (e.g. linux/arm64)")
    return parts[0], parts[1], _variant(parts[1], parts[2] if len(parts) == 3 else None)


def _platform_of(config: Any) -> Platform:
    if not isinstance(config, dict):
        return "", "", None  # reported as malformed where the config is read
    arch = str(config.get("architecture") or "")
    return str(config.get("os") or ""), arch, _variant(arch, config.get("variant"))


def _text(p: Platform) -> str:
    return "/".join(x for x in p if x)


def _split_ref(ref: str) -> tuple[str, str, str | None]:
    """(kind, path, selector): the path is the longest prefix that exists, as skopeo does."""
    kind, _, rest = ref.partition(":")
    if not os.path.exists(rest):
        for i, char in enumerate(rest):
            if char == ":" and os.path.exists(rest[:i]):
                return kind, rest[:i], rest[i + 1:]
    return kind, rest, None


def _blob_name(desc: Any, ref: str) -> str:
    digest = desc.get("digest") if isinstance(desc, dict) else None
    m = _DIGEST.match(digest) if isinstance(digest, str) else None
    if m is None:
        raise SourceError(f"{ref}: descriptor with a missing or malformed digest {digest!r}")
    return f"blobs/{m.group(1)}/{m.group(2)}"


#: the engine decodes an image config into typed fields and refuses one that does not fit
_CONFIG_TYPES: dict[str, type] = {"User": str, "WorkingDir": str, "StopSignal": str,
                                  "Env": list, "Cmd": list, "Entrypoint": list, "Labels": dict,
                                  "ExposedPorts": dict, "Volumes": dict, "Healthcheck": dict}


def _checked_config(cfg: Any, what: str) -> dict[str, Any]:
    """The config's `config` object as the engine shows it (typed; Cmd/Entrypoint lists)."""
    if not isinstance(cfg, dict | None):
        raise SourceError(f"{what}: 'config' is not an object")
    # a string Cmd/Entrypoint is a one-word list to the engine
    out: dict[str, Any] = {k: [v] if k in ("Cmd", "Entrypoint") and isinstance(v, str) else v
                           for k, v in (cfg or {}).items()}
    for key, kind in _CONFIG_TYPES.items():
        value = out.get(key)
        items = list(value.values()) if isinstance(value, dict) and key == "Labels" else value
        if value is not None and (not isinstance(value, kind) or isinstance(items, list) and not
                                  all(isinstance(x, str) for x in items)):
            raise SourceError(f"{what}: config field {key} is not a {kind.__name__} of strings"
                              if kind is not str else f"{what}: config field {key} is not a str")
    return out


def _diff_ids(config: dict[str, Any], layers: list[str], what: str) -> list[str]:
    """The config's `rootfs.diff_ids`, one digest per layer of the manifest: without them no
    layer could be checked and the image id would not name the content, so the engine
    refuses such an image and so does this."""
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise SourceError(f"{what}: no rootfs.diff_ids list, so its layers cannot be verified "
                          "(the engine refuses such an image)")
    if len(diff_ids) != len(layers):
        raise SourceError(f"{what}: its rootfs.diff_ids name {len(diff_ids)} layers, the "
                          f"manifest {len(layers)}; the layers cannot be verified")
    for diff_id in diff_ids:
        if not isinstance(diff_id, str) or not _DIGEST.match(diff_id):
            raise SourceError(f"{what}: rootfs.diff_ids holds a malformed digest "
                              f"{str(diff_id)[:80]!r}")
    return diff_ids


class ArchiveSource:
    """An image in a `docker save` tarball or an OCI layout; see `open_archive`."""

    #: its layers are read from the archive's blobs, never in place
    reads_in_place = False

    def __init__(self, ref: str, platform: str | None = None) -> None:
        self.ref = ref
        self._want, self._explicit = parse_platform(platform), platform is not None
        self._kind, path, self._selector = _split_ref(ref)
        if not os.path.exists(path):
            raise ImageNotFound(f"{ref}: no such file or folder {path!r}")
        self._blobs = _Blobs(Path(path), ref)
        self._layers: list[tuple[str, str | None]] = []
        self._info: ImageInfo | None = None

    def _candidates(self) -> list[_Candidate]:
        blobs, ref = self._blobs, self.ref
        if self._kind == "docker-archive":
            if not blobs.has("manifest.json"):
                raise SourceError(f"{ref}: no manifest.json (not a `docker save` archive)")
            entries = blobs.json("manifest.json")
            if not isinstance(entries, list) or not entries:
                raise SourceError(f"{ref}: manifest.json lists no image")
            if not all(isinstance(e, dict) and isinstance(e.get("Config"), str)
                       and isinstance(e.get("Layers"), list) for e in entries):
                raise SourceError(f"{ref}: manifest.json entry without Config/Layers")
            return [_Candidate(e["Config"], [str(x) for x in e["Layers"]],
                               [str(t) for t in e.get("RepoTags") or []]) for e in entries]
        if not blobs.has("index.json"):
            raise SourceError(f"{ref}: no index.json (not an OCI image layout)")
        found = []
        for desc in self._descriptors(blobs.json("index.json"), "index.json", 0):
            tag = (desc.get("annotations") or {}).get(_REF_NAME)
            manifest = blobs.json(_blob_name(desc, ref))
            try:
                config = _blob_name(manifest["config"], ref)
                layers = [_blob_name(d, ref) for d in manifest["layers"]]
            except (KeyError, TypeError):
                raise SourceError(f"{ref}: manifest {desc.get('digest')} has no config "
                                  "or layers") from None
            plat = desc.get("platform")
            found.append(_Candidate(config, layers, [str(tag)] if tag else [],
                                    _platform_of(plat) if isinstance(plat, dict) else None))
        return found

    def _descriptors(self, index: Any, where: str, depth: int) -> Iterator[dict[str, Any]]:
        """Image manifest descriptors of an index, nested indexes expanded."""
        manifests = index.get("manifests") if isinstance(index, dict) else None
        if depth > MAX_NESTING or not isinstance(manifests, list):
            raise SourceError(f"{self.ref}: {where} has no manifests list (or nests too deep)")
        for desc in manifests:
            if not isinstance(desc, dict):
                raise SourceError(f"{self.ref}: {where} holds a malformed descriptor")
            if desc.get("mediaType") in _INDEX_TYPES:
                name = _blob_name(desc, self.ref)
                for inner in self._descriptors(self._blobs.json(name), name, depth + 1):
                    if isinstance(desc.get("annotations"), dict):
                        inner.setdefault("annotations", desc["annotations"])
                    yield inner
            elif (desc.get("platform") or {}).get("os") != "unknown":  # buildx attestations
                yield desc

    def _select(self) -> _Candidate:
        found, sel = self._candidates(), self._selector
        if sel is not None:
            if sel.startswith("@") and sel[1:].isdigit():
                found = found[int(sel[1:]):int(sel[1:]) + 1]
            else:
                found = [c for c in found if sel in c.tags or f"{sel}:latest" in c.tags]
            if not found:
                raise ImageNotFound(f"{self.ref}: no image {sel!r} in the archive")
        for cand in found:
            if cand.platform is None:
                cand.platform = _platform_of(self._blobs.json(cand.config))
        if len(found) == 1 and not self._explicit:
            return found[0]
        want = self._want
        for cand in found:
            have = cand.platform or ("", "", None)
            if want[:2] == have[:2] and want[2] in (None, have[2]):
                return cand
        have_all = ", ".join(sorted({_text(c.platform) for c in found if c.platform}))
        raise ImageNotFound(f"{self.ref}: no image for platform {_text(want)} (the archive "
                            f"holds {have_all or 'no platform'}); choose one with --platform")

    def inspect(self) -> ImageInfo:
        """Identity and config; the image id is the digest of the config blob, as the engine's."""
        if self._info is None:
            image = self._select()
            raw = self._blobs.raw(image.config)
            what = f"{self.ref}: config {image.config}"
            config = _parse_json(raw, what)
            if not isinstance(config, dict):
                raise SourceError(f"{what} is not a JSON object")
            self._layers = list(zip(image.layers, _diff_ids(config, image.layers, what)))
            os_name, arch, _ = _platform_of(config)
            variant = config.get("variant") if isinstance(config.get("variant"), str) else None
            self._info = ImageInfo(
                ref=self.ref, image_id="sha256:" + hashlib.sha256(raw).hexdigest(),
                arch=image_arch(arch, variant, self.ref), os=os_name, variant=variant or None,
                config=_checked_config(config.get("config"), what),
                size=sum(self._blobs.size(n) for n in image.layers),
                content=self._layers_digest(image.layers))
        return self._info

    def _layers_digest(self, layers: list[str]) -> str:
        """A digest of the layer blobs as they lie in the archive: the cache key of an image
        whose config another archive may reuse over other layers (they would fail their
        diff ids when read, but a cache hit reads nothing)."""
        digest = hashlib.sha256()
        for name in layers:
            blob = hashlib.sha256()
            with self._blobs.open(name) as stream:
                while chunk := stream.read(CHUNK):
                    blob.update(chunk)
            digest.update(blob.digest())
        return "layers:" + digest.hexdigest()

    @contextlib.contextmanager
    def rootfs(self, run_id: str) -> Iterator[MergedReader]:
        """The merged filesystem, read as the engine's export would show it (`run_id` is
        unused: no container)."""
        config = self.inspect().config
        reader = MergedReader(LayerMerge(self._blobs, self._layers, self.ref,
                                         config.get("WorkingDir") or "",
                                         list(config.get("Volumes") or ())))
        try:
            yield reader
        finally:
            reader.close()


def open_archive(ref: str, platform: str | None = None) -> ArchiveSource:
    """The source of a `docker-archive:`, `oci:` or `oci-archive:` reference."""
    if ref.partition(":")[0] not in ("docker-archive", "oci", "oci-archive"):
        raise ConfigError(f"{ref}: not a daemonless reference")
    return ArchiveSource(ref, platform)
