"""Baselines: `DIR/NAME/ARCH/<aspect>.json`, reviewed in git like code.

Sorted keys, one record per line (so `git diff` shows one line per changed record), schema
and image identity inside. Written only on `--update-baselines`, atomically: a temp file in
the same folder, fsynced, renamed over the old one; a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness import safepath
from harness.baselineschema import check_records
from harness.errors import BaselineCorrupt, BaselineMissing, BaselineWriteError

SCHEMA = 1


def image_dir(root: Path, name: str, arch: str) -> Path:
    """The folder of one image's baselines on one architecture: the name, the architecture
    (the image's own string) each checked, and the folder resolved inside `root`."""
    safepath.check_part(name, "image name")
    safepath.check_arch(arch, name)
    return safepath.inside(root, name, arch)


def aspect_path(root: Path, name: str, arch: str, aspect: str) -> Path:
    """Where the baseline of one aspect of one image on one architecture lives (inside
    `root`, else `UnsafePath`)."""
    safepath.check_part(aspect, "aspect")
    image_dir(root, name, arch)
    return safepath.inside(root, name, arch, f"{aspect}.json")


def stored_aspects(root: Path, name: str, arch: str) -> list[str]:
    """The aspects one image on one architecture has a baseline of, in file name order."""
    return [p.name[:-len(".json")] for p in sorted(image_dir(root, name, arch).glob("*.json"))]


def unused_baselines(root: Path, ran: list[str]) -> list[Path]:
    """Baseline folders of images that were not part of the run."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name not in ran)


def render(aspect: str, image: dict[str, Any], records: dict[str, Any]) -> str:
    """The baseline file's text: stable for equal input, one record per line."""
    head = json.dumps({"schema": SCHEMA, "aspect": aspect, "image": image},
                      sort_keys=True, ensure_ascii=True)
    lines = [f"{json.dumps(k, ensure_ascii=True)}: {json.dumps(records[k], sort_keys=True, ensure_ascii=True)}"
             for k in sorted(records)]
    body = ",\n".join(lines)
    return head[:-1] + ', "records": {\n' + body + ("\n" if lines else "") + "}}\n"


#: path -> (digest of the bytes, header, records) of the last load: the files baseline serves
#: both the files and the security aspect, and is then neither read nor parsed twice
#: (callers never mutate what they get)
_LOADED: dict[Path, tuple[bytes, dict[str, Any], dict[str, Any]]] = {}


#: path -> (inode, size, mtime, ctime) and the sha256 of the bytes then: a warm run keys its
#: verdicts on the baseline files, and the files baseline (large on a large image)
#: serves two aspects. A baseline is replaced by rename (a new inode), and an edit in place
#: moves its mtime and ctime.
_DIGESTS: dict[Path, tuple[tuple[int, int, int, int], bytes]] = {}


def file_digest(path: Path) -> bytes:
    """The sha256 of a stored file's bytes; raises OSError (FileNotFoundError when absent)."""
    st = path.stat()
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    known = _DIGESTS.get(path)
    if known is not None and known[0] == stamp:
        return known[1]
    digest = hashlib.sha256(path.read_bytes()).digest()
    if len(_DIGESTS) > 64:
        _DIGESTS.clear()
    _DIGESTS[path] = (stamp, digest)
    return digest


def load(root: Path, name: str, arch: str, aspect: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(image header, records) of a stored aspect, or `BaselineMissing` / `BaselineCorrupt`."""
    path = aspect_path(root, name, arch, aspect)
    try:
        loaded = _LOADED.get(path)
        if loaded is not None and loaded[0] == file_digest(path):
            return loaded[1], loaded[2]
        data = path.read_bytes()
        text = data.decode("ascii")
    except FileNotFoundError:
        raise BaselineMissing(f"no baseline {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineCorrupt(f"baseline {path} is unreadable: {exc}") from exc
    digest = hashlib.sha256(data).digest()
    header, records = _parse(path, text, aspect)
    if len(_LOADED) > 16:
        _LOADED.clear()
    _LOADED[path] = (digest, header, records)
    return header, records


def _parse(path: Path, text: str, aspect: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than any record
        raise BaselineCorrupt(f"baseline {path} is not valid JSON ({exc}); restore it from git "
                              "or re-create it with --update-baselines") from exc
    if not isinstance(data, dict) or not isinstance(data.get("records"), dict):
        raise BaselineCorrupt(f"baseline {path} has no 'records' object")
    if data.get("schema") != SCHEMA:
        raise BaselineCorrupt(f"baseline {path} has schema {data.get('schema')!r}, "
                              f"this harness reads schema {SCHEMA}")
    if data.get("aspect") != aspect:
        raise BaselineCorrupt(f"baseline {path} holds aspect {data.get('aspect')!r}, not {aspect!r}")
    check_records(path, aspect, data.get("image") or {}, data["records"])
    return data.get("image") or {}, data["records"]


def write(root: Path, name: str, arch: str, aspect: str, image: dict[str, Any],
          records: dict[str, Any]) -> bool:
    """Store an aspect atomically; return False (and touch nothing) when it is unchanged."""
    path = aspect_path(root, name, arch, aspect)
    text = render(aspect, image, records)
    try:
        if path.read_text(encoding="ascii") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    try:
        _replace(path, text, aspect)
    except OSError as exc:
        raise BaselineWriteError(f"could not write baseline {path} ({exc.strerror or exc}); "
                                 "the previous file is intact") from exc
    return True


def _replace(path: Path, text: str, aspect: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    safepath.replace_file(path, text.encode("ascii"), sync=True)
