"""A multi-layer image made by `docker build` FROM the tiny base, whose layers hold what a
daemonless merge must get right: whiteouts, an opaque folder, changed modes and owners, a file
replaced by a folder and back, and hard links within one layer and broken across layers.

Each RUN is one layer; the tiny base has busybox but few applet links, so applets are called
through `busybox`. Built once and reused by the hash of the Dockerfile and of its base.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import importlib
import io
import json
import lzma
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from filelock import FileLock

from testimages import CACHE, REPO, build, run
from testimages import tiny

# one RUN = one layer; comments say what each layer exercises
DOCKERFILE = """\
FROM {base}
ENV LAYERED=1 BB=/bin/busybox
LABEL org.example.layered="yes"
# layer 1: content later layers change; a hard link group of three and one of two
RUN $BB mkdir -p /opt/demo/old /opt/demo/keep /opt/links /opt/demo/dir-then-file \\
 && echo a > /opt/demo/old/a && echo b > /opt/demo/old/b && echo k > /opt/demo/keep/k \\
 && echo data > /opt/links/x && $BB ln /opt/links/x /opt/links/y \\
 && $BB ln /opt/links/x /opt/links/z \\
 && echo p > /opt/links/p1 && $BB ln /opt/links/p1 /opt/links/p2 \\
 && echo f > /opt/demo/file-then-dir && echo c > /opt/demo/dir-then-file/c \\
 && $BB ln -s /nonexistent /opt/demo/absolute-link && $BB ln -s loop-b /opt/demo/loop-a \\
 && $BB ln -s loop-a /opt/demo/loop-b && $BB mkfifo -m 0600 /opt/demo/fifo
# layer 2: whiteouts (a file of the base layer, a file in a kept folder, one link of a group)
RUN rm /usr/share/demo/data.txt /opt/demo/keep/k /opt/links/y && rm -r /opt/demo/keep
# layer 3: an opaque folder (removed and made again: the lower content must vanish)
RUN rm -r /opt/demo/old && $BB mkdir /opt/demo/old && echo new > /opt/demo/old/n
# layer 4: modes and owners
RUN chmod 4755 /usr/bin/hello-demo && chmod 0700 /root && chmod 1777 /opt/demo \\
 && chown 65534:65534 /opt/links/p2 && chmod 0640 /opt/links/p2 && chmod 2711 /usr/lib
# layer 5: hard links across layers (copy-up breaks the lower group), type changes
RUN $BB ln /bin/busybox /usr/bin/bb && echo changed > /opt/links/p1 \\
 && $BB ln /opt/links/x /opt/links/a \\
 && rm /opt/demo/file-then-dir && $BB mkdir /opt/demo/file-then-dir \\
 && echo inner > /opt/demo/file-then-dir/inner \\
 && rm -r /opt/demo/dir-then-file && echo now-a-file > /opt/demo/dir-then-file
WORKDIR /opt
"""


#: what a later layer deletes but the image still ships (hidden-in-lower-layer): a private
#: key (whited out), a setuid script (whited out), an ELF program and a plain note (in a folder
#: made again, so opaque), and a tool folder replaced by a file
HIDDEN_DOCKERFILE = """\
FROM {base}
ENV BB=/bin/busybox
# layer 1: what the build leaves behind
RUN $BB mkdir -p /root/.ssh /opt/build/cache /opt/tools \\
 && printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAA\\n' > /root/.ssh/id_ed25519 \\
 && echo '#!/bin/sh' > /usr/bin/suid-helper && chmod 4755 /usr/bin/suid-helper \\
 && $BB cp /bin/busybox /opt/build/tool && echo notes > /opt/build/cache/notes.txt \\
 && echo t > /opt/tools/t
# layer 2: deleted: whiteouts, an opaque folder, a folder replaced by a file
RUN rm /root/.ssh/id_ed25519 /usr/bin/suid-helper && rm -r /opt/build && $BB mkdir /opt/build \\
 && rm -r /opt/tools && echo file > /opt/tools
