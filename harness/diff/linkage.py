"""The linkage closure of an image, resolved statically as the image's own loader would.

Every dynamically linked object is loaded as a root (a program, or a library as dlopen sees
it): its DT_NEEDED are found as glibc's ld.so finds them (RPATH of the loading chain unless
RUNPATH is set, RUNPATH, `/etc/ld.so.conf` with its includes, then the default and multiarch
directories of the object's architecture; objects already loaded match by name; a file of
another class or machine is skipped), or as musl's loader does (RPATH/RUNPATH of the chain,
`/etc/ld-musl-ARCH.path` or its defaults; `libc.so`, `libpthread.so.0`... are musl itself).

Then every needed version node and every non-weak undefined symbol is checked against the
closure. musl binds by name only: its objects get no version checks, and a hidden (`@`)
definition does not satisfy them. Unversioned references are checked only for programs,
whose whole scope is known: a library's unversioned reference may be meant for the program
that loads it (Perl and Python extension modules work that way).

A problem is reported when it occurs in every context in which its object was checked: a
plugin whose dependency is found only through its program's RPATH is not broken.
LD_LIBRARY_PATH applies when the caller puts the image's value in the ABI section as
`library_path` (the snapshot's ELF collector does not see the image's configuration).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.snapshot.elf import image_realpath
from harness.snapshot.elfheader import DYNAMIC_TYPES

#: Debian multiarch triplets per architecture (`uname -m` names, as the snapshot records)
TRIPLETS = {
    "x86_64": ("x86_64-linux-gnu",), "i686": ("i386-linux-gnu",), "x32": ("x86_64-linux-gnux32",),
    "aarch64": ("aarch64-linux-gnu",), "arm": ("arm-linux-gnueabihf", "arm-linux-gnueabi"),
    "ppc64le": ("powerpc64le-linux-gnu",), "ppc64": ("powerpc64-linux-gnu",),
    "ppc": ("powerpc-linux-gnu",), "s390x": ("s390x-linux-gnu",),
    "riscv64": ("riscv64-linux-gnu",), "loongarch64": ("loongarch64-linux-gnu",),
    "mips64": ("mips64el-linux-gnuabi64", "mips64-linux-gnuabi64"),
    "mips": ("mipsel-linux-gnu", "mips-linux-gnu"), "sparc64": ("sparc64-linux-gnu",),
}
#: architectures whose glibc keeps 64-bit libraries in lib64 (outside multiarch layouts)
LIB64 = frozenset({"x86_64", "aarch64", "ppc64le", "ppc64", "s390x", "riscv64", "loongarch64",
                   "mips64", "sparc64"})
MUSL_DEFAULT = ("/lib", "/usr/local/lib", "/usr/lib")
#: musl answers these names with itself (ldso/dynlink.c: "c.pthread.rt.m.dl.util.xnet.")
_MUSL_RESERVED = re.compile(r"^lib(c|pthread|rt|m|dl|util|xnet)\.")
_MUSL_INTERP = re.compile(r"ld-musl-([^/]+)\.so\.1$")


@dataclass(frozen=True)
class Finding:
    """One linkage problem: kind, subject and consumer as docs/compat-rules.md spells them."""

    kind: str
    subject: str
    consumer: str
    detail: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class _Node:
    """An object as loaded in one context: its real path, the directory $ORIGIN names, and
    the RPATH directories its loading chain passes down."""

    real: str
    origin: str
    inherited: tuple[str, ...]
    facts: dict[str, Any]


@dataclass
class _Context:
    """One root's load: the objects in load order and how each NEEDED resolved."""

    root: str
    flavor: str
    is_program: bool
    nodes: list[_Node] = field(default_factory=list)
    loaded: dict[str, str] = field(default_factory=dict)
    resolved: dict[tuple[str, str], str | None] = field(default_factory=dict)


