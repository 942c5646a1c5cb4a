"""Daemonless sources: an image read from a `docker save` tarball or an OCI layout, no engine.

    docker-archive:PATH[:REPO:TAG|:@N]   `docker save` output (layers plain tar or compressed)
    oci:PATH[:REF]  oci-archive:PATH[:REF]   an OCI image layout, as a folder or as one tar

The layers are merged into ONE tar stream, top layer first, as the engine's overlay2 driver
shows them to `docker export` of a container it created (each rule checked against the engine):

- entries shadowed by an upper layer or whited out (`.wh.NAME`, an overlay char device 0/0) are
  skipped; a folder is opaque (hides the lower layers' content of its path) when its layer holds
  `.wh..wh..opq` in it, or when its tar entry carries the PAX record
  `SCHILY.xattr.trusted.overlay.opaque=y` (the engine writes that xattr to disk, and the kernel
  honours it; another value, `user.` or `LIBARCHIVE.xattr.` records do nothing). At a layer's
  root either mark is ignored, as the kernel ignores an opaque root of a lower layer; a folder
  carrying `trusted.overlay.redirect` above the lowest layer is refused (the kernel follows it);
- names are clamped at the root (layers are applied in a chroot); folders a layer lacks are made
  0755 root; PAX global headers are ignored (the engine's Go tar reader leaves them out);
- the container init layer's folders (/dev, /etc, /proc, /sys) appear when the image has none;
  symlinks are 0777; a hard link group is led by its first surviving member in walk order, with
  the owner and mode of its last entry;
- the config's WorkingDir, made absolute, its symlinks followed inside the root, is created with
  its missing parents as 0755 root folders, as the engine does when it creates the container;
  what makes the engine refuse to create one (WorkingDir or a config volume on a non-folder, a
  non-folder inside the path, a component over 255 bytes, over 255 path steps) raises
  SourceError, at the end of the stream (only the whole image shows it).

Nothing is unpacked: each layer is streamed twice (an index pass, which also checks the layer
against its diff id, then the emitting pass); memory grows with paths, not file sizes.
"""

from __future__ import annotations

import bz2
import contextlib
import hashlib
import importlib
import io
import json
import lzma
import os
import platform as host
import posixpath
import re
import tarfile
import zlib
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.engine import ARCH_NAMES, ImageInfo, uname_arch
from harness.errors import ConfigError, ImageNotFound, SourceError
from harness.snapshot.tarstream import TarFormatError, TarReader
from harness.tarwrite import PartsReader, header, link_header

CHUNK = 1 << 20
MAX_JSON = 16 << 20  # manifests and configs are small; a bigger one is not what it claims
MAX_NESTING = 4      # OCI indexes pointing at indexes: deeper is a loop or an attack
OPAQUE, WHITEOUT = ".wh..wh..opq", ".wh."
#: xattrs of a layer's folder (PAX `SCHILY.xattr.` records) that the engine's overlay mount obeys
OPAQUE_XATTR, REDIRECT_XATTR = "trusted.overlay.opaque", "trusted.overlay.redirect"
NAME_MAX = 255   # a longer path component: ENAMETOOLONG
MAX_STEPS = 255  # moby's evalSymlinksInScope gives up after this many path steps
#: what the engine's init layer adds to every container (daemon/initlayer): folders when the
#: image has none, files (dropped by the walk) that replace whatever non-folder is there
INIT_DIRS = ("/dev", "/dev/pts", "/dev/shm", "/proc", "/sys", "/etc")
INIT_PATHS = frozenset({*INIT_DIRS, "/.dockerenv", "/etc/resolv.conf", "/etc/hosts",
                        "/etc/hostname", "/dev/console", "/etc/mtab"})
_DIGEST = re.compile(r"^(sha256|sha512):([0-9a-f]{64}|[0-9a-f]{128})$")
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json")
_REF_NAME = "org.opencontainers.image.ref.name"
_NONDATA = (b"1", b"2", b"3", b"4", b"5", b"6")
Platform = tuple[str, str, "str | None"]


# -- blobs of a folder or of an uncompressed tar, as bounded streams ---------------------------

class _Raw(io.RawIOBase):
    """A readable raw stream; subclasses fill `readinto`."""

    def readable(self) -> bool:
        return True


