"""Snapshot: everything the gate knows about one image, taken in ONE pass over its filesystem.

The snapshot knows nothing of baselines: it is plain data (JSON-serialisable dicts) that the
diff step compares.
"""

from __future__ import annotations

import itertools
import json
import marshal
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import contextlib

from harness import safepath
from harness.filetable import FileTable, Names, as_plain
from harness import limits as bounds
from harness.rootfs.image import ImageInfo
from harness.limits import Limits
from harness.snapshot.ownership import file_owners, set_owners, verify
from harness.snapshot.accounts import AccountsCollector
from harness.snapshot.elf import KEPT_MIN, ElfCollector, parsers_ahead
from harness.snapshot.hidden import HiddenCollector
from harness.snapshot import layercache
from harness.snapshot.meta import flatten_config
from harness.snapshot.secrets import SecretsCollector
from harness.snapshot.language import LanguageCollector
from harness.snapshot.osrelease import OsReleaseCollector
from harness.snapshot.packages import PackagesCollector, package_key
from harness.snapshot.managers import load_builtin_readers
from harness.rootfs.tarstream import TarReader
from harness.rootfs.readers import Reopen, Rootfs
from harness.snapshot.walk import ContentCollector, walk

#: Bumped whenever a record's shape changes; cached snapshots of another schema are retaken.
SCHEMA = 1
#: what a kept snapshot's name carries besides the image and the code: marshal's format
CACHE_FORMAT = f"py{sys.version_info[0]}{sys.version_info[1]}m{marshal.version}t2"
#: file records `Snapshot.keep` marshals at a time
_KEPT_AT_ONCE = 1 << 14
#: what `Snapshot.keep` writes for an object's facts that the layer cache keeps by content
#: digest: this key, with the digest, and the facts the snapshot adds (`search_missing`)
_BY_DIGEST = "@facts"
#: facts a snapshot adds to an object's, per image (harness.snapshot.elf `result`)
_IMAGE_FACTS = ("search_missing",)


def _framed(part: bytes) -> bytes:
    return len(part).to_bytes(8, "little") + part


def _unframed(f: Any, left: int) -> tuple[Any, int]:
    """The next part `keep` wrote, loaded, and the bytes left after it; ValueError when the
    file does not hold it whole (damaged, or of another format)."""
    size = int.from_bytes(f.read(8), "little")
    if left < 8 or size > left - 8:
        raise ValueError("a part runs past the end")
    data = f.read(size)
    if len(data) != size:
        raise ValueError("a part was cut short")
    return marshal.loads(data), left - 8 - size


