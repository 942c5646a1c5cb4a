"""Root causes: each change linked to the change that explains it, through package ownership
and the ABI data (docs/compat-rules.md, "Root causes").

- a package removed, replaced, up- or downgraded -> the files it owned, its libraries and
  their symbols (the `package` owner of a file record; the `packages` of a library record)
- a library removed or its soname changed -> its symbols and the consumers that lose it
  (needed-unresolved / symbol-unresolved of the soname)
- a package whose files are now owned by another package (Debian's t64 renames, package
  slicing) is one `package-replaced` change (the packages diff decides it, `replacements`)

Pure functions over the changes and the records both sides hold: the gate sets each change's
`cause` before the policy judges it, so a waiver on a cause covers its consequences in every
aspect's test, and the reports group by it.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.diff.change import Change
from harness.diff.packages import diff_packages

#: the package change kinds that explain what their files, libraries and symbols did, the
#: most telling first (a name with several changes is explained by the first)
PACKAGE_CAUSES = ("package-replaced", "package-removed", "package-arch-changed",
                  "package-epoch-changed", "package-downgraded", "package-upgraded")
LIBRARY_CAUSES = ("library-removed", "soname-changed")
#: consequences of a library change, found by the soname their subject or key names
_BY_SONAME = ("needed-unresolved",)
_SYMBOL_KINDS = ("symbol-removed", "symbol-added", "symbol-type-changed", "symbol-size-changed",
                 "symbol-version-removed", "symbol-moved")


def cause_ref(change: Change) -> dict[str, str]:
    """A change as the `cause` of the JSON contract names it: aspect, kind, subject."""
    return change.self_cause()


@dataclass
class CauseIndex:
    """What explains an image's changes: package name -> its package change; soname -> its
    library change; soname -> the package that shipped it in the baseline."""

    packages: dict[str, Change] = field(default_factory=dict)
    libraries: dict[str, Change] = field(default_factory=dict)
    library_owner: dict[str, str] = field(default_factory=dict)
    #: new owner -> the package-replaced change it took the files of
    new_owners: dict[str, Change] = field(default_factory=dict)
    #: the file records of the baseline and the candidate (their `package` owners)
    before_files: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    after_files: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, changes: Iterable[Change]) -> None:
        """Index the package and library changes among `changes`."""
        for c in changes:
            if c.kind in PACKAGE_CAUSES:
                known = self.packages.get(c.subject)
                if known is None or PACKAGE_CAUSES.index(c.kind) < PACKAGE_CAUSES.index(known.kind):
                    self.packages[c.subject] = c
                if c.kind == "package-replaced" and isinstance(c.after, dict) and c.after.get("package"):
                    self.new_owners.setdefault(str(c.after["package"]), c)
            elif c.kind in LIBRARY_CAUSES:
                self.libraries.setdefault(c.subject, c)
                if c.kind == "soname-changed" and isinstance(c.after, str):
                    self.libraries.setdefault(c.after, c)
                packages = (c.before or {}).get("packages") if isinstance(c.before, dict) else None
                if packages:
                    self.library_owner.setdefault(c.subject, str(packages[0]))

    def add_library_owners(self, abi_records: Mapping[str, Any] | None) -> None:
        """The package that shipped each library of the baseline (its record's `packages`,
        else the owner of its files): a symbol of a kept library is then explained by that
        package's change."""
        for key, record in (abi_records or {}).items():
            if ":" in key or not isinstance(record, dict):
                continue
            owner = (record.get("packages") or [None])[0]
            for path in record.get("paths") or []:
                owner = owner or (self.before_files.get(path) or {}).get("package")
            if owner:
                self.library_owner.setdefault(key, str(owner))

    def explain(self, change: Change) -> Change | None:
        """The change that directly explains `change`, or None (it is a root cause)."""
        kind = change.kind
        if kind in PACKAGE_CAUSES:
            return None
        if kind == "package-added":
            return self.new_owners.get(change.subject)
        if kind in LIBRARY_CAUSES:
            return self._package_of_library(change.subject, change)
        library = None
        if kind in _SYMBOL_KINDS:
            library = change.subject.partition(":")[0]
        elif kind in _BY_SONAME:
            library = change.subject
        elif kind == "symbol-unresolved" and isinstance(change.after, dict):
            library = change.after.get("library") or change.after.get("needed")
        if library:
            found = self.libraries.get(library)
            if found is not None and found is not change:
                return found
            return self._package_of_library(library, change)
        owner = self._file_owner(change)
        if owner is not None:
            return self.packages.get(owner)
        return None

    def _package_of_library(self, library: str, change: Change) -> Change | None:
        owner = self.library_owner.get(library.split("(", 1)[0]) or self.library_owner.get(library)
        found = self.packages.get(owner) if owner else None
        return found if found is not change else None

    def _file_owner(self, change: Change) -> str | None:
        """The package a file change's path belonged to, as the baseline (or, for an
        addition, the candidate) recorded it."""
        if change.aspect not in ("files", "security", "packages"):
            return None
        for files in (self.before_files, self.after_files):
            owner = (files.get(change.subject) or {}).get("package")
            if isinstance(owner, str):
                return owner
        return None

    def root(self, change: Change) -> Change:
        """The change at the top of `change`'s chain of explanations (itself for a root)."""
        seen = {id(change)}
        current = change
        while True:
            up = self.explain(current)
            if up is None or id(up) in seen:
                return current
            seen.add(id(up))
            current = up


def link(changes: list[Change], index: CauseIndex) -> list[Change]:
    """Set each change's `cause` to its root's reference (a root's own cause is itself).

    A removed folder no package lists is explained by what explains the removed files
    under it (the most of them), when they have a cause other than themselves."""
    roots = {id(c): index.root(c) for c in changes}
    removed = sorted((c.subject, roots[id(c)]) for c in changes
                     if c.kind == "file-removed" and roots[id(c)] is not c)
    paths = [p for p, _ in removed]
    for c in changes:
        root = roots[id(c)]
        if root is c and c.kind == "file-removed" and isinstance(c.before, dict) \
                and c.before.get("type") == "dir":
            start = bisect.bisect_left(paths, c.subject + "/")
            end = bisect.bisect_left(paths, c.subject + "0")  # "0" sorts right after "/"
            if end > start:
                votes = Counter(id(r) for _, r in removed[start:end])
                best = votes.most_common(1)[0][0]
                root = next(r for _, r in removed[start:end] if id(r) == best)
        c.cause = cause_ref(root)
    return changes


def build_index(before: Mapping[str, Mapping[str, Any]], packages: dict[str, dict[str, Any]],
                files: Mapping[str, dict[str, Any]], abi_changes: Iterable[Change]) -> CauseIndex:
    """The cause index of one image: `before` holds the baseline's records by aspect
    (`packages`, `files`, `abi`; an absent one is empty), `packages` and `files` the
    candidate's, `abi_changes` the library changes of the ABI diff."""
    index = CauseIndex(before_files=before.get("files") or {}, after_files=files)
    old_packages = dict(before.get("packages") or {})
    if old_packages:
        index.add(diff_packages(old_packages, packages, index.before_files, files))
    index.add_library_owners(before.get("abi"))
    index.add(c for c in abi_changes if c.kind in LIBRARY_CAUSES)
    return index