class _Slice(_Raw):
    """`size` bytes of a file from `offset` (a member of the archive tar)."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._file.seek(offset)
        self._left = size

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
        """Whether the blob exists."""
        if self._members is not None:
            return name in self._members
        return _inside(self.path, name).is_file()

    def open(self, name: str) -> IO[bytes]:
        """A stream of one blob."""
        if self._members is None:
            try:
                return open(_inside(self.path, name), "rb")
            except OSError as exc:
                raise SourceError(f"{self.what}: {name} is missing ({exc.strerror})") from None
        if name not in self._members:
            raise SourceError(f"{self.what}: {name} is missing from the archive")
        return io.BufferedReader(_Slice(self.path, *self._members[name]), CHUNK)

    def size(self, name: str) -> int:
        """The blob's size in bytes."""
        if self._members is not None:
            return self._members.get(name, (0, 0))[1]
        return _inside(self.path, name).stat().st_size

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


def _parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"{what} is not valid JSON ({exc})") from None


class _Inflate(_Raw):
    """gzip (one or more members) through zlib, the output bounded by the caller's buffer."""

    def __init__(self, raw: IO[bytes], what: str) -> None:
        self._raw, self._what = raw, what
        self._z, self._input = zlib.decompressobj(31), b""

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            while True:
                if self._z.eof:
                    rest = self._z.unused_data or self._raw.read(CHUNK)
                    if not rest.strip(b"\0"):
                        return 0  # the end of the last member (zero padding tolerated)
                    self._z, self._input = zlib.decompressobj(31), rest
                elif not self._input:
                    self._input = self._raw.read(CHUNK)
                    if not self._input:
                        raise SourceError(f"{self._what}: gzip stream is truncated")
                data = self._z.decompress(self._input, len(view))
                self._input = self._z.unconsumed_tail
                if data:
                    view[:len(data)] = data
                    return len(data)
        except zlib.error as exc:
            raise SourceError(f"{self._what}: damaged gzip stream ({exc})") from None

    def close(self) -> None:
        self._raw.close()
        super().close()


def _decompressed(raw: IO[bytes], what: str) -> IO[bytes]:
    """A layer's tar stream, whatever its compression (known by its magic bytes)."""
    magic = raw.peek(6)[:6] if isinstance(raw, io.BufferedReader) else b""
    reader: Any = raw
    if magic.startswith(b"\x1f\x8b"):
        reader = _Inflate(raw, what)
    elif magic.startswith(b"\x28\xb5\x2f\xfd"):
        try:
            zstd: Any = importlib.import_module("zstandard")
        except ImportError:
            raise SourceError(f"{what} is zstd-compressed; install the 'zstandard' Python "
                              "module to read it") from None
        reader = zstd.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    elif magic.startswith(b"BZh"):
        reader = bz2.BZ2File(raw)
    elif magic.startswith(b"\xfd7zXZ\x00"):
        reader = lzma.LZMAFile(raw)
    return raw if reader is raw else io.BufferedReader(reader, CHUNK)


class _Hashing(_Raw):
    """A stream passed through and hashed (a layer checked against its diff id)."""

    def __init__(self, raw: IO[bytes], algorithm: str) -> None:
        self._raw, self.digest = raw, hashlib.new(algorithm)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        got = int(self._raw.readinto(view))  # type: ignore[attr-defined]
        self.digest.update(view[:got])
        return got


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


class ArchiveSource:
    """An image in a `docker save` tarball or an OCI layout; see `open_archive`."""

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
            diff_ids = (config.get("rootfs") or {}).get("diff_ids") \
                if isinstance(config.get("rootfs"), dict) else None
            if diff_ids is not None and (not isinstance(diff_ids, list) or len(diff_ids) != len(
                    image.layers) or not all(isinstance(d, str) for d in diff_ids)):
                raise SourceError(f"{what}: its diff_ids do not match the manifest's "
                                  f"{len(image.layers)} layers")
            self._layers = list(zip(image.layers, diff_ids or [None] * len(image.layers)))
            os_name, arch, _ = _platform_of(config)
            variant = config.get("variant") if isinstance(config.get("variant"), str) else None
            self._info = ImageInfo(
                ref=self.ref, image_id="sha256:" + hashlib.sha256(raw).hexdigest(),
                arch=uname_arch(arch, variant), os=os_name, variant=variant or None,
                config=_checked_config(config.get("config"), what),
                size=sum(self._blobs.size(n) for n in image.layers))
        return self._info

    @contextlib.contextmanager
    def rootfs(self, run_id: str) -> Iterator[IO[bytes]]:
        """The merged filesystem as one tar stream (`run_id` is unused: no container)."""
        config = self.inspect().config
        parts = _Merge(self._blobs, self._layers, self.ref, config.get("WorkingDir") or "",
                       list(config.get("Volumes") or ())).parts()
        try:
            yield io.BufferedReader(PartsReader(parts), CHUNK)
        finally:
            parts.close()