@dataclass
class Snapshot:
    """One image, as plain data. Aspects are dicts keyed by their records' identity."""

    image: dict[str, Any]
    metadata: dict[str, Any]
    #: a `FileTable` when taken or recalled (plain dicts elsewhere: a test's, a JSON load)
    files: Mapping[str, dict[str, Any]]
    packages: dict[str, dict[str, Any]]
    package_dbs: list[dict[str, Any]] = field(default_factory=list)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    abi: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    #: package-to-file verification (harness.snapshot.ownership.verify), candidate-only
    ownership: dict[str, Any] = field(default_factory=dict)
    #: files later layers deleted but the image ships (harness.snapshot.hidden), candidate-
    #: only; None when the read saw the merged view alone (an export stream)
    hidden: dict[str, dict[str, Any]] | None = None
    #: aspect -> why it cannot be judged on this snapshot (a file past its `harness.limits`
    #: cap: what it would have said is unknown)
    errors: dict[str, list[str]] = field(default_factory=dict)
    schema: int = SCHEMA

    @property
    def arch(self) -> str:
        """The image's architecture as `uname -m` prints it."""
        return str(self.image["arch"])

    def dump(self, path: Path) -> None:
        """Write the snapshot as JSON (a cache file; baselines are written elsewhere)."""
        # a shallow dict: dataclasses.asdict deep-copies every record first (seconds on a
        # large image) and json.dumps walks the nested dicts anyway
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["files"] = as_plain(self.files)
        safepath.replace_file(path, json.dumps(data, ensure_ascii=True,
                                               check_circular=False).encode("ascii"))

    def keep(self, path: Path, facts_in: Path | None = None) -> None:
        """Write the snapshot to the gate's private cache. marshal, not JSON: faster to
        write (on the cold gate's path) and to read (bench/README.md); the cache key holds the
        interpreter's version, as marshal's format may change with it. The other fields
        first, with the count of file records, then the records a batch at a time: a large
        image's snapshot is never held again whole as bytes. Each part is preceded by its
        length, so `recall` reads it in one piece (marshal reading a file object asks it for
        every item: several times slower).

        `facts_in`: the layer cache folder (harness.snapshot.layercache) the snapshot was
        taken with. The facts of the large objects it keeps by content digest are written
        as that digest (most of an image's ELF facts, most of its snapshot's bytes): `recall`
        given the same folder reads them there, or from its process's memory (a family's
        base libraries, in every member's snapshot)."""
        head = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "files"}
        table = self.files if isinstance(self.files, FileTable) else FileTable(self.files)
        if facts_in is not None and isinstance(self.abi.get("objects"), dict):
            head["abi"] = {**self.abi, "objects": _referenced(self.abi["objects"], table,
                                                              facts_in)}
        head["files"] = len(table)
        head["names"] = table.names.names  # the package names the packed rows index

        def parts() -> Iterator[bytes]:
            yield _framed(marshal.dumps(head))
            records = table.rows_iter()
            while batch := list(itertools.islice(records, _KEPT_AT_ONCE)):
                yield _framed(marshal.dumps(batch))

        safepath.replace_file(path, parts())

    @classmethod
    def recall(cls, path: Path, facts_in: Path | None = None) -> Snapshot | None:
        """A snapshot `keep` wrote; None when absent, damaged or of another schema, or when
        it names facts by digest that the layer cache folder `facts_in` does not keep."""
        try:
            with path.open("rb") as f:
                left = os.fstat(f.fileno()).st_size
                data, left = _unframed(f, left)
                if not isinstance(data, dict) or data.get("schema") != SCHEMA:
                    return None
                count, names = data.get("files"), data.pop("names", None)
                if type(count) is not int or type(names) is not list:
                    return None
                if not all(type(name) is str for name in names):
                    return None
                files = FileTable(names=Names(names))
                while len(files) < count:
                    batch, left = _unframed(f, left)
                    if not isinstance(batch, list) or not batch:
                        return None
                    files.add_rows(batch)
                if len(files) != count or left:
                    return None
            data["files"] = files
            if not _resolved(data.get("abi"), facts_in):
                return None
            return cls(**data)
        except (OSError, ValueError, TypeError, EOFError):
            return None

    @classmethod
    def load(cls, path: Path) -> Snapshot | None:
        """Read a cached snapshot; None when absent, damaged or of another schema."""
        try:
            data = json.loads(path.read_text(encoding="ascii"))
            if data.get("schema") != SCHEMA:
                return None
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def _referenced(objects: dict[str, dict[str, Any]], files: FileTable, folder: Path
                ) -> dict[str, dict[str, Any]]:
    """`objects` with the facts the layer cache in `folder` keeps by digest written as
    references (`_BY_DIGEST`): those of a parsed object (not an error, nor a debug file's
    header record) of at least `KEPT_MIN` bytes whose digest the cache holds facts for. The
    parser's facts of the same bytes, under the same code (the folder's name holds its
    fingerprint), are those facts."""
    out: dict[str, dict[str, Any]] = {}
    for path, facts in objects.items():
        record = files.get(path) if "error" not in facts and facts.get("type") != "DEBUG" else None
        if record is None or "link" in record or (record.get("size") or 0) < KEPT_MIN:
            out[path] = facts
            continue
        digest = record.get("sha256")
        if (type(digest) is not str
                or not layercache.holds_facts(folder, digest)):
            out[path] = facts
            continue
        out[path] = {_BY_DIGEST: digest,
                     **{key: facts[key] for key in _IMAGE_FACTS if key in facts}}
    return out


def _resolved(abi: Any, folder: Path | None) -> bool:
    """Put back, in a recalled snapshot's ABI section, the facts `keep` wrote as references
    (`_referenced`); False when the cache in `folder` keeps one no more (or damaged)."""
    objects = abi.get("objects") if isinstance(abi, dict) else None
    if not isinstance(objects, dict):
        return True
    for path, facts in objects.items():
        if type(facts) is not dict or _BY_DIGEST not in facts:
            continue
        digest = facts[_BY_DIGEST]
        kept = (layercache.facts_by(folder, digest)
                if folder is not None and type(digest) is str else None)
        if kept is None or set(facts) - {_BY_DIGEST, *_IMAGE_FACTS}:
            return False
        kept.update((key, facts[key]) for key in _IMAGE_FACTS if key in facts)
        objects[path] = kept
    return True


