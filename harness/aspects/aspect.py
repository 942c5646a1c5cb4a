"""What the gate knows of an aspect (`Aspect`) and of a change kind (`Kind`).

Each aspect's module in harness/aspects/ holds one `ASPECT` with its kinds; the registry is
`harness.aspects.REGISTRY`, and harness.kinds gathers every kind from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.config import HarnessConfig
from harness.diff.change import Change
from harness.diff.linkage import Finding
from harness.filetable import FileTable
from harness.memo import IdentityMemo
from harness.paths import glob_regex
from harness.snapshot import Snapshot


@dataclass(frozen=True)
class Kind:
    """One change kind as docs/compat-rules.md defines it (its row there also gives the
    subject's spelling)."""

    name: str
    #: the aspects its changes carry (`size` changes are reported with the metadata)
    aspects: tuple[str, ...]
    verdict: str  # break / review / info when no condition of policy.default_verdict applies
    why: str  # why it matters to a user of the baseline image
    shown: bool = False  # the reports give `why` as the reason a break hurts users


def kind(name: str, aspects: str, verdict: str, why: str, shown: bool = False) -> Kind:
    """A `Kind`, its aspects written as one space-separated string."""
    return Kind(name, tuple(aspects.split()), verdict, why, shown)


#: a snapshot's linkage findings (`SnapshotStore.linkage` keeps them; else computed here)
Linkage = Callable[[Snapshot], list[Finding]]
#: (baseline records, candidate, config, linkage, the files baseline) -> changes
Diff = Callable[[Mapping[str, Any], Snapshot, HarnessConfig, Linkage, "Mapping[str, Any] | None"],
                list[Change]]
#: (candidate, config, linkage) -> changes that need no baseline
Alone = Callable[[Snapshot, HarnessConfig, Linkage], list[Change]]
#: (baseline header, candidate, config) -> changes of the image as a whole (its size)
AgainstHeader = Callable[[dict[str, Any], Snapshot, HarnessConfig], list[Change]]


def _no_changes(snap: Snapshot, config: HarnessConfig, linkage: Linkage) -> list[Change]:
    return []


def _no_errors(snap: Snapshot) -> list[str]:
    return []


@dataclass(frozen=True)
class Aspect:
    """One aspect of an image, everything the gate knows of it."""

    name: str
    #: what the suite's test of it judges (its docstring)
    summary: str
    #: the kinds its results carry
    kinds: tuple[Kind, ...]
    diff: Diff
    #: its place in the reports (HTML sections)
    order: int
    #: what its own baseline file stores of a snapshot; None when it reads another's
    records: Callable[[Snapshot, HarnessConfig], Mapping[str, Any]] | None = None
    #: the baseline file it is judged against, when not its own (security reads `files`)
    reads: str | None = None
    #: checks of the candidate alone (they also guard a first release)
    alone: Alone = _no_changes
    #: changes of the whole image against the baseline's header (the size)
    against_header: AgainstHeader | None = None
    #: reasons it cannot be judged beyond `snap.errors[name]` (a damaged database)
    unjudgeable: Callable[[Snapshot], list[str]] = field(default=_no_errors)

    @property
    def judged_against(self) -> str:
        """The baseline file it is judged against."""
        return self.reads or self.name

    def error(self, snap: Snapshot) -> str | None:
        """A reason it cannot be judged on this snapshot (a damaged database, a file past
        its cap)."""
        errors = self.unjudgeable(snap) + list(snap.errors.get(self.name, []))
        return "; ".join(errors[:10]) if errors else None


#: a files dict and ignore globs -> its unignored part: the files and security aspects of an
#: image, and their baselines, filter the same large dicts (two each: the image's and its
#: baseline's, for this image and the one before)
_UNIGNORED: IdentityMemo[Mapping[str, dict[str, Any]]] = IdentityMemo(4)


def unignored_files(files: Mapping[str, dict[str, Any]], config: HarnessConfig
                    ) -> Mapping[str, dict[str, Any]]:
    """The files aspect without the volatile paths the config ignores (a table's records
    stay packed: harness.filetable)."""
    ignore = glob_regex(config.ignore)
    if ignore is None:
        return files
    known = _UNIGNORED.get((files,), tuple(config.ignore))
    if known is not None:
        return known
    kept: Mapping[str, dict[str, Any]]
    if isinstance(files, FileTable):
        kept = files.filtered(lambda p: not ignore.match(p))
    else:
        kept = {p: r for p, r in files.items() if not ignore.match(p)}
    _UNIGNORED.put((files,), tuple(config.ignore), kept)
    return kept