def open_archive(ref: str, platform: str | None = None) -> ArchiveSource:
    """The source of a `docker-archive:`, `oci:` or `oci-archive:` reference."""
    if ref.partition(":")[0] not in ("docker-archive", "oci", "oci-archive"):
        raise ConfigError(f"{ref}: not a daemonless reference")
    return ArchiveSource(ref, platform)


# -- the merge ----------------------------------------------------------------------------------

def clean_path(name: str) -> str:
    """A member name as the engine applies it, in a chroot: `..` stops at the root."""
    parts: list[str] = []
    for part in name.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def _parent(path: str) -> str:
    return path[:path.rfind("/")] or "/"


def walk_key(path: str) -> list[bytes]:
    """The order of the engine's export walk: by path component, as bytes."""
    return path.encode("utf-8", "surrogateescape").split(b"/")


def _owner(value: int, before: int = 0) -> int:
    return value if value >= 0 else before  # lchown(-1) leaves the owner as it was


@dataclass
class _Group:
    """A hard link group of one layer; its first entry carries the content."""

    members: list[str]
    kind: bytes
    mode: int
    uid: int
    gid: int
    primary: str | None = None


@dataclass
class _LayerIndex:
    """What the first pass learns of a layer."""

    paths: set[str] = field(default_factory=set)
    nondirs: set[str] = field(default_factory=set)
    implied: set[str] = field(default_factory=set)
    whiteouts: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)
    groups: dict[str, _Group] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # link entry -> its group's first


