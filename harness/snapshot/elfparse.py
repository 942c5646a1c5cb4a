"""LIEF parsing of one ELF object into plain facts (imported by the parser worker only:
importing LIEF costs most of a second, which the walk does not wait for). LIEF reads the
headers, the dynamic section and the version tables; a plainly laid out dynamic symbol table
is read straight from the object (`_raw_table`), any other by LIEF."""

from __future__ import annotations

import io
import itertools
import os
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from typing import Any

import lief

from harness import gcpause
from harness.snapshot.elfheader import (
    DATA_TYPES, DYNAMIC_TYPES, EXPORTED_BINDS, SHN_UNDEF, STB_LOCAL, STB_WEAK, STV_DEFAULT,
    STV_PROTECTED, SYMBOL_TYPES, VER_FLG_BASE, VER_FLG_WEAK, VERSYM_HIDDEN, declares_dynamic,
    elf_arch, elf_type, header_problem,
)

_CONFIG: lief.ELF.ParserConfig | None = None
_FULL_CONFIG: lief.ELF.ParserConfig | None = None


def _shared_config() -> lief.ELF.ParserConfig:
    """What LIEF parses of every object: not its dynamic symbols, which `_raw_table` reads."""
    global _CONFIG
    if _CONFIG is None:
        _CONFIG = _parser_config()
        _CONFIG.parse_dyn_symbols = False
    return _CONFIG


def _full_config() -> lief.ELF.ParserConfig:
    """What LIEF parses of an object whose symbol table `_raw_table` does not read."""
    global _FULL_CONFIG
    if _FULL_CONFIG is None:
        _FULL_CONFIG = _parser_config()
    return _FULL_CONFIG


def quiet() -> None:
    """LIEF logs every oddity of every object to stderr; the facts carry what matters."""
    lief.logging.disable()


# The gate moves what it keeps out of the collector's sight and never collects it at exit
# (harness.gcpause); LIEF's bindings would then call every object of theirs still alive,
# their module's own included, a leak, on stderr
if hasattr(lief, "disable_leak_warning"):
    lief.disable_leak_warning()
    gcpause.lief_quiet_at_exit()


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
        if not verdef.flags & VER_FLG_BASE:  # the base node is the soname, not a version
            facts["versions"].append(defined[verdef.ndx])
    required: dict[int, tuple[str, str]] = {}
    for verneed in binary.symbols_version_requirement:
        file = _text(verneed.name)
        nodes = facts["verneed"].setdefault(file, [])
        for aux in verneed.get_auxiliary_symbols():
            required[aux.other] = (_text(aux.name), file)
            nodes.append([_text(aux.name), bool(aux.flags & VER_FLG_WEAK)])
    facts["versions"].sort()
    return defined, required


#: one dynamic symbol: (st_name, st_info, st_other, st_shndx, st_value, st_size), st_name
#: being the name itself when LIEF read the table
Row = tuple[Any, int, int, int, int, int]
_ROW_FORMATS = {True: "<IBBHQQ", False: "<IIIBBH"}  # Elf64_Sym, Elf32_Sym
_TAG = lief.ELF.DynamicEntry.TAG