"""


def build_hidden(base: str | None = None) -> str:
    """The image of `HIDDEN_DOCKERFILE` (`harness-test/hidden-layers:HASH`), built when not
    there yet."""
    return _built("hidden-layers", HIDDEN_DOCKERFILE.format(base=base or build(tiny.BASE)))


def dockerfile(base: str) -> str:
    """The Dockerfile on a given base image tag."""
    return DOCKERFILE.format(base=base)


def build_layered(base: str | None = None) -> str:
    """The layered image's tag (`harness-test/layered:HASH`), built when not there yet."""
    return _built("layered", dockerfile(base or build(tiny.BASE)))


def _built(name: str, text: str) -> str:
    """`harness-test/NAME:HASH` built from the Dockerfile `text` when not there yet (one
    builder at a time across processes)."""
    tag = f"{REPO}/{name}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    if _exists(tag):
        return tag
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE / f"{name}.build.lock")):
        if not _exists(tag):
            # the classic builder: one layer per RUN, as the tests expect (no network needed)
            run(["docker", "build", "-q", "-t", tag, "-"], input=text.encode(),
                env={**os.environ, "DOCKER_BUILDKIT": "0"})
    return tag


def _exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


# -- archives written by hand: docker-archive and OCI layouts ---------------------------------

LAYER = "application/vnd.oci.image.layer.v1.tar"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def save(tag: str, path: Path) -> Path:
    """`docker save` of one image."""
    run(["docker", "save", "-o", str(path), tag])
    return path


def read_refs(tag: str, folder: Path) -> dict[str, str]:
    """The engine image `tag` as each read mode takes it: the tag itself for `export` and
    `layers`, its `docker save` tarball and an OCI layout of it (both written in `folder`)."""
    saved = save(tag, folder / "image.tar")
    layout = folder / "oci"
    write_index(layout, [oci_image(layout, saved)])
    return {"export": tag, "layers": tag, "docker-archive": f"docker-archive:{saved}",
            "oci": f"oci:{layout}"}


def image_config(layers: list[str], arch: str = "amd64", variant: str | None = None,
                 config: dict[str, Any] | None = None) -> bytes:
    """An image config JSON (as the engine would store it) over layers of these diff ids."""
    data: dict[str, Any] = {"architecture": arch, "os": "linux",
                            "config": config if config is not None else {"Cmd": ["/bin/sh"]},
                            "rootfs": {"type": "layers", "diff_ids": layers},
                            "history": [{"created_by": "testimages.layered"} for _ in layers]}
    if variant:
        data["variant"] = variant
    return json.dumps(data, sort_keys=True).encode()