class _Merge:
    """Layers, top first, into one tar stream: a generator of byte parts."""

    def __init__(self, blobs: _Blobs, layers: list[tuple[str, str | None]], ref: str,
                 workdir: str = "", volumes: Iterable[str] = ()) -> None:
        self._blobs, self._layers, self._ref = blobs, layers, ref
        self._workdir, self._volumes = workdir, sorted(volumes)
        self._exact: set[str] = set()    # paths upper layers hold (or white out)
        self._subtree: set[str] = set()  # paths below which upper layers hide everything
        self._cache: dict[str, bool] = {}
        self._dirs: set[str] = set()     # the folders shown
        #: the non-folders shown (a symlink's target, else None), kept only when creating the
        #: container looks paths up (a WorkingDir or a volume other than the root)
        self._others: dict[str, str | None] | None = None
        if any(clean_path(p) != "/" for p in [workdir, *self._volumes] if p):
            self._others = {}

    def _stream(self, name: str) -> IO[bytes]:
        return _decompressed(self._blobs.open(name), f"{self._ref}: layer {name}")

    def _hidden(self, path: str) -> bool:
        """Whether upper layers hide a path: shadowed, whited out, under an opaque folder."""
        if path in self._exact or path in self._subtree:
            return True
        if not self._subtree:
            return False
        chain, probe = [], _parent(path)
        while probe not in self._cache:
            chain.append(probe)
            if probe == "/":
                break
            probe = _parent(probe)
        hidden = self._cache.get(probe, False)
        for folder in reversed(chain):  # cached per folder: a walk-ordered layer costs O(1)
            hidden = hidden or folder in self._subtree
            self._cache[folder] = hidden
        return hidden

    def _visible(self, path: str, nondir: bool) -> bool:
        # the init layer unlinks whatever is not a folder at its paths
        return not self._hidden(path) and not (nondir and path in INIT_PATHS)

    def _index(self, name: str, diff_id: str | None, lowest: bool) -> _LayerIndex:
        idx, explicit = _LayerIndex(), set()
        algorithm, _, expected = (diff_id or "sha256:").partition(":")
        if algorithm not in ("sha256", "sha512"):
            algorithm, expected = "sha256", ""
        with self._stream(name) as stream:
            hashing = _Hashing(stream, algorithm)
            for m in TarReader(io.BufferedReader(hashing, CHUNK)):
                path = clean_path(m.name)
                if path == "/":
                    continue
                parent, base = _parent(path), path[path.rfind("/") + 1:]
                idx.implied.add(parent)
                if base.startswith(WHITEOUT) or (m.type == b"3" and not m.devmajor | m.devminor):
                    if base == OPAQUE:
                        if parent != "/":  # the kernel ignores an opaque root
                            idx.opaque.add(parent)
                    elif not base.startswith(WHITEOUT):
                        idx.whiteouts.add(path)  # an overlay whiteout: char device 0/0
                    elif base != WHITEOUT:
                        idx.whiteouts.add(parent.rstrip("/") + "/" + base[len(WHITEOUT):])
                    continue
                if path in idx.paths:
                    raise SourceError(f"{self._ref}: layer {name} holds {path!r} twice "
                                      "(the engine refuses such a layer)")
                idx.paths.add(path)
                if m.type == b"5":
                    explicit.add(path)
                    if m.xattrs:
                        self._overlay_xattrs(name, path, m.xattrs, idx, lowest)
                    continue
                idx.nondirs.add(path)
                if m.type != b"1":
                    idx.groups[path] = _Group([path], m.type, 0o777 if m.type == b"2" else m.mode,
                                              _owner(m.uid), _owner(m.gid))
                    continue
                root = clean_path(m.linkname)
                root = idx.links.get(root, root)
                group = idx.groups.get(root)
                if group is not None:  # else a link to nothing before it: kept as written
                    idx.links[path] = root
                    group.members.append(path)
                    group.uid, group.gid = _owner(m.uid, group.uid), _owner(m.gid, group.gid)
                    if group.kind != b"2":  # chmod through a link reaches the inode
                        group.mode = m.mode
            while hashing.read(CHUNK):
                pass  # the end-of-archive padding is part of the digest
        if expected and hashing.digest.hexdigest() != expected:
            raise SourceError(f"{self._ref}: layer {name} does not match its diff id {diff_id} "
                              "(damaged or truncated)")
        idx.groups = {k: g for k, g in idx.groups.items() if len(g.members) > 1}
        implied: set[str] = set()
        for folder in idx.implied:
            while folder != "/" and folder not in explicit and folder not in implied:
                implied.add(folder)
                folder = _parent(folder)
        idx.implied = implied - idx.paths
        idx.paths |= idx.implied
        return idx

    def _overlay_xattrs(self, name: str, path: str, xattrs: dict[str, str], idx: _LayerIndex,
                        lowest: bool) -> None:
        """A folder's xattr records as the engine's overlay mount obeys them."""
        if xattrs.get(OPAQUE_XATTR) == "y":  # exactly "y": the kernel's test
            idx.opaque.add(path)
        if REDIRECT_XATTR in xattrs and not lowest:
            raise SourceError(f"{self._ref}: layer {name}: {path} carries the xattr "
                              f"{REDIRECT_XATTR}, which the kernel follows and this reader "
                              "does not (load the image into the engine to read it)")

    def parts(self) -> Generator[bytes | memoryview, None, None]:
        """The merged tar stream, in parts."""
        for number, (name, diff_id) in enumerate(reversed(self._layers)):
            try:
                idx = self._index(name, diff_id, number == len(self._layers) - 1)
                yield from self._emit(name, idx)
            except (TarFormatError, OSError, EOFError, ValueError, lzma.LZMAError) as exc:
                raise SourceError(f"{self._ref}: layer {name} is unreadable ({exc})") from None
            except Exception as exc:
                if type(exc).__name__ != "ZstdError":
                    raise
                raise SourceError(f"{self._ref}: layer {name}: damaged zstd ({exc})") from None
            for path in idx.implied:
                if self._visible(path, False):
                    self._dirs.add(path)
                    yield header(path, b"5", 0o755, 0, 0)
            if number < len(self._layers) - 1:  # what it holds and hides covers lower layers
                self._exact |= idx.paths | idx.whiteouts
                self._subtree |= idx.nondirs | idx.whiteouts | idx.opaque
                self._cache.clear()
        for path in INIT_DIRS:
            if path not in self._dirs:
                self._dirs.add(path)
                yield header(path, b"5", 0o755, 0, 0)
        if self._others is not None:
            for path in sorted(INIT_PATHS.difference(INIT_DIRS, self._dirs)):
                self._others[path] = "/proc/mounts" if path == "/etc/mtab" else None
            view = _RootView(self._dirs, self._others, self._ref)
            for path in view.create(self._workdir, self._volumes):
                yield header(path, b"5", 0o755, 0, 0)
        yield bytes(1024)

    def _shown(self, paths: Iterable[str], kind: bytes, link: str) -> None:
        """Note what `_RootView` needs of members shown."""
        if kind == b"5":
            self._dirs.update(paths)
        elif self._others is not None:
            for path in paths:
                self._others[path] = link if kind == b"2" else None

    def _emit(self, name: str, idx: _LayerIndex) -> Iterator[bytes | memoryview]:
        with self._stream(name) as stream:
            reader = TarReader(stream)
            for m in reader:
                path = clean_path(m.name)
                base = path[path.rfind("/") + 1:]
                if path == "/" or base.startswith(WHITEOUT) or (
                        m.type == b"3" and not m.devmajor | m.devminor):
                    continue
                if path in idx.links:  # a later member of a hard link group
                    first = idx.groups[idx.links[path]]
                    if first.primary not in (None, path) and self._visible(path, True):
                        yield link_header(path, first.primary or "", first.mode, first.uid,
                                          first.gid)
                    continue
                size = 0 if m.type in _NONDATA else m.size
                group = idx.groups.get(path)
                if group is not None:  # a group's first entry: its content, under the primary
                    alive = [p for p in group.members if self._visible(p, True)]
                    if not alive:
                        continue
                    group.primary = min(alive, key=walk_key)
                    self._shown(alive, group.kind, m.linkname)
                    yield header(group.primary, m.type, group.mode, group.uid, group.gid, size,
                                 m.linkname, m.devmajor, m.devminor)
                elif self._visible(path, m.type != b"5"):
                    self._shown((path,), m.type, m.linkname)
                    yield header(path, m.type, 0o777 if m.type == b"2" else m.mode,
                                 _owner(m.uid), _owner(m.gid), size,
                                 clean_path(m.linkname) if m.type == b"1" else m.linkname,
                                 m.devmajor, m.devminor)
                else:
                    continue
                if size:
                    yield from reader.chunks()
                    if size % 512:
                        yield bytes(512 - size % 512)
                if group is not None and group.primary != path and self._visible(path, True):
                    yield link_header(path, group.primary or "", group.mode, group.uid,
                                      group.gid)