def _raw_table(binary: lief.ELF.Binary, read_at: Callable[[int, int], bytes]
               ) -> tuple[list[Row], Sequence[int], Callable[[int], str]] | None:
    """The dynamic symbol table, its versions (`.gnu.version`) and a reader of its names,
    read straight from the object: building a LIEF object per symbol costs more than the rest
    of the parse (bench/README.md).

    Only for a plainly laid out little-endian table (x86, Arm, RISC-V): a SHT_DYNSYM section
    where DT_SYMTAB points, entries of the class's size, every name inside a NUL-terminated
    DT_STRTAB, the version array whole. None otherwise, and LIEF reads the symbols.
    """
    section = binary.get(lief.ELF.Section.TYPE.DYNSYM)
    if section is None or binary.header.identity_data != lief.ELF.Header.ELF_DATA.LSB:
        return None
    is64 = binary.header.identity_class == lief.ELF.Header.CLASS.ELF64
    entry = 24 if is64 else 16
    symtab, strtab, strsz = (binary.get(tag) for tag in (_TAG.SYMTAB, _TAG.STRTAB, _TAG.STRSZ))
    if (symtab is None or strtab is None or strsz is None or section.entry_size != entry
            or section.size % entry or not section.size):
        return None
    count = section.size // entry
    table_at = binary.virtual_address_to_offset(symtab.value)
    names_at = binary.virtual_address_to_offset(strtab.value)
    if not isinstance(table_at, int) or table_at != section.file_offset or not isinstance(names_at, int):
        return None
    raw, names = read_at(table_at, count * entry), read_at(names_at, strsz.value)
    if len(raw) != count * entry or not names or names[0] or names[-1]:
        return None
    rows: list[Row] = list(struct.iter_unpack(_ROW_FORMATS[is64], raw))
    if not is64:  # Elf32_Sym: st_name, st_value, st_size, st_info, st_other, st_shndx
        rows = [(n, i, o, x, v, z) for n, v, z, i, o, x in rows]
    if max(row[0] for row in rows) >= len(names):
        return None
    versym: Sequence[int] = ()
    versions = binary.get(_TAG.VERSYM)
    if versions is not None:
        at = binary.virtual_address_to_offset(versions.value)
        data = read_at(at, 2 * count) if isinstance(at, int) else b""
        if len(data) != 2 * count:
            return None
        versym = array("H", data)
        if sys.byteorder != "little":
            versym.byteswap()
    find = names.find
    return rows, versym, lambda at: names[at:find(b"\0", at)].decode("utf-8", "surrogateescape")


def _lief_table(binary: lief.ELF.Binary) -> tuple[list[Row], Sequence[int], Callable[[Any], str]]:
    """The dynamic symbols as LIEF read them (parsed with `_full_config`)."""
    rows = [(sym.name, sym.information, sym.other, sym.shndx, 0, sym.size)
            for sym in binary.dynamic_symbols]
    return rows, [v.value for v in binary.symbols_version], _text


def _info_facts(info: int) -> tuple[str | None, str, bool]:
    """st_info -> (bind name when exported, else None; type name; whether its size counts)."""
    type_name = SYMBOL_TYPES.get(info & 0xF) or str(info & 0xF)
    return EXPORTED_BINDS.get(info >> 4), type_name, type_name in DATA_TYPES


#: every st_info byte's facts, looked up once per symbol
_BY_INFO = [_info_facts(info) for info in range(256)]
_NO_VERSION = (None, None)


def _symbols(table: tuple[list[Row], Sequence[int], Callable[[Any], str]], facts: dict[str, Any],
             defined: dict[int, str], required: dict[int, tuple[str, str]]) -> None:
    """Exports and imports of the table. An object's symbols share a few version indexes:
    each one's meaning is worked out once, as are the lookups by st_info."""
    rows, versym, name_of = table
    exports: list[list[Any]] = []
    imports: list[list[Any]] = []
    as_import: dict[int, tuple[str | None, str | None]] = {}
    as_export: dict[int, tuple[str | None, bool]] = {}
    versions = itertools.chain(versym, itertools.repeat(0))
    next(versions, None)  # row 0, the null symbol, is skipped
    for (name, info, other, shndx, _, size), ver in zip(itertools.islice(rows, 1, None), versions):
        if shndx == SHN_UNDEF:
            if info >> 4 == STB_LOCAL:
                continue
            needs = as_import.get(ver)
            if needs is None:
                node = ver & 0x7FFF
                needs = as_import[ver] = required.get(node, _NO_VERSION) if node >= 2 else _NO_VERSION
            imports.append([name_of(name), needs[0], needs[1], info >> 4 == STB_WEAK])
            continue
        bind_name, type_name, sized = _BY_INFO[info]
        if bind_name is None or other & 0x3 not in (STV_DEFAULT, STV_PROTECTED):
            continue
        gives = as_export.get(ver)
        if gives is None:
            gives = as_export[ver] = _export_version(ver, defined, required)
        exports.append([name_of(name), gives[0], gives[1], type_name, bind_name,
                        size if sized else None])
    exports.sort(key=_by_name_and_version)
    imports.sort(key=_by_name_and_version)
    facts["exports"], facts["imports"] = exports, imports


