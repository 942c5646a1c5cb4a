"""ABI diff: the libraries and exported symbols of a baseline against a candidate's, and the
linkage closure of the candidate alone.

A baseline (`abi.json`) stores one record per library, keyed by its soname, and one per
exported symbol, keyed `SONAME:NAME@VERSION` (`SONAME:NAME` when unversioned): sorted, one
line each, so a reviewer reads the library's ABI surface change line by line. A shared
object without a soname (a plugin: gconv and extension modules, anything dlopen()ed by
path) is keyed by its absolute path instead (`PATH:NAME@VERSION`). Libraries of
an architecture other than the image's own (i686 objects in an x86_64 image) are keyed
`SONAME(ARCH)`. The suppressions of `[tool.harness.abi]` (GLIBC_PRIVATE by default) are
applied to both sides, so a new suppression never reads as a removal.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.diff.change import Change
from harness.diff.linkage import Finding, Linker, linkage_findings
from harness.memo import IdentityMemo

#: symbol types that are one thing to a consumer (an IFUNC is called like a function)
_TYPE_CLASS = {"FUNC": "function", "IFUNC": "function", "OBJECT": "data", "COMMON": "data",
               "TLS": "tls", "NOTYPE": "notype"}
_DATA = frozenset({"OBJECT", "COMMON", "TLS"})
_SONAME_STEM = re.compile(r"\.so(\.[0-9][0-9.]*)?$")
#: a soname spelt without `.so` (`libtest19-soname-0`): its trailing version number
_BARE_VERSION = re.compile(r"[-_.]?[0-9][0-9.]*$")


def _globs(globs: Iterable[str]) -> re.Pattern[str] | None:
    """One compiled regex for many globs (the tens of thousands of symbol keys of an image stay cheap)."""
    parts = [fnmatch.translate(g) for g in globs]
    return re.compile("|".join(parts)) if parts else None


@dataclass(frozen=True)
class Suppressions:
    """What is left out of the ABI surface (`[tool.harness.abi]`), as globs: version nodes
    (GLIBC_PRIVATE), symbols (name or name@version) and sonames."""

    versions: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    sonames: tuple[str, ...] = ()


class _Suppress:
    """`Suppressions` compiled: versions, symbols (name or name@version), sonames."""

    def __init__(self, suppressions: Suppressions) -> None:
        self.source = suppressions
        self._versions = _globs(suppressions.versions)
        self._symbols = _globs(suppressions.symbols)
        self._sonames = _globs(suppressions.sonames)
        self._version_memo: dict[str, bool] = {}

    def soname(self, soname: str) -> bool:
        """True when a library (and so all its symbols) is out of the ABI surface."""
        return self._sonames is not None and self._sonames.match(soname) is not None

    def version(self, version: str | None) -> bool:
        """True for a suppressed version node (e.g. GLIBC_PRIVATE)."""
        if version is None or self._versions is None:
            return False
        hit = self._version_memo.get(version)
        if hit is None:  # a few dozen versions, tens of thousands of symbols
            hit = self._version_memo[version] = self._versions.match(version) is not None
        return hit

    def symbol(self, name: str, version: str | None) -> bool:
        """True for a suppressed symbol or a symbol of a suppressed version."""
        if self.version(version):
            return True
        if self._symbols is None:
            return False
        spelled = f"{name}@{version}" if version else name
        return self._symbols.match(name) is not None or self._symbols.match(spelled) is not None


def symbol_key(library: str, name: str, version: str | None) -> str:
    """`SONAME:NAME@VERSION`, or `SONAME:NAME` for an unversioned symbol."""
    return f"{library}:{name}@{version}" if version else f"{library}:{name}"


def split_symbol_key(key: str) -> tuple[str, str, str | None]:
    """Inverse of `symbol_key` (symbol names never contain `@`; sonames never `:`)."""
    library, _, symbol = key.partition(":")
    name, at, version = symbol.partition("@")
    return library, name, version if at else None


def _libraries(abi: Mapping[str, Any]) -> dict[str, str]:
    """Library key -> the path of the object that stands for it.

    Where several files carry one soname for one architecture, the one the loader finds
    first on its default search path stands for it (else the first path in sort order).
    """
    objects: dict[str, dict[str, Any]] = abi.get("objects") or {}
    linker = Linker(abi)
    primary = linker.primary_arch()
    by_key: dict[str, list[str]] = {}
    for path, facts in sorted(objects.items()):
        soname = facts.get("soname")
        if soname and "error" not in facts:
            key = soname if facts["arch"] == primary else f"{soname}({facts['arch']})"
            by_key.setdefault(key, []).append(path)
    chosen: dict[str, str] = {}
    for key, paths in by_key.items():
        if len(paths) > 1:
            facts = objects[paths[0]]
            flavor = linker.flavor(facts)
            dirs = (*linker.conf_dirs, *linker.default_dirs(facts["arch"], flavor))
            found = linker.search(str(facts["soname"]), tuple(dirs), facts["arch"])
            if found is not None and found[1] in paths:
                chosen[key] = found[1]
                continue
        chosen[key] = paths[0]
    return chosen


def _plugins(abi: Mapping[str, Any]) -> list[str]:
    """Paths of the shared objects that have no soname and are no program (no interpreter):
    plugins, loaded by path. A path that a symbol key could not spell (`:`, `@`) is left to
    the files aspect."""
    objects: dict[str, dict[str, Any]] = abi.get("objects") or {}
    return [path for path, facts in sorted(objects.items())
            if facts.get("type") == "DYN" and not facts.get("soname") and not facts.get("interp")
            and "error" not in facts and facts.get("exports")
            and ":" not in path and "@" not in path and "(" not in path]


def _plugin_record(abi: Mapping[str, Any], path: str, suppress: _Suppress) -> dict[str, Any]:
    facts = abi["objects"][path]
    return {"arch": facts["arch"], "needed": list(facts.get("needed") or []),
            "versions": [v for v in facts.get("versions") or [] if not suppress.version(v)]}


def _library_record(abi: Mapping[str, Any], path: str, suppress: _Suppress) -> dict[str, Any]:
    facts = abi["objects"][path]
    soname = facts["soname"]
    inventory = (abi.get("libraries") or {}).get(soname) or {}
    arch = facts["arch"]
    same_arch = [p for p in inventory.get("paths", [path]) if abi["objects"][p]["arch"] == arch]
    record: dict[str, Any] = {
        "arch": arch,
        "paths": same_arch or [path],
        "packages": inventory.get("packages"),
        "needed": list(facts.get("needed") or []),
        "versions": [v for v in facts.get("versions") or [] if not suppress.version(v)],
    }
    for field in ("rpath", "runpath"):
        if facts.get(field):
            record[field] = list(facts[field])
    if facts.get("rpath") or facts.get("runpath"):
        record["search_missing"] = list(facts.get("search_missing") or [])
    return record


#: a symbol's record by its fields: the thousands of symbols of an image have a few hundred
#: distinct records between them, each then held once (and rendered once: harness.baseline);
#: records are never changed once made. Started again past `_MAX_SHARED` (data sizes vary)
_SHARED_RECORDS: dict[tuple[Any, ...], dict[str, Any]] = {}
_MAX_SHARED = 1 << 14


def _symbol_record(export: list[Any]) -> dict[str, Any]:
    _, version, default, kind, bind, size = export
    if kind in _DATA:
        if type(size) is not int:  # not as the parser gives it: a record of its own
            return _new_symbol_record(version, default, kind, bind, size)
    else:
        size = None
    key = (kind, bind, bool(default) if version else None, size)
    record = _SHARED_RECORDS.get(key)
    if record is None:
        if len(_SHARED_RECORDS) >= _MAX_SHARED:
            _SHARED_RECORDS.clear()
        record = _SHARED_RECORDS[key] = _new_symbol_record(version, default, kind, bind, size)
    return record


def _new_symbol_record(version: Any, default: Any, kind: Any, bind: Any, size: Any
                       ) -> dict[str, Any]:
    record: dict[str, Any] = {"type": kind, "bind": bind}
    if version:
        record["default"] = bool(default)
    if kind in _DATA:
        record["size"] = size
    return record


#: (library key or plugin path, suppressions) -> (its object's exports, their records, the
#: sha256 of the object's file when known): the members of a release family share their
#: base's libraries, whose records are made once. Reused for an object of the same digest
#: (the exports are the parser's facts of those bytes), else when its exports compare
#: equal whole (its content may differ under one key). Started again past
#: `_MAX_OWN_SYMBOLS` records: it outlives the images it served
_OWN_SYMBOLS: dict[tuple[str, Suppressions], tuple[list[Any], dict[str, Any], str | None]] = {}
_MAX_OWN_SYMBOLS = 1 << 20
_own_held = [0]  # records the memo holds


def _symbols_of(owner: str, exports: list[Any], suppress: _Suppress,
                digest: str | None = None) -> dict[str, Any]:
    """Symbol key -> record of the exports of one library (or plugin), the first of a key
    kept, without what `suppress` leaves out (`digest`: the sha256 of the object's file,
    when known)."""
    memo_key = (owner, suppress.source)
    known = _OWN_SYMBOLS.get(memo_key)
    if known is not None and (digest is not None and known[2] == digest
                              or known[0] == exports):
        return known[1]
    records: dict[str, Any] = {}
    for export in exports:
        name, version = export[0], export[1]
        if name == version or suppress.symbol(name, version):
            continue  # a version node's own marker symbol: the versions list says it
        records.setdefault(symbol_key(owner, name, version), _symbol_record(export))
    if _own_held[0] + len(records) > _MAX_OWN_SYMBOLS:
        _OWN_SYMBOLS.clear()
        _own_held[0] = 0
    previous = _OWN_SYMBOLS.get(memo_key)
    _own_held[0] += len(records) - (len(previous[1]) if previous is not None else 0)
    _OWN_SYMBOLS[memo_key] = (exports, records, digest)
    return records


def digest_of(files: Mapping[str, Any] | None, path: str) -> str | None:
    """The sha256 of the file at `path` in a snapshot's files, when it has one."""
    record = files.get(path) if files is not None else None
    digest = record.get("sha256") if isinstance(record, dict) else None
    return digest if isinstance(digest, str) else None


