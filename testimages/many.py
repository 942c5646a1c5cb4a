"""An image of many small files, for the memory bench (bench/many_files_bench.py): a static
busybox and the trees of a Node and a Python application's dependencies (`node_modules`
packages, `site-packages` distributions with their dist-info), spread over folders as deep
and named as such trees are.

Generated as one tar stream straight into `docker import` (a million files never touch the
disk as files), tagged by the hash of this module's source and the file count.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import random
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator

from testimages import REPO, _image_exists

APPLETS = ("sh", "ls", "cat", "find", "sha256sum", "env", "true")
_WORDS = ("core", "util", "utils", "parse", "parser", "stream", "http", "json", "async", "fs",
          "path", "glob", "minimatch", "debug", "color", "chalk", "event", "emitter", "buffer",
          "string", "array", "object", "assign", "define", "property", "is", "has", "get",
          "set", "type", "types", "babel", "plugin", "preset", "loader", "webpack", "rollup",
          "eslint", "config", "schema", "validate", "yaml", "ini", "semver", "request",
          "client", "server", "socket", "proxy", "agent", "cache", "lru", "queue", "retry",
          "promise", "signal", "exit", "cli", "args", "option", "format", "date", "time")
_SUBDIRS = ("lib", "dist", "src", "build", "esm", "cjs", "internal", "helpers", "types",
            "test", "fixtures", "locale", "compat", "vendor")
_NODE_EXT = (".js", ".js", ".js", ".d.ts", ".mjs", ".cjs", ".map", ".json")
_PY_EXT = (".py", ".py", ".py", ".pyi", ".pyc", ".txt", ".json")
_FILLER = bytes(range(32, 127)) * 64


def tag(files: int) -> str:
    """`harness-test/many-files:HASH`, HASH covering this module's source and the count."""
    h = hashlib.sha256(inspect.getsource(sys.modules[__name__]).encode())
    h.update(str(files).encode())
    return f"{REPO}/many-files:{h.hexdigest()[:12]}-{files}"


def build(files: int = 1_000_000) -> str:
    """The image's tag; generated and imported when not there yet."""
    name = tag(files)
    if _image_exists(name):
        return name
    proc = subprocess.Popen(["docker", "import", "--change", 'CMD ["/bin/sh"]', "-", name],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None
    with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        for member, data in _members(files):
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    proc.stdin.close()
    err = proc.stderr.read() if proc.stderr is not None else b""
    if proc.wait() != 0:
        raise RuntimeError(f"docker import of {name} failed: {err.decode(errors='replace')}")
    return name


def _dir(path: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(path)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, None


def _file(path: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(path)
    info.size, info.mode = len(data), mode
    return info, data


def _content(rng: random.Random, path: str) -> bytes:
    """Mostly a few hundred bytes, some a few KiB; each file's bytes its own."""
    size = rng.randint(64, 511) if rng.random() < 0.8 else rng.randint(512, 3000)
    head = f"// {path}\n".encode()
    start = rng.randrange(len(_FILLER) - size)
    return head + _FILLER[start:start + max(0, size - len(head))]


def _members(files: int) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    rng = random.Random(files)
    for d in ("bin", "etc", "tmp", "app", "usr", "usr/local", "usr/local/lib",
              "usr/local/lib/python3.11", "usr/local/lib/python3.11/site-packages",
              "app/node_modules"):
        yield _dir(d)
    with open(shutil.which("busybox") or "/bin/busybox", "rb") as f:
        yield _file("bin/busybox", f.read(), 0o755)
    for applet in APPLETS:
        link = tarfile.TarInfo(f"bin/{applet}")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        yield link, None
    yield _file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    yield _file("etc/group", b"root:x:0:\n")
    yield _file("etc/os-release", b'ID=harness-many\nVERSION_ID="1"\n')
    left = files - 4
    n = 0
    scopes: set[str] = set()
    while left > 0:
        n += 1
        node = n % 2 == 0
        name = "-".join(rng.sample(_WORDS, rng.randint(1, 3)))
        version = f"{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}"
        if node:
            scope = f"@{rng.choice(_WORDS)}/" if rng.random() < 0.2 else ""
            root = f"app/node_modules/{scope}{name}{n}"
            if scope and scope not in scopes:
                scopes.add(scope)
                yield _dir(f"app/node_modules/{scope[:-1]}")
            manifest = json.dumps({"name": f"{scope}{name}{n}", "version": version,
                                   "license": "MIT", "main": "lib/index.js"}).encode()
            meta = [("package.json", manifest), ("README.md", None), ("LICENSE", None)]
            ext = _NODE_EXT
        else:
            root = f"usr/local/lib/python3.11/site-packages/{name.replace('-', '_')}{n}"
            dist = f"{root}-{version}.dist-info"
            yield _dir(dist)
            metadata = (f"Metadata-Version: 2.1\nName: {name}{n}\nVersion: {version}\n"
                        "License: MIT\n").encode()
            for part, data in (("METADATA", metadata), ("RECORD", None), ("WHEEL", None),
                               ("top_level.txt", None)):
                yield _file(f"{dist}/{part}", data or _content(rng, f"{dist}/{part}"))
                left -= 1
            meta = [("__init__.py", None)]
            ext = _PY_EXT
        yield _dir(root)
        for part, data in meta:
            yield _file(f"{root}/{part}", data or _content(rng, f"{root}/{part}"))
            left -= 1
        folders = [root]
        for _ in range(rng.randint(1, 10)):  # nested folders, up to five below the package
            parent = rng.choice(folders)
            if parent.count("/") - root.count("/") >= 5:
                continue
            folder = f"{parent}/{rng.choice(_SUBDIRS)}{len(folders)}"
            folders.append(folder)
            yield _dir(folder)
        for i in range(min(left, rng.randint(5, 90))):
            folder = rng.choice(folders)
            path = f"{folder}/{rng.choice(_WORDS)}-{rng.choice(_WORDS)}{i}{rng.choice(ext)}"
            yield _file(path, _content(rng, path))
            left -= 1