# -- what the engine does to the merged view when it creates the container ----------------------

class _RootView:
    """The merged view, as the engine's create looks paths up in it (moby's
    `container.SetupWorkingDirectory` through `symlink.FollowSymlinkInScope` and
    `idtools.MkdirAllAndChownNew`, then its check of the config's volumes)."""

    def __init__(self, dirs: set[str], others: dict[str, str | None], ref: str) -> None:
        self._dirs, self._others, self._ref = dirs, others, ref

    def _refused(self, what: str, why: str) -> SourceError:
        return SourceError(f"{self._ref}: the engine refuses to create a container of this "
                           f"image: {what}: {why}")

    def lstat(self, path: str, what: str) -> tuple[str, str | None] | None:
        """("dir"|"other", None) or ("symlink", target) of a clean absolute path; None when it
        is missing; the lookup's errors (a non-folder inside the path, a name too long)."""
        if path == "/":
            return "dir", None
        prefix, parts = "", path[1:].split("/")
        found: tuple[str, str | None] | None = None
        for part in parts:
            if found is not None and found[0] != "dir":
                raise self._refused(what, f"lstat {path}: not a directory")
            if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
                raise self._refused(what, f"lstat {path}: file name too long")
            prefix += "/" + part
            if prefix in self._dirs:
                found = "dir", None
            elif prefix in self._others:
                target = self._others[prefix]
                found = ("other", None) if target is None else ("symlink", target)
            else:
                return None
        return found

    def resolve(self, name: str, what: str) -> str:
        """A config path as the engine resolves it in the root: made absolute and cleaned,
        each symlink met replaced by its target, never leaving the root."""
        rest, built, steps = clean_path(name), "", 0
        while rest:
            if steps > MAX_STEPS:  # each step counts, a symlink or not
                raise self._refused(what, "evalSymlinksInScope: too many links")
            steps += 1
            part, _, rest = rest.partition("/")
            if not part:
                continue
            here = clean_path("/" + built + part)  # `..` is lexical, as in the engine
            if here == "/":
                built = ""
                continue
            found = self.lstat(here, what)
            if found is None or found[1] is None:
                built += part + "/"
                continue
            if found[1].startswith("/"):
                built = ""
            rest = found[1] + "/" + rest
        return clean_path("/" + built)

    def create(self, workdir: str, volumes: list[str]) -> list[str]:
        """The folders the engine makes for the WorkingDir (0755 root), top first."""
        made: list[str] = []
        if workdir:
            what = f"its WorkingDir {workdir!r}"
            path = self.resolve(workdir, what)
            found = self.lstat(path, what)
            if found is not None and found[0] != "dir":
                raise self._refused(what, f"Cannot mkdir: {workdir} is not a directory")
            while found is None:  # MkdirAll: the missing folders, bottom up
                if len(path[path.rfind("/") + 1:].encode("utf-8", "surrogateescape")) > NAME_MAX:
                    raise self._refused(what, f"mkdir {path}: file name too long")
                made.append(path)
                path = _parent(path)
                found = self.lstat(path, what)
            made.reverse()
            self._dirs.update(made)
        for volume in volumes:
            what = f"its volume {volume!r}"
            found = self.lstat(self.resolve(volume, what), what)
            if found is not None and found[0] != "dir":
                raise self._refused(what, "cannot mount volume over existing file")
        return made