def _split_colon(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split(":")
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _split_path_list(text: str) -> list[str]:
    return [p for p in re.split(r"[\s:,]+", text) if p]


def parse_ld_so_conf(config: Mapping[str, str], path: str = "/etc/ld.so.conf") -> list[str]:
    """The directories of an ld.so.conf, includes (globs, relative to the including file's
    folder) followed in order, as ldconfig reads them."""
    dirs: list[str] = []
    seen: set[str] = set()

    def read(conf: str) -> None:
        if conf in seen or conf not in config:
            return
        seen.add(conf)
        for raw in config[conf].splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            word, *rest = line.split()
            if word == "include":
                for pattern in rest:
                    if not pattern.startswith("/"):
                        pattern = posixpath.join(posixpath.dirname(conf), pattern)
                    depth = pattern.count("/")
                    for match in sorted(p for p in config
                                        if p.count("/") == depth and fnmatch.fnmatchcase(p, pattern)):
                        read(match)
            elif word == "hwcap":
                continue
            else:
                dirs.extend(d.split("=", 1)[0] for d in _split_path_list(line))

    read(path)
    return dirs


#: a check of one object (its versioned references against the objects they name, its
#: unversioned ones against a program's scope) keyed by what decides it: the sha256 of each
#: object's file it reads, and whether that object read as an error -> its problems. The
#: images of a release family, judged in one process, share their base's objects: each
#: check is made once. Started again past `_MAX_SHARED_CHECKS`
_SHARED_CHECKS: dict[tuple[Any, ...], frozenset[tuple[str, ...]]] = {}
_MAX_SHARED_CHECKS = 1 << 14


def _shared_check(key: tuple[Any, ...] | None, check: Callable[[], Iterable[tuple[str, ...]]]
                  ) -> frozenset[tuple[str, ...]]:
    """The problems of `check()`, made once for a `key` (None: made every time)."""
    if key is None:
        return frozenset(check())
    found = _SHARED_CHECKS.get(key)
    if found is None:
        if len(_SHARED_CHECKS) >= _MAX_SHARED_CHECKS:
            _SHARED_CHECKS.clear()
        found = _SHARED_CHECKS[key] = frozenset(check())
    return found


class Linker:
    """The loader's view of one image's ABI section (see harness.snapshot.elf)."""

    def __init__(self, abi: Mapping[str, Any]) -> None:
        self.objects: dict[str, dict[str, Any]] = abi.get("objects") or {}
        self._symlinks: dict[str, str] = abi.get("symlinks") or {}
        self._hardlinks: dict[str, str] = abi.get("hardlinks") or {}
        self._config: dict[str, str] = abi.get("loader_config") or {}
        self.conf_dirs = tuple(parse_ld_so_conf(self._config))
        # the image's ENV LD_LIBRARY_PATH: every process started from it searches there
        self.env_dirs = tuple(d for d in _split_colon(abi.get("library_path")) if d.startswith("/"))
        self._real: dict[str, str | None] = {}
        self._search_memo: dict[tuple[Any, ...], tuple[str, str] | None] = {}
        self._defaults: dict[str, tuple[str, ...]] = {}
        self._exports: dict[str, set[tuple[str, str | None]]] = {}
        self._names: dict[str, set[str]] = {}
        self._musl_names: dict[str, set[str]] = {}
        #: (object, its verneed targets) -> problems before the scope fallback: an object is
        #: checked in every program's context that loads it, mostly with the same targets
        self._versioned_memo: dict[tuple[Any, ...], frozenset[tuple[str, ...]]] = {}
        #: path -> the sha256 of the object's file, where the caller gave them (`digests`):
        #: checks then shared across images (`_SHARED_CHECKS`)
        self._digests: Mapping[str, str] = abi.get("digests") or {}
        #: (object, musl) -> its references bound by name alone: none for most glibc objects,
        #: and each object is checked once per program that loads it
        self._by_name: dict[tuple[str, bool], list[tuple[str, str | None, str | None]]] = {}
        self._sonames: set[tuple[Any, Any]] | None = None
        self._interps = self._find_interpreters()

    # -- files -------------------------------------------------------------------------
    def locate(self, path: str) -> str | None:
        """The object a path names after symlinks and hard links, or None."""
        if path not in self._real:
            real = image_realpath(path, self._symlinks)
            if real is not None:
                real = self._hardlinks.get(real, real)
            self._real[path] = real if real in self.objects else None
        return self._real[path]

    def _find_interpreters(self) -> dict[str, list[tuple[str, str]]]:
        """arch -> [(real path, flavor)] of every program interpreter the image's objects name."""
        found: dict[str, list[tuple[str, str]]] = {}
        for interp in sorted({o["interp"] for o in self.objects.values() if o.get("interp")}):
            real = self.locate(interp)
            if real is None:
                continue
            entry = (real, "musl" if _MUSL_INTERP.search(interp) else "glibc")
            arch = self.objects[real]["arch"]
            if entry not in found.setdefault(arch, []):
                found[arch].append(entry)
        return found

    def primary_arch(self) -> str | None:
        """The architecture most objects are built for (the image's own)."""
        counts = Counter(o["arch"] for o in self.objects.values() if o.get("type") in DYNAMIC_TYPES)
        return counts.most_common(1)[0][0] if counts else None

    def checkable(self) -> list[str]:
        """Objects whose linkage is checked: dynamically linked, readable, and of an
        architecture the image can run (its own, or one it has a loader for)."""
        primary = self.primary_arch()
        return [p for p, o in sorted(self.objects.items())
                if o.get("type") in DYNAMIC_TYPES and "error" not in o
                and (o["arch"] == primary or o["arch"] in self._interps)]

    # -- search ------------------------------------------------------------------------
    def flavor(self, facts: Mapping[str, Any]) -> str:
        """`musl` or `glibc`: the loader that will load this object."""
        interp = facts.get("interp")
        if interp:
            return "musl" if _MUSL_INTERP.search(interp) else "glibc"
        if any(n.startswith(("libc.musl-", "ld-musl-")) for n in facts.get("needed") or []):
            return "musl"
        flavors = {f for _, f in self._interps.get(facts["arch"], [])}
        return "musl" if flavors == {"musl"} else "glibc"

    def _interpreter(self, facts: Mapping[str, Any], flavor: str) -> str | None:
        if facts.get("interp"):
            return self.locate(facts["interp"])
        for real, kind in self._interps.get(facts["arch"], []):
            if kind == flavor:
                return real
        return None

    def default_dirs(self, arch: str, flavor: str, musl_arch: str | None = None) -> tuple[str, ...]:
        """The loader's built-in directories for an architecture in this image's layout."""
        key = f"{flavor}:{arch}:{musl_arch}"
        if key not in self._defaults:
            self._defaults[key] = self._compute_defaults(arch, flavor, musl_arch)
        return self._defaults[key]

    def _compute_defaults(self, arch: str, flavor: str, musl_arch: str | None) -> tuple[str, ...]:
        if flavor == "musl":
            path_file = f"/etc/ld-musl-{musl_arch}.path"
            if path_file in self._config:
                return tuple(p for p in re.split(r"[:\n]+", self._config[path_file]) if p.strip())
            return MUSL_DEFAULT
        triplets = TRIPLETS.get(arch, ())
        multiarch = [f"{prefix}/{t}" for t in triplets for prefix in ("/lib", "/usr/lib")]
        if any(p.startswith(tuple(d + "/" for d in multiarch)) for p in self.objects):
            # Debian's ld.so: the multiarch directories, then /lib and /usr/lib
            return (*multiarch, "/lib", "/usr/lib")
        if arch == "x32":
            return ("/libx32", "/usr/libx32")
        if arch in LIB64:
            return ("/lib64", "/usr/lib64")
        return ("/lib", "/usr/lib")

    def expand(self, entries: Iterable[str], origin: str, arch: str, flavor: str) -> list[str]:
        """RPATH/RUNPATH entries with $ORIGIN (and for glibc $LIB, $PLATFORM) substituted;
        relative and empty entries name the caller's working directory and are dropped."""
        out: list[str] = []
        for entry in entries:
            value = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
            values = [value]
            if flavor == "glibc" and "$" in value:
                libs = {d.lstrip("/") for d in self.default_dirs(arch, flavor)[:1]} | {"lib", "lib64"}
                values = [v.replace("${PLATFORM}", arch).replace("$PLATFORM", arch)
                          for v in (value.replace("${LIB}", lib).replace("$LIB", lib) for lib in sorted(libs))]
            out.extend(v for v in values if v.startswith("/"))
        return out

    def search(self, name: str, dirs: tuple[str, ...], arch: str) -> tuple[str, str] | None:
        """(path as found, real path) of the first compatible object named `name` in `dirs`."""
        key = (name, dirs, arch)
        if key not in self._search_memo:
            self._search_memo[key] = self._search(name, dirs, arch)
        return self._search_memo[key]

    def _search(self, name: str, dirs: tuple[str, ...], arch: str) -> tuple[str, str] | None:
        candidates = [name] if "/" in name else [posixpath.join(d, name) for d in dirs]
        for path in candidates:
            if not path.startswith("/"):
                continue
            real = self.locate(path)
            # ld.so skips an object of another class or machine and searches on
            if real is not None and self.objects[real].get("arch") in (arch, "unknown"):
                return path, real
        return None

    def _own_rpath(self, node: _Node, flavor: str) -> tuple[str, ...]:
        facts, arch = node.facts, node.facts["arch"]
        if flavor == "musl":  # musl: RUNPATH if set, else RPATH, for the whole chain
            entries = facts.get("runpath") or facts.get("rpath") or []
        else:  # glibc ignores RPATH when RUNPATH is set
            entries = [] if facts.get("runpath") else facts.get("rpath") or []
        return tuple(self.expand(entries, node.origin, arch, flavor))

    def lookup_dirs(self, node: _Node, flavor: str, musl_arch: str | None) -> tuple[str, ...]:
        """Where the loader looks for a NEEDED of this node, in order."""
        facts, arch = node.facts, node.facts["arch"]
        if flavor == "musl":
            return (*self.env_dirs, *self._own_rpath(node, flavor), *node.inherited,
                    *self.default_dirs(arch, flavor, musl_arch))
        chain: tuple[str, ...] = ()
        if not facts.get("runpath"):
            chain = (*self._own_rpath(node, flavor), *node.inherited)
        runpath = tuple(self.expand(facts.get("runpath") or [], node.origin, arch, flavor))
        return (*chain, *self.env_dirs, *runpath, *self.conf_dirs, *self.default_dirs(arch, flavor))

    # -- load ------------------------------------------------------------------------------
    def load(self, root: str) -> _Context:
        """Load one object as the root of a process (breadth first, as ld.so does)."""
        facts = self.objects[root]
        flavor = self.flavor(facts)
        ctx = _Context(root, flavor, bool(facts.get("interp")))
        interp = self._interpreter(facts, flavor)
        musl_arch = None
        if interp is not None:
            match = _MUSL_INTERP.search(interp)
            musl_arch = match.group(1) if match else None
            if interp != root:  # the loader is in every process before anything it loads
                self._register(ctx, interp, [posixpath.basename(interp)])
        elif facts.get("interp"):
            ctx.resolved[(root, facts["interp"])] = None
        if musl_arch is None and flavor == "musl":
            musl_arch = next((m.group(1) for r, k in self._interps.get(facts["arch"], [])
                              if k == "musl" and (m := _MUSL_INTERP.search(r))), facts["arch"])
        first = _Node(root, posixpath.dirname(root), (), facts)
        ctx.nodes.append(first)
        ctx.loaded[root] = root
        if facts.get("soname"):
            ctx.loaded.setdefault(facts["soname"], root)
        queue = deque([first])
        while queue:
            node = queue.popleft()
            dirs: tuple[str, ...] | None = None
            for name in node.facts.get("needed") or []:
                real = ctx.loaded.get(name)
                if real is None and flavor == "musl" and _MUSL_RESERVED.match(name):
                    real = interp
                if real is None:
                    if dirs is None:
                        dirs = self.lookup_dirs(node, flavor, musl_arch)
                    found = self.search(name, dirs, node.facts["arch"])
                    if found is not None:
                        path, real = found
                        if real not in ctx.loaded:
                            child = _Node(real, posixpath.dirname(path),
                                          (*self._own_rpath(node, flavor), *node.inherited)
                                          if flavor == "musl" or not node.facts.get("runpath")
                                          else node.inherited, self.objects[real])
                            if "error" not in child.facts:
                                queue.append(child)
                            ctx.nodes.append(child)
                        self._register(ctx, real, [name])
                ctx.resolved[(node.real, name)] = real
        return ctx

    def _register(self, ctx: _Context, real: str, names: list[str]) -> None:
        if real not in ctx.loaded:
            ctx.loaded[real] = real
            facts = self.objects[real]
            if facts.get("soname"):
                ctx.loaded.setdefault(facts["soname"], real)
            if not any(n.real == real for n in ctx.nodes):
                ctx.nodes.append(_Node(real, posixpath.dirname(real), (), facts))
        for name in names:
            ctx.loaded.setdefault(name, real)

    # -- symbols ---------------------------------------------------------------------------
    def exports(self, real: str) -> set[tuple[str, str | None]]:
        """(name, version) of everything an object exports, default or hidden."""
        if real not in self._exports:
            self._exports[real] = {(e[0], e[1]) for e in self.objects[real].get("exports") or []}
        return self._exports[real]

    def names(self, real: str) -> set[str]:
        """Names an object exports, any version."""
        if real not in self._names:
            self._names[real] = {e[0] for e in self.objects[real].get("exports") or []}
        return self._names[real]

    def musl_names(self, real: str) -> set[str]:
        """Names musl binds to: every export but hidden (`@`) versions."""
        if real not in self._musl_names:
            self._musl_names[real] = {e[0] for e in self.objects[real].get("exports") or [] if e[2]}
        return self._musl_names[real]

    def versioned_problems(self, ctx: _Context, node: _Node) -> set[tuple[str, ...]]:
        """Missing version nodes and versioned symbols of one node (glibc only)."""
        targets = {file: ctx.resolved.get((node.real, file), ctx.loaded.get(file))
                   for file in node.facts.get("verneed") or {}}
        key = (node.real, tuple(targets.items()))
        found = self._versioned_memo.get(key)
        if found is None:
            found = self._versioned_memo[key] = _shared_check(
                self._content_key("versioned", node.real, targets.values()),
                lambda: self._versioned_against(node, targets))
        if not found:
            return set()
        scope = [n.real for n in ctx.nodes if "error" not in n.facts]
        # ld.so binds a versioned reference to any object of the scope
        return {p for p in found if p[0] != "symbol"
                or not any((p[2], p[3]) in self.exports(real) for real in scope)}

    def _versioned_against(self, node: _Node, targets: Mapping[str, str | None]
                           ) -> set[tuple[str, ...]]:
        problems: set[tuple[str, ...]] = set()
        for file, nodes in (node.facts.get("verneed") or {}).items():
            target = targets[file]
            if target is None or "error" in self.objects[target]:
                continue
            versions = set(self.objects[target].get("versions") or [])
            if not versions:
                # ld.so only warns ("no version information available"); the symbols
                # bound from such a library are checked below
                continue
            problems.update(("node", file, v) for v, weak in nodes if not weak and v not in versions)
        # per needed file, once: its exports, or None when nothing is checked against it
        # (tens of thousands of imports per image). A versioned reference is not bound from
        # the library it names when that library has no version information: ld.so's
        # check_match asserts; only another object of the scope can still provide it.
        against: dict[str, set[tuple[str, str | None]] | None] = {}
        for name, version, file, weak in node.facts.get("imports") or []:
            if weak or version is None:
                continue
            if file not in against:
                target = targets.get(file)
                against[file] = (None if target is None or "error" in self.objects[target]
                                 else self.exports(target))
            checked = against[file]
            if checked is None or (name, version) in checked:
                continue
            problems.add(("symbol", file, name, version))
        return problems

    def unversioned_problems(self, ctx: _Context, node: _Node) -> set[tuple[str, ...]]:
        """Non-weak references no object of a program's scope defines (by name)."""
        musl = ctx.flavor == "musl"
        refs = self._by_name.get((node.real, musl))
        if refs is None:
            refs = self._by_name[(node.real, musl)] = [
                (name, version, file) for name, version, file, weak in node.facts.get("imports") or []
                if not weak and (version is None or musl)]
        if not refs:
            return set()
        scope = [n.real for n in ctx.nodes if "error" not in n.facts]
        if len(scope) < len(ctx.nodes):
            return set()  # an unreadable object in scope may define anything
        names = self.musl_names if musl else self.names

        def check() -> Iterable[tuple[str, ...]]:
            # musl ignores the version the linker recorded, the report still names it
            return {("symbol", file or "", name, version or "") for name, version, file in refs
                    if not any(name in names(real) for real in scope)}
        return set(_shared_check(self._content_key(ctx.flavor, node.real, scope), check))

    def _content_key(self, kind: str, real: str, others: Iterable[str | None]
                     ) -> tuple[Any, ...] | None:
        """What decides a check of the object `real` against `others` (None: no object),
        by content (`_SHARED_CHECKS`); None when a digest is not known."""
        digests, objects = self._digests, self.objects
        parts: list[Any] = [kind]
        for path in (real, *others):
            if path is None:
                parts.append(None)
                continue
            digest = digests.get(path)
            if digest is None:
                return None
            parts.append((digest, "error" in objects[path]))
        return tuple(parts)

    def findings(self) -> list[Finding]:
        """Every NEEDED that resolves nowhere and every symbol nothing provides."""
        needed_ok: dict[tuple[str, str], bool] = {}
        checks: Counter[tuple[str, str]] = Counter()
        fails: Counter[tuple[str, tuple[str, ...]]] = Counter()
        searched: dict[tuple[str, str], tuple[str, ...]] = {}
        for root in self.checkable():
            ctx = self.load(root)
            for (consumer, name), real in ctx.resolved.items():
                needed_ok[(consumer, name)] = needed_ok.get((consumer, name), False) or real is not None
                if real is None and consumer == root:
                    searched[(consumer, name)] = self._searched(ctx, name)
            # a missing library explains any unversioned reference of its scope
            complete = all(real is not None for real in ctx.resolved.values())
            for node in ctx.nodes:
                if "error" in node.facts:
                    continue
                if ctx.flavor == "glibc":
                    checks[(node.real, "versioned")] += 1
                    for problem in self.versioned_problems(ctx, node):
                        fails[(node.real, (*problem, "versioned"))] += 1
                if ctx.is_program and complete:
                    checks[(node.real, "unversioned")] += 1
                    for problem in self.unversioned_problems(ctx, node):
                        fails[(node.real, (*problem, "unversioned"))] += 1
        return self._report(needed_ok, checks, fails, searched)

    def _loaded_by_host(self, consumer: str, name: str) -> bool:
        """A library (no interpreter: never a process's root) whose NEEDED names an object
        of the image off every search path: its host program loads that object first and
        ld.so then matches the NEEDED by soname. The JDK's libjava.so needs libjvm.so, which
        the `java` launcher dlopens from lib/server/; the reference resolves to a file of
        the image, which is all docs/compat-rules.md asks, and breaks when that file goes."""
        facts = self.objects[consumer]
        if facts.get("interp") or "/" in name:
            return False
        if self._sonames is None:
            self._sonames = {(o.get("soname"), o.get("arch")) for o in self.objects.values()
                             if o.get("soname") and "error" not in o}
        return (name, facts.get("arch")) in self._sonames

    def _searched(self, ctx: _Context, name: str) -> tuple[str, ...]:
        node = next((n for n in ctx.nodes if n.real == ctx.root), None)
        if node is None or "/" in name:
            return ()
        musl_arch = None
        if ctx.flavor == "musl":
            musl_arch = next((m.group(1) for r, _ in self._interps.get(node.facts["arch"], [])
                              if (m := _MUSL_INTERP.search(r))), None)
        return self.lookup_dirs(node, ctx.flavor, musl_arch)

    def _report(self, needed_ok: Mapping[tuple[str, str], bool], checks: Counter[tuple[str, str]],
                fails: Counter[tuple[str, tuple[str, ...]]],
                searched: Mapping[tuple[str, str], tuple[str, ...]]) -> list[Finding]:
        out = [Finding("needed-unresolved", name, consumer,
                       {"searched": list(dict.fromkeys(searched.get((consumer, name), ())))})
               for (consumer, name), ok in sorted(needed_ok.items())
               if not ok and not self._loaded_by_host(consumer, name)]
        for (consumer, problem), count in sorted(fails.items()):
            *what, cls = problem
            if count < checks[(consumer, cls)]:
                continue  # some context loads it fine (e.g. through its program's RPATH)
            out.append(self._symbol_finding(consumer, what))
        return out

    def _symbol_finding(self, consumer: str, what: list[str]) -> Finding:
        kind = what[0]
        if kind == "node":
            _, file, version = what
            return Finding("symbol-unresolved", f"{file}:@{version}", consumer,
                           {"version_node": version, "library": file})
        _, file, name, version = what
        if not file:
            file = self._provider_guess(consumer, name)
        subject = f"{file}:{name}@{version}" if version else f"{file}:{name}"
        return Finding("symbol-unresolved", subject, consumer, {"library": file})

    def _provider_guess(self, consumer: str, name: str) -> str:
        """The library an unversioned reference was meant for. A reference the linker left
        unversioned was bound to an unversioned library: when the consumer needs exactly one,
        that is it; else a library of the image that exports the name; else `*`."""
        facts = self.objects[consumer]
        ctx = self.load(consumer)  # only on this rare path: a finding to name
        unversioned = []
        for needed in facts.get("needed") or []:
            real = ctx.resolved.get((consumer, needed))
            if real is None or not self.objects[real].get("versions"):
                unversioned.append(needed)
        if len(unversioned) == 1:
            return str(unversioned[0])
        for path, other in sorted(self.objects.items()):
            if other.get("soname") and other.get("arch") == facts["arch"] and name in self.names(path):
                return str(other["soname"])
        return "*"


def linkage_findings(abi: Mapping[str, Any]) -> list[Finding]:
    """needed-unresolved and symbol-unresolved findings of one image's ABI section."""
    if not abi.get("objects"):
        return []
    return Linker(abi).findings()
