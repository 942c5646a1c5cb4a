"""LIEF parsing of one ELF object into plain facts (imported by the parser worker only:
importing LIEF costs most of a second, which the walk does not wait for)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

import lief

from harness.snapshot.elf import (
    _EXPORTED_BINDS, _LOCAL, _SHN_UNDEF, _TYPES, _VER_FLG_BASE, _VER_FLG_WEAK, _VERSYM_HIDDEN,
    _VIS_DEFAULT, _VIS_PROTECTED, _WEAK, DATA_TYPES, DYNAMIC_TYPES, declares_dynamic, elf_arch,
    elf_type, header_problem,
)

_CONFIG: lief.ELF.ParserConfig | None = None


def _shared_config() -> lief.ELF.ParserConfig:
    global _CONFIG
    if _CONFIG is None:
        _CONFIG = _parser_config()
    return _CONFIG


def quiet() -> None:
    """LIEF logs every oddity of every object to stderr; the facts carry what matters."""
    lief.logging.disable()


def _parser_config() -> lief.ELF.ParserConfig:
    config = lief.ELF.ParserConfig()
    # only the dynamic table, dynsym and version tables are needed: skip the costly rest
    config.parse_relocations = False
    config.parse_symtab_symbols = False
    config.parse_overlay = False
    config.parse_notes = False
    return config


def _text(value: str | bytes) -> str:
    """LIEF hands over names that are not UTF-8 as bytes; keep them losslessly as str."""
    return value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")


def _search_path(value: str | bytes) -> list[str]:
    return _text(value).split(":")


def _dynamic(binary: lief.ELF.Binary, facts: dict[str, Any]) -> None:
    needed: list[str] = []
    for entry in binary.dynamic_entries:
        if isinstance(entry, lief.ELF.DynamicEntryLibrary):
            needed.append(_text(entry.name))
        elif isinstance(entry, lief.ELF.DynamicSharedObject):
            facts["soname"] = _text(entry.name)
        elif isinstance(entry, lief.ELF.DynamicEntryRunPath):
            facts["runpath"] = _search_path(entry.runpath)
        elif isinstance(entry, lief.ELF.DynamicEntryRpath):
            facts["rpath"] = _search_path(entry.rpath)
    facts["needed"] = needed


def _versions(binary: lief.ELF.Binary, facts: dict[str, Any]
              ) -> tuple[dict[int, str], dict[int, tuple[str, str]]]:
    """Version definitions and requirements; returns versym index -> name / (name, file)."""
    defined: dict[int, str] = {}
    for verdef in binary.symbols_version_definition:
        names = verdef.auxiliary_symbols
        if not names:
            continue
        defined[verdef.ndx] = _text(names[0].name)
        if not verdef.flags & _VER_FLG_BASE:  # the base node is the soname, not a version
            facts["versions"].append(defined[verdef.ndx])
    required: dict[int, tuple[str, str]] = {}
    for verneed in binary.symbols_version_requirement:
        file = _text(verneed.name)
        nodes = facts["verneed"].setdefault(file, [])
        for aux in verneed.get_auxiliary_symbols():
            required[aux.other] = (_text(aux.name), file)
            nodes.append([_text(aux.name), bool(aux.flags & _VER_FLG_WEAK)])
    facts["versions"].sort()
    return defined, required


def _symbols(binary: lief.ELF.Binary, facts: dict[str, Any], defined: dict[int, str],
             required: dict[int, tuple[str, str]]) -> None:
    versym = [v.value for v in binary.symbols_version]
    exports: list[list[Any]] = []
    imports: list[list[Any]] = []
    for index, sym in enumerate(binary.dynamic_symbols):
        if index == 0:
            continue  # the null symbol
        info = sym.information
        bind, kind = info >> 4, info & 0xF
        ver = versym[index] if index < len(versym) else 0
        node = ver & 0x7FFF
        if sym.shndx == _SHN_UNDEF:
            if bind == _LOCAL:
                continue
            name, file = required.get(node, (None, None)) if node >= 2 else (None, None)
            imports.append([_text(sym.name), name, file, bind == _WEAK])
            continue
        bind_name = _EXPORTED_BINDS.get(bind)
        if bind_name is None or sym.other & 0x3 not in (_VIS_DEFAULT, _VIS_PROTECTED):
            continue
        type_name = _TYPES.get(kind, str(kind))
        version = defined.get(node) if node >= 2 else None
        default = not ver & _VERSYM_HIDDEN
        if version is None and node in required:
            # a program's copy of a library variable (copy relocation) keeps the version it
            # needs: `stderr@GLIBC_2.2.5`, never a default version of the program's own
            version, default = required[node][0], False
        exports.append([_text(sym.name), version, default, type_name, bind_name,
                        sym.size if type_name in DATA_TYPES else None])
    exports.sort(key=lambda e: (e[0], e[1] or ""))
    imports.sort(key=lambda i: (i[0], i[1] or ""))
    facts["exports"], facts["imports"] = exports, imports


def read_object(data: bytes, config: lief.ELF.ParserConfig | None = None) -> dict[str, Any]:
    """The facts of one ELF object, or its header and an `error` when it cannot be read.

    exports: [name, version, default, type, bind, size]; `default` is False for a hidden
    (`name@V`) version; size only for data. imports: [name, version, file, weak].
    """
    facts, readable = _header_facts(data)
    if not readable:
        return facts
    dynamic = declares_dynamic(data, lambda offset, size: data[offset:offset + size])
    # a file object, never the bytes: LIEF takes a `bytes` argument that could be a path
    # for one (a short hostile file would make it open a file of the host)
    return _parsed(lambda: lief.ELF.parse(io.BytesIO(data), config or _shared_config()), facts,
                   dynamic)


def read_object_at(path: str, config: lief.ELF.ParserConfig | None = None) -> dict[str, Any]:
    """`read_object` of a file on the host (an image file read in place, found by the walk
    as a regular file): LIEF reads it itself, so no copy of a large object (LLVM's 117 MB
    library) travels between processes or sits in two buffers."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            head = os.pread(fd, 64, 0)
            facts, readable = _header_facts(head)
            if not readable:
                return facts
            dynamic = declares_dynamic(head, lambda offset, size: os.pread(fd, size, offset))
        finally:
            os.close(fd)
    except OSError as exc:
        return {"arch": "unknown", "type": "unknown",
                "error": f"unreadable: {exc.strerror or exc}"}
    return _parsed(lambda: lief.ELF.parse(path, config or _shared_config()), facts, dynamic)