def content_size(files: Mapping[str, dict[str, Any]]) -> int:
    """Bytes of regular file content (hard links once): the same through any source."""
    return sum(int(r.get("size") or 0) for r in files.values()
               if r.get("type") == "file" and "link" not in r)


def baseline_header(snap: Snapshot) -> dict[str, Any]:
    """What a baseline file records of the image: its identity, not how it was reached
    (a tag, a registry reference and an archive path of one image give equal baselines)."""
    return {"image_id": snap.image["image_id"], "arch": snap.image["arch"],
            "os": snap.image["os"], "size": snap.image.get("content_size", 0)}


def image_header(info: ImageInfo) -> dict[str, Any]:
    """Identity of the image a snapshot was taken from (stored in every baseline file)."""
    return {"ref": info.ref, "image_id": info.image_id, "arch": info.arch, "os": info.os,
            "repo_digests": info.repo_digests, "size": info.size}


def take_snapshot(info: ImageInfo, rootfs: Rootfs, reopen: Reopen | None = None,
                  limits: Limits | None = None) -> Snapshot:
    """Read the image's filesystem once (a tar stream or a member reader) and assemble
    every aspect, within `limits` (under the caller's budget of the image, else one here);
    `reopen` gives the filesystem again when hard links need a second pass (`walk`)."""
    limits = limits or Limits()
    outer = bounds.current()
    with bounds.budget(limits, info.ref) if outer is None else contextlib.nullcontext(outer):
        return _take(info, rootfs, reopen, limits)


def read_snapshot(info: ImageInfo, open_rootfs: Reopen, limits: Limits | None = None,
                  in_place: bool = False) -> Snapshot:
    """Open the image's filesystem (`open_rootfs`, a source's) and take its snapshot, within
    `limits`: the budget covers the opening too (a daemonless source's layers). `in_place`
    says the source will likely hand the files over in place (the engine's layer folders),
    so the ELF parsers start ahead, while the filesystem opens."""
    limits = limits or Limits()
    with parsers_ahead(in_place), bounds.budget(limits, info.ref), open_rootfs() as rootfs:
        return take_snapshot(info, rootfs, open_rootfs, limits)


def _take(info: ImageInfo, rootfs: Rootfs, reopen: Reopen | None, limits: Limits) -> Snapshot:
    load_builtin_readers()
    packages = PackagesCollector(limits)
    accounts = AccountsCollector(limits)
    # files read in place leave a core free that an export stream would keep busy
    elf = ElfCollector(in_place=hasattr(rootfs, "chunks") and not isinstance(rootfs, TarReader))
    secrets = SecretsCollector()
    language = LanguageCollector(limits)
    os_release = OsReleaseCollector()
    collectors: list[ContentCollector] = [packages, accounts, secrets, language, os_release, elf]
    hidden: HiddenCollector | None = None
    if hasattr(rootfs, "set_hidden_sink"):  # a reader of each layer
        hidden = HiddenCollector()
        rootfs.set_hidden_sink(hidden.add)
    files = walk(rootfs, collectors, reopen)
    records, dbs = packages.result(files)
    for record in language.records:
        records.setdefault(package_key(record), record)
    if language.records or language.errors:
        managers = sorted({r["manager"] for r in language.records})
        dbs.append({"manager": "language", "paths": managers, "count": len(language.records),
                    **({"errors": language.errors[:20]} if language.errors else {})})
    lists, list_errors = packages.file_lists(files)
    users, groups = accounts.id_names()
    owned = verify(files, lists, users, groups) if lists else {}
    set_owners(files, file_owners(files, lists, records))
    if list_errors:
        owned["errors"] = list_errors
    header = image_header(info)
    header["content_size"] = content_size(files)
    header["os_release"] = {k: v for k, v in os_release.fields.items()
                            if k in ("ID", "ID_LIKE", "VERSION_ID", "PRETTY_NAME")}
    snap = Snapshot(image=header, metadata=flatten_config(info), files=files,
                    packages=records, package_dbs=dbs, accounts=accounts.result(),
                    abi=elf.result(files, records), secrets=secrets.result(), ownership=owned,
                    hidden=hidden.result() if hidden is not None else None,
                    errors={aspect: found for aspect, found in (
                        ("packages", language.refused), ("security", accounts.errors)) if found})
    cache = layercache.current()
    if cache is not None:
        cache.learn(files, snap.abi.get("objects", {}))
        cache.save()
    return snap
