"""Every change kind the gate can emit: its aspects, default verdict and why it matters.

The one registry of kinds (docs/compat-rules.md is its prose, with each kind's subject
spelling): policy derives its default verdicts from it, the reports their why-texts, and
tests/test_contract.py checks that every kind the code emits is here and documented there.
A kind whose verdict depends on the change (a public path, a grown object, a budget) names
its usual verdict here; `harness.policy.default_verdict` holds the condition.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One change kind as docs/compat-rules.md defines it."""

    name: str
    aspects: tuple[str, ...]
    verdict: str  # break / review / info when no condition of policy.default_verdict applies
    why: str  # why it matters to a user of the baseline image
    shown: bool = False  # the reports give `why` as the reason a break hurts users


def _k(name: str, aspects: str, verdict: str, why: str, shown: bool = False) -> Kind:
    return Kind(name, tuple(aspects.split()), verdict, why, shown)


_ALL = [
    # packages
    _k("package-removed", "packages", "break",
       "dependants and users of its files and commands lose them", True),
    _k("package-replaced", "packages", "review",
       "another package now owns its files: dependencies on the old name break", True),
    _k("package-downgraded", "packages", "break",
       "package managers will not treat the candidate as an update", True),
    _k("package-epoch-changed", "packages", "break", "an epoch can never be lowered", True),
    _k("package-arch-changed", "packages", "break",
       "a different architecture changes what is installed", True),
    _k("package-added", "packages", "info", "a new package is expected evolution"),
    _k("package-upgraded", "packages", "info", "a higher version is expected evolution"),
    _k("license-changed", "packages", "review", "licence compliance must be checked again"),
    _k("license-added", "packages", "info",
       "a new package under a licence the project may not accept"),
    _k("package-files-missing", "packages", "break",
       "the package database promises files the image no longer has", True),
    _k("package-file-changed", "packages", "review",
       "a file differs from what its package's database records (mode, owner, digest)"),
    _k("unowned-files", "packages", "info",
       "files no package lists escape package updates and the SBOM"),
    _k("package-record-malformed", "packages", "review",
       "an unreadable database entry is skipped: that package is not judged"),
    _k("package-database-empty", "packages", "info",
       "a database of no packages is said aloud, never taken for a full one"),
    _k("no-package-database", "packages", "info",
       "an image without a package database has no packages aspect to judge"),
    # abi
    _k("library-removed", "abi", "break", "programs linked against the soname fail to start", True),
    _k("soname-changed", "abi", "break", "programs linked against the old soname fail to start",
       True),
    _k("symbol-removed", "abi", "break",
       "programs using the symbol fail to load or crash on first call", True),
    _k("symbol-moved", "abi", "info",
       "the loader still binds the symbol, from the library that now defines it"),
    _k("symbol-version-removed", "abi", "break",
       "glibc refuses to load every consumer that needs the version node", True),
    _k("symbol-type-changed", "abi", "break",
       "code expecting a function gets data (or the reverse)", True),
    _k("symbol-size-changed", "abi", "break", "copy relocations silently truncate a grown object",
       True),
    _k("symbol-added", "abi", "info", "a new symbol is expected evolution"),
    _k("needed-unresolved", "abi", "break", "the dynamic loader cannot find a needed library",
       True),
    _k("symbol-unresolved", "abi", "break", "the dynamic loader cannot bind a needed symbol",
       True),
    _k("needed-added", "abi", "review", "a new dependency must ship wherever the library does"),
    _k("runpath-changed", "abi", "review",
       "the loader searches other folders for the library's dependencies"),
    # files
    _k("file-removed", "files", "break", "scripts and programs using the path fail", True),
    _k("file-type-changed", "files", "break", "users of the path get a different kind of file",
       True),
    _k("mode-changed", "files", "review",
       "its permissions changed: a lost read or execute bit fails its users, a new bit widens "
       "who may use it", True),
    _k("owner-changed", "files", "review", "programs running as the old owner may lose access"),
    _k("symlink-target-changed", "files", "review", "users of the link reach another file"),
    _k("file-added", "files", "info", "a new file is expected evolution"),
    _k("file-modified", "files", "info", "content changes are expected in updates"),
    # metadata
    _k("user-changed", "metadata", "break", "every `docker run` runs as a different user", True),
    _k("entrypoint-changed", "metadata", "break", "every `docker run` runs a different program",
       True),
    _k("cmd-changed", "metadata", "break",
       "every `docker run` without arguments runs a different command", True),
    _k("workdir-changed", "metadata", "break", "relative paths of every `docker run` change",
       True),
    _k("platform-changed", "metadata", "break",
       "the image runs on another architecture or OS than its users expect"),
    _k("stopsignal-changed", "metadata", "review", "`docker stop` signals the program differently"),
    _k("healthcheck-changed", "metadata", "review", "orchestrators judge the container's health "
                                                    "differently"),
    _k("env-removed", "metadata", "break", "programs relying on the variable lose it", True),
    _k("env-added", "metadata", "info", "a new variable is expected evolution"),
    _k("env-changed", "metadata", "review", "programs see another value (PATH, LANG ...)"),
    _k("port-removed", "metadata", "break", "deployments relying on the exposed port lose it",
       True),
    _k("port-added", "metadata", "info", "a new exposed port is expected evolution"),
    _k("port-changed", "metadata", "review", "deployments relying on the port may see it differ"),
    _k("volume-removed", "metadata", "break", "data written to the volume is no longer kept apart",
       True),
    _k("volume-added", "metadata", "info", "a new volume is expected evolution"),
    _k("volume-changed", "metadata", "review", "data written to the volume may be kept otherwise"),
    _k("label-changed", "metadata", "info", "labels describe the image; programs do not use them"),
    _k("config-changed", "metadata", "review", "another image config key differs"),
    # security
    _k("setuid-added", "security", "break", "a new privileged program widens the attack surface",
       True),
    _k("world-writable-added", "security", "break", "anyone in the container can change the file",
       True),
    _k("empty-password", "security", "break",
       "an account logs in with no password (CVE-2019-5021 class)", True),
    _k("secret-found", "security", "review", "a private key or token baked into the image leaks"),
    _k("root-user", "security", "review", "the container runs as root unless told otherwise"),
    _k("hidden-in-lower-layer", "security size", "info",
       "a deleted secret, privileged program or binary still ships in the image's layers "
       "(docker save, registries) for anyone to extract", True),
    # size
    _k("size-increased", "size", "review", "pulls, storage and start-up grow with the image"),
    # probes
    _k("probe-item-removed", "probes", "break",
       "programs using the module, extension or applet fail", True),
    _k("probe-item-added", "probes", "info", "a new module, extension or applet is expected"),
    _k("probe-item-changed", "probes", "info", "a module's, extension's or applet's detail moved"),
    _k("runtime-version-changed", "probes", "break", "code written for the runtime's version may "
                                                     "fail", True),
    _k("runtime-updated", "probes", "info", "a patch release of the same major.minor"),
]

#: kind name -> its entry
KINDS: dict[str, Kind] = {k.name: k for k in _ALL}

#: Why each break hurts a user of the baseline image (the reports' "why" lines).
WHY: dict[str, str] = {k.name: k.why for k in _ALL if k.shown}


def with_verdict(verdict: str) -> frozenset[str]:
    """The kinds whose verdict, when no condition applies, is `verdict`."""
    return frozenset(k.name for k in _ALL if k.verdict == verdict)
