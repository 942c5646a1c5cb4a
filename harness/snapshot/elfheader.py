"""ELF header and symbol-table facts read from raw bytes (elf.h's values), without LIEF:
the walk's collector (`harness.snapshot.elf`) and the parser in its workers
(`harness.snapshot.elfparse`) both read them here."""

from __future__ import annotations

import struct
from collections.abc import Callable

#: object kinds with dynamic linkage; relocatable objects (.o, .ko) and cores have none
DYNAMIC_TYPES = frozenset({"DYN", "EXEC"})

# st_info / st_other values (elf.h); LIEF's enums are slower to compare than the raw ints
STB_LOCAL, STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 0, 1, 2, 10
EXPORTED_BINDS = {STB_GLOBAL: "GLOBAL", STB_WEAK: "WEAK", STB_GNU_UNIQUE: "UNIQUE"}
SYMBOL_TYPES = {0: "NOTYPE", 1: "OBJECT", 2: "FUNC", 3: "SECTION", 4: "FILE", 5: "COMMON", 6: "TLS",
                10: "IFUNC"}
#: types whose size is part of the ABI (copy relocations copy exactly st_size bytes)
DATA_TYPES = frozenset({"OBJECT", "COMMON", "TLS"})
STV_DEFAULT, STV_PROTECTED = 0, 3
SHN_UNDEF = 0
VERSYM_HIDDEN = 0x8000
VER_FLG_BASE, VER_FLG_WEAK = 0x1, 0x2
_FILE_TYPES = {1: "REL", 2: "EXEC", 3: "DYN", 4: "CORE"}

#: (e_machine, ELF class) -> the name `uname -m` prints on such a machine
_ARCHES = {
    (62, 64): "x86_64", (62, 32): "x32", (3, 32): "i686", (183, 64): "aarch64", (40, 32): "arm",
    (21, 64): "ppc64", (20, 32): "ppc", (22, 64): "s390x", (22, 32): "s390",
    (243, 64): "riscv64", (243, 32): "riscv32", (8, 32): "mips", (8, 64): "mips64",
    (258, 64): "loongarch64", (2, 32): "sparc", (43, 64): "sparc64",
}


def elf_arch(data: bytes) -> str:
    """The object's architecture from its ELF header (`x86_64`, `i686`, `ppc64le` ...)."""
    if len(data) < 20:
        return "unknown"
    bits = {1: 32, 2: 64}.get(data[4], 0)
    order = "<" if data[5] == 1 else ">"
    (machine,) = struct.unpack_from(order + "H", data, 18)
    arch = _ARCHES.get((machine, bits), f"em{machine}-{bits}")
    if arch == "ppc64" and order == "<":
        return "ppc64le"
    return arch


def elf_type(data: bytes) -> str:
    """REL, EXEC, DYN or CORE from the ELF header."""
    if len(data) < 18:
        return "unknown"
    (kind,) = struct.unpack_from("<H" if data[5] == 1 else ">H", data, 16)
    return _FILE_TYPES.get(kind, str(kind))


def header_problem(data: bytes) -> str | None:
    """Why the ELF header is unusable, or None (LIEF accepts some garbage as an empty object)."""
    if len(data) < 52:
        return f"truncated ELF header ({len(data)} bytes)"
    if data[4] not in (1, 2):
        return f"invalid ELF class {data[4]}"
    if data[5] not in (1, 2):
        return f"invalid ELF data encoding {data[5]}"
    if data[4] == 2 and len(data) < 64:
        return f"truncated ELF64 header ({len(data)} bytes)"
    return None


_PT_DYNAMIC = 2
#: program headers read at most (PN_XNUM and beyond mean a damaged header anyway)
_MAX_PHNUM = 4096


def declares_dynamic(head: bytes, read_at: Callable[[int, int], bytes]) -> bool:
    """Whether the program header table lists a PT_DYNAMIC segment, read from the raw table
    (`read_at(offset, size)`; `head` is a sound ELF header). LIEF versions differ in what
    they keep of a segment lying past the end of a truncated file: this does not depend on
    them."""
    order = "<" if head[5] == 1 else ">"
    if head[4] == 2:
        (phoff,) = struct.unpack_from(order + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
    else:
        (phoff,) = struct.unpack_from(order + "I", head, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 42)
    if phentsize < 4 or not phnum or phoff >= 1 << 62:
        return False
    table = read_at(phoff, phentsize * min(phnum, _MAX_PHNUM))
    return any(struct.unpack_from(order + "I", table, at)[0] == _PT_DYNAMIC
               for at in range(0, len(table) - 3, phentsize))