def _header_facts(head: bytes) -> tuple[dict[str, Any], bool]:
    """Architecture and type from the ELF header, and whether LIEF should parse the rest."""
    facts: dict[str, Any] = {"arch": elf_arch(head), "type": elf_type(head)}
    problem = header_problem(head)
    if problem is not None:
        facts["error"] = problem
        return facts, False
    # nothing a loader reads in other types; and kernel modules are large to parse
    return facts, facts["type"] in DYNAMIC_TYPES


def _parsed(parse: Callable[[], Any], facts: dict[str, Any], dynamic: bool) -> dict[str, Any]:
    """LIEF's reading of the object; `dynamic`: its program headers list PT_DYNAMIC."""
    try:
        binary = parse()
    except Exception as exc:  # a hostile object must not stop the snapshot
        facts["error"] = f"LIEF failed: {type(exc).__name__}: {exc}"
        return facts
    if binary is None:
        facts["error"] = "not a readable ELF object (LIEF could not parse it)"
        return facts
    facts.update(soname=None, needed=[], rpath=None, runpath=None,
                 interp=_interpreter(binary),
                 versions=[], verneed={}, exports=[], imports=[])
    if not binary.dynamic_entries and dynamic:
        # e.g. a truncated file: reporting "needs nothing" would hide it
        facts["error"] = "dynamic segment unreadable (truncated or damaged object)"
        return facts
    try:
        _dynamic(binary, facts)
        defined, required = _versions(binary, facts)
        _symbols(binary, facts, defined, required)
    except Exception as exc:  # a damaged table: keep what was read, say what was not
        facts["error"] = f"damaged dynamic tables: {type(exc).__name__}: {exc}"
    return facts


def _interpreter(binary: lief.ELF.Binary) -> str | None:
    """PT_INTERP, kept losslessly: LIEF decodes it as UTF-8 and raises on other bytes."""
    if not binary.has_interpreter:
        return None
    try:
        return str(binary.interpreter)
    except UnicodeDecodeError:
        for segment in binary.segments:
            if segment.type == lief.ELF.Segment.TYPE.INTERP:
                raw = bytes(segment.content).split(b"\0", 1)[0]
                return raw.decode("utf-8", "surrogateescape")
        return None