def _add_symbols(records: dict[str, Any], symbols: dict[str, Any]) -> None:
    """`symbols` into `records`, a key already there kept."""
    if records.keys().isdisjoint(symbols):
        records.update(symbols)
    else:
        for key, record in symbols.items():
            records.setdefault(key, record)


#: (the ABI section, suppressions) -> its records: the stored baseline is compared with
#: them before the diff makes them (harness.gate)
_RECORDS: IdentityMemo[dict[str, Any]] = IdentityMemo(2)


def baseline_records(abi: dict[str, Any], suppressions: Suppressions,
                     files: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What `abi.json` stores for a snapshot's ABI section: a record per library (soname)
    and per exported symbol (`SONAME:NAME@VERSION`), without what `suppressions` leave out.
    The same dict for the same section, and records shared between symbols: never changed
    by their readers. `files`: the snapshot's files, whose digests tell an object already
    met (the same records whether given or not)."""
    known = _RECORDS.get((abi,), suppressions)
    if known is not None:
        return known
    suppress = _Suppress(suppressions)
    records: dict[str, Any] = {}
    for key, path in _libraries(abi).items():
        if suppress.soname(key.split("(", 1)[0]):
            continue
        records[key] = _library_record(abi, path, suppress)
        _add_symbols(records, _symbols_of(key, abi["objects"][path].get("exports") or [],
                                          suppress, digest_of(files, path)))
    for path in _plugins(abi):
        records[path] = _plugin_record(abi, path, suppress)
        _add_symbols(records, _symbols_of(path, abi["objects"][path]["exports"], suppress,
                                          digest_of(files, path)))
    _RECORDS.put((abi,), suppressions, records)
    return records


def _visible(records: Mapping[str, Any], suppress: _Suppress) -> dict[str, Any]:
    """Baseline records under the current suppressions (a stored baseline may predate them)."""
    out: dict[str, Any] = {}
    for key, record in records.items():
        library, name, version = split_symbol_key(key)
        if suppress.soname(library.split("(", 1)[0]):
            continue
        if ":" in key:
            if suppress.symbol(name, version):
                continue
        elif isinstance(record, dict) and "versions" in record:
            record = {**record, "versions": [v for v in record["versions"] if not suppress.version(v)]}
        out[key] = record
    return out


def _stem(library: str) -> str:
    """`libfoo.so.1` -> `libfoo.so`, `libfoo-1` -> `libfoo` (arch suffix kept: a bump pairs
    within one arch)."""
    name, paren, arch = library.partition("(")
    if _SONAME_STEM.search(name):
        stem = _SONAME_STEM.sub(".so", name)
    else:
        # the pattern only on the trailing run of digits and dots and the separator before
        # it, where a match lies: searched over the whole name it backtracks quadratically
        # in a long digit run not at the end (an image chooses its sonames); `$` also
        # matches before a last newline
        cut = max(len(name.removesuffix("\n").rstrip("0123456789.")) - 1, 0)
        stem = name[:cut] + _BARE_VERSION.sub("", name[cut:])
    return (stem or name) + paren + arch


def _library_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """library-removed and soname-changed, pairing a bump by name stem or by shared path."""
    changes: list[Change] = []
    removed = sorted(before.keys() - after.keys())
    added = sorted(after.keys() - before.keys())
    paired: set[str] = set()
    for old in removed:
        old_paths = set(before[old].get("paths") or [])
        new = next((a for a in added if _stem(a) == _stem(old)), None) or next(
            (a for a in added if old_paths & set(after[a].get("paths") or [])), None)
        if new is not None:
            paired.add(new)
            changes.append(Change("abi", "soname-changed", old, old, new,
                                  detail={"old_still_shipped": False}))
        else:
            changes.append(Change("abi", "library-removed", old,
                                  {"paths": before[old].get("paths"),
                                   "packages": before[old].get("packages")}))
    kept = {_stem(k): k for k in sorted(before.keys() & after.keys())}
    for new in added:
        if new not in paired and _stem(new) in kept:
            old = kept[_stem(new)]
            changes.append(Change("abi", "soname-changed", old, old, new,
                                  detail={"old_still_shipped": True}))
    return changes


def _search_path(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"rpath": record.get("rpath"), "runpath": record.get("runpath")}


def _kept_library_changes(library: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """symbol-version-removed, needed-added and runpath-changed of a library in both."""
    changes = [Change("abi", "symbol-version-removed", f"{library}:@{version}", version, None)
               for version in sorted(set(old.get("versions") or []) - set(new.get("versions") or []))]
    consumer = library if _is_plugin(library) else (new.get("paths") or [None])[0]
    changes += [Change("abi", "needed-added", needed, None, {"library": library}, consumer=consumer)
                for needed in sorted(set(new.get("needed") or []) - set(old.get("needed") or []))]
    if _search_path(old) != _search_path(new):
        both = bool(new.get("rpath")) and bool(new.get("runpath"))
        outside = bool(new.get("search_missing"))
        changes.append(Change("abi", "runpath-changed", library, _search_path(old), _search_path(new),
                              detail={"break": both or outside}))
    return changes


def _symbol_change(key: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Change | None:
    old_type, new_type = old.get("type"), new.get("type")
    if _TYPE_CLASS.get(str(old_type), old_type) != _TYPE_CLASS.get(str(new_type), new_type):
        return Change("abi", "symbol-type-changed", key, old_type, new_type)
    old_size, new_size = old.get("size"), new.get("size")
    if old_type in _DATA and new_type in _DATA and old_size != new_size:
        grew = (new_size or 0) > (old_size or 0)
        return Change("abi", "symbol-size-changed", key, old_size, new_size, detail={"grew": grew})
    return None


def _is_plugin(key: str) -> bool:
    """A record keyed by path (an object without a soname), not by soname."""
    return key.startswith("/")


def _closure(libraries: Mapping[str, Any], library: str) -> list[str]:
    """The library keys in `library`'s NEEDED closure (itself excluded), breadth first, as
    the loader adds them to the global scope. A dependency of a non-primary-arch library is
    looked up under that arch's key first."""
    record = libraries[library]
    _, paren, rest = library.partition("(")
    suffix = paren + rest if paren else f"({record.get('arch')})"
    seen, queue, out = {library}, [library], []
    while queue:
        for needed in libraries[queue.pop(0)].get("needed") or []:
            key = next((k for k in (f"{needed}{suffix}", needed) if k in libraries), None)
            if key is not None and key not in seen:
                seen.add(key)
                queue.append(key)
                out.append(key)
    return out


def _removal(key: str, old: Mapping[str, Any], new: Mapping[str, Any],
             new_libs: Mapping[str, Any], loader_dirs: frozenset[str]) -> Change | None:
    """What a symbol gone from a library in both images is, as the loader sees it:
    None when versioning was added (`foo` -> `foo@@V`: an unversioned reference binds to the
    default version), symbol-moved when the library still defines the version node and a
    library of its NEEDED closure defines the symbol with it (ld.so checks the node against
    the named file, then binds from any object of the global scope), else symbol-removed."""
    library, name, version = split_symbol_key(key)
    if version is None:
        for candidate in new_libs[library].get("versions") or []:
            if (new.get(symbol_key(library, name, candidate)) or {}).get("default"):
                return None
    elif version in (new_libs[library].get("versions") or []):
        for provider in _closure(new_libs, library):
            moved = new.get(symbol_key(provider, name, version))
            if moved is not None:
                return Change("abi", "symbol-moved", key, old[key], {"provider": provider, **moved})
    if _is_plugin(library):
        loader = library.rsplit("/", 1)[0] in loader_dirs
        return Change("abi", "symbol-removed", key, old[key], None, detail={"loader_path": loader})
    return Change("abi", "symbol-removed", key, old[key], None)


def _loader_dirs(abi: Mapping[str, Any]) -> frozenset[str]:
    """The directories the loader searches by default (ld.so.conf's and its built-in ones)."""
    linker = Linker(abi)
    loaders = {(str(f["arch"]), linker.flavor(f)) for f in (abi.get("objects") or {}).values()
               if f.get("type") == "DYN" and "error" not in f}
    dirs = {*linker.conf_dirs, "/lib", "/usr/lib"}
    for arch, flavor in loaders:
        dirs.update(linker.default_dirs(arch, flavor, arch))
    return frozenset(d.rstrip("/") or "/" for d in dirs)


#: (the baseline records, the ABI section, suppressions) -> the changes: the cause index and
#: the abi aspect of an image diff the same pair
_DIFFED: IdentityMemo[list[Change]] = IdentityMemo(2)


def diff_abi(before: Mapping[str, Any], abi: dict[str, Any], suppressions: Suppressions) -> list[Change]:
    """Baseline ABI records vs. a candidate's ABI section (docs/compat-rules.md, abi rows),
    both without what `suppressions` leave out."""
    changes = _DIFFED.get((before, abi), suppressions)
    if changes is None:
        changes = _diff_abi(before, abi, suppressions)
        _DIFFED.put((before, abi), suppressions, changes)
    return [copy.copy(c) for c in changes]  # each caller links its own (causes.link)


def _diff_abi(before: Mapping[str, Any], abi: dict[str, Any], suppressions: Suppressions) -> list[Change]:
    new = baseline_records(abi, suppressions)
    if before is new or before == new:
        # the candidate's records hold nothing suppressed, so neither does an equal baseline:
        # the unchanged image (the common case) skips filtering 20,000 baseline records
        return []
    old = _visible(before, _Suppress(suppressions))
    old_libs = {k: v for k, v in old.items() if ":" not in k}
    new_libs = {k: v for k, v in new.items() if ":" not in k}
    # an object without a soname that appears or goes is the files aspect's (file-removed)
    changes = _library_changes({k: v for k, v in old_libs.items() if not _is_plugin(k)},
                               {k: v for k, v in new_libs.items() if not _is_plugin(k)})
    kept = old_libs.keys() & new_libs.keys()
    for library in sorted(kept):
        changes += _kept_library_changes(library, old_libs[library], new_libs[library])
    old_syms = {k for k in old if ":" in k and k.partition(":")[0] in kept}
    new_syms = {k for k in new if ":" in k and k.partition(":")[0] in kept}
    removed = sorted(old_syms - new_syms)
    loader_dirs = _loader_dirs(abi) if any(_is_plugin(k) for k in removed) else frozenset()
    changes += [c for c in (_removal(k, old, new, new_libs, loader_dirs) for k in removed) if c is not None]
    changes += [Change("abi", "symbol-added", k, None, new[k]) for k in sorted(new_syms - old_syms)]
    for key in sorted(old_syms & new_syms):
        if old[key] != new[key]:
            change = _symbol_change(key, old[key], new[key])
            if change is not None:
                changes.append(change)
    return changes


def linkage_changes(abi: dict[str, Any], findings: list[Finding] | None = None) -> list[Change]:
    """needed-unresolved / symbol-unresolved of the candidate alone (no baseline needed);
    `findings`: `linkage_findings(abi)`, when already known.

    The ABI suppressions do not apply: they shape the recorded surface, while an unresolved
    reference is a program that does not load (waive it if it must ship)."""
    return [Change("abi", f.kind, f.subject, None, f.detail or None, consumer=f.consumer)
            for f in (linkage_findings(abi) if findings is None else findings)]