def _export_version(ver: int, defined: dict[int, str], required: dict[int, tuple[str, str]]
                    ) -> tuple[str | None, bool]:
    """(version, default) of a defined symbol whose versym entry is `ver`."""
    node = ver & 0x7FFF
    version = defined.get(node) if node >= 2 else None
    if version is None and node in required:
        # a program's copy of a library variable (copy relocation) keeps the version it
        # needs: `stderr@GLIBC_2.2.5`, never a default version of the program's own
        return required[node][0], False
    return version, not ver & VERSYM_HIDDEN


def _by_name_and_version(entry: list[Any]) -> tuple[str, str]:
    return entry[0], entry[1] or ""


def read_object(data: bytes, config: lief.ELF.ParserConfig | None = None) -> dict[str, Any]:
    """The facts of one ELF object, or its header and an `error` when it cannot be read.

    exports: [name, version, default, type, bind, size]; `default` is False for a hidden
    (`name@V`) version; size only for data. imports: [name, version, file, weak].
    `config`: LIEF's configuration, reading the symbols itself (tests compare the readings).
    """
    facts, readable = _header_facts(data)
    if not readable:
        return facts

    def read_at(offset: int, size: int) -> bytes:
        return data[offset:offset + size]

    dynamic = declares_dynamic(data, read_at)
    # a file object, never the bytes: LIEF takes a `bytes` argument that could be a path
    # for one (a short hostile file would make it open a file of the host)
    return _parsed(lambda full: lief.ELF.parse(io.BytesIO(data), config or _config(full)),
                   facts, dynamic, None if config else read_at)


def read_object_at(path: str, config: lief.ELF.ParserConfig | None = None) -> dict[str, Any]:
    """`read_object` of a file on the host (an image file read in place, found by the walk
    as a regular file): LIEF reads it itself, so no copy of a large object (LLVM's
    library) travels between processes or sits in two buffers."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        return _unreadable(exc)
    try:
        def read_at(offset: int, size: int) -> bytes:
            return os.pread(fd, size, offset)

        head = read_at(0, 64)
        facts, readable = _header_facts(head)
        if not readable:
            return facts
        dynamic = declares_dynamic(head, read_at)
        return _parsed(lambda full: lief.ELF.parse(path, config or _config(full)), facts,
                       dynamic, None if config else read_at)
    except OSError as exc:
        return _unreadable(exc)
    finally:
        os.close(fd)


def _unreadable(exc: OSError) -> dict[str, Any]:
    return {"arch": "unknown", "type": "unknown", "error": f"unreadable: {exc.strerror or exc}"}


def _config(full: bool) -> lief.ELF.ParserConfig:
    return _full_config() if full else _shared_config()


def _header_facts(head: bytes) -> tuple[dict[str, Any], bool]:
    """Architecture and type from the ELF header, and whether LIEF should parse the rest."""
    facts: dict[str, Any] = {"arch": elf_arch(head), "type": elf_type(head)}
    problem = header_problem(head)
    if problem is not None:
        facts["error"] = problem
        return facts, False
    # nothing a loader reads in other types; and kernel modules are large to parse
    return facts, facts["type"] in DYNAMIC_TYPES


def _parsed(parse: Callable[[bool], Any], facts: dict[str, Any], dynamic: bool,
            read_at: Callable[[int, int], bytes] | None) -> dict[str, Any]:
    """LIEF's reading of the object (`parse(full)`: with the dynamic symbols or without);
    `dynamic`: its program headers list PT_DYNAMIC; `read_at(offset, size)`: the object's
    bytes, from which its symbol table is read when plainly laid out (None: LIEF reads it)."""
    try:
        binary = parse(read_at is None)
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
        table = None
        if read_at is not None:
            try:
                table = _raw_table(binary, read_at)
            except Exception:  # e.g. an unreadable range: LIEF reads the symbols then
                table = None
        if table is None and read_at is not None:
            binary = parse(True)
        _symbols(table or _lief_table(binary), facts, defined, required)
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