def docker_archive(out: Path, layers: list[bytes], tag: str, arch: str = "amd64",
                   variant: str | None = None, config: dict[str, Any] | None = None,
                   diff_of: list[bytes] | None = None, diff_ids: list[str] | None = None) -> Path:
    """A `docker save`-style tarball of an image made of these layer tars (bottom first),
    loadable by `docker load`: its image id is the digest of the config written here.
    `diff_of`: the uncompressed layers, when `layers` are compressed (or damaged) copies;
    `diff_ids`: their digests, when those are too large to hold (a compression bomb)."""
    diff_ids = diff_ids or ["sha256:" + hashlib.sha256(data).hexdigest() for data in diff_of or layers]
    cfg = image_config(diff_ids, arch, variant, config)
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    names = [f"{d[7:]}/layer.tar" for d in diff_ids]
    manifest = [{"Config": cfg_name, "RepoTags": [tag], "Layers": names}]
    with tarfile.open(out, "w") as tar:
        for name, data in [*zip(names, layers), (cfg_name, cfg),
                           ("manifest.json", json.dumps(manifest).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def load(archive: Path) -> str:
    """`docker load` a tarball; returns the image id the engine gives it."""
    out = run(["docker", "load", "-q", "-i", str(archive)]).stdout.decode()
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    tag = manifest[0]["RepoTags"][0]
    assert tag in out or "Loaded image" in out, out
    return tag


def _blob(layout: Path, data: bytes, media: str) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"mediaType": media, "digest": "sha256:" + digest, "size": len(data)}


def compress(data: bytes, compression: str) -> bytes:
    """A layer compressed as `docker load` and OCI layouts accept it."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    if compression == "bz2":
        return bz2.compress(data, 1)
    if compression == "xz":
        return lzma.compress(data, preset=0)
    if compression == "zstd":
        zstd: Any = importlib.import_module("zstandard")
        return bytes(zstd.ZstdCompressor().compress(data))
    return data


def _compress(data: bytes, compression: str) -> tuple[bytes, str]:
    suffix = {"gzip": "+gzip", "zstd": "+zstd"}.get(compression, "")
    return compress(data, compression), LAYER + suffix


def oci_image(layout: Path, archive: Path, compression: str = "gzip") -> dict[str, Any]:
    """Copy the image of a `docker save` tarball into an OCI layout, layers compressed, the
    config kept byte for byte (so the image id stays the engine's); returns the manifest's
    descriptor with the image's platform (not yet listed in index.json: see `write_index`)."""
    with tarfile.open(archive) as tar:
        entry = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        cfg = tar.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
        layers = [_blob(layout, *_compress(tar.extractfile(name).read(),  # type: ignore[union-attr]
                                           compression)) for name in entry["Layers"]]
    config = json.loads(cfg)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                "config": _blob(layout, cfg, "application/vnd.oci.image.config.v1+json"),
                "layers": layers}
    desc = _blob(layout, json.dumps(manifest).encode(), MANIFEST)
    desc["platform"] = {"os": config["os"], "architecture": config["architecture"],
                        **({"variant": config["variant"]} if config.get("variant") else {})}
    return desc


def write_index(layout: Path, descriptors: list[dict[str, Any]], nested: bool = False,
                ref_name: str | None = None) -> Path:
    """index.json (and oci-layout) listing these manifests; `nested` puts them in an image
    index that index.json points at, as `docker buildx` and registries lay out multi-arch."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    manifests = descriptors
    if nested:
        inner = {"schemaVersion": 2, "mediaType": INDEX, "manifests": descriptors}
        manifests = [_blob(layout, json.dumps(inner).encode(), INDEX)]
    if ref_name:
        manifests = [{**m, "annotations": {"org.opencontainers.image.ref.name": ref_name}}
                     for m in manifests]
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}
    (layout / "index.json").write_text(json.dumps(index))
    return layout


def tar_folder(folder: Path, out: Path) -> Path:
    """A tar of a folder's content (an OCI layout as `oci-archive:`)."""
    run(["tar", "-C", str(folder), "--numeric-owner", "-cf", str(out), "."])
    return out


def tar_root(root: Path) -> bytes:
    """A root folder as a layer tar."""
    return run(["tar", "-C", str(root), "--numeric-owner", "-cf", "-", "."]).stdout


def arm64_root() -> Path:
    """A tiny arm64 root: Debian's busybox-static for arm64, unpacked with dpkg-deb -x.

    The .deb is fetched with a private apt state (lists for arm64 only, under the cache), so
    the machine's own apt and dpkg configuration stay untouched."""
    target = CACHE / "arm64-busybox"
    root = target / "rootfs"
    if (target / ".done").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / ".done").exists():
            return root
        shutil.rmtree(target, ignore_errors=True)
        apt = target / "apt"
        for sub in ("lists/partial", "cache/archives/partial"):
            (apt / sub).mkdir(parents=True)
        opts = [f"-oDir::State::Lists={apt}/lists", f"-oDir::Cache={apt}/cache",
                "-oAPT::Architecture=arm64", "-oAPT::Architectures::=arm64",
                "-oDir::State::status=/dev/null", "-oDebug::NoLocking=1",
                "-oAPT::Sandbox::User=root"]
        run(["apt-get", *opts, "-q", "update"])
        run(["apt-get", *opts, "-q", "download", "busybox-static:arm64"], cwd=apt)
        deb = next(apt.glob("busybox-static_*_arm64.deb"))
        root.mkdir()
        run(["dpkg-deb", "-x", str(deb), str(root)])
        for applet in ("sh", "ls", "cat"):
            os.symlink("busybox", root / "bin" / applet)
        (root / "etc").mkdir()
        (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        shutil.rmtree(apt)
        (target / ".done").write_text(deb.name + "\n")
    return root
