"""Policy: a verdict per change (break / review / info), then overrides and waivers.

Knows nothing of Docker or pytest: changes in, judged changes out.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from harness.config import HarnessConfig, Waiver
from harness.diff.change import Change
from harness.kinds import with_verdict
from harness.licenses import denied
from harness.paths import glob_regex

#: default verdicts of the kinds without a condition (harness.kinds, docs/compat-rules.md)
BREAK_KINDS = with_verdict("break")
REVIEW_KINDS = with_verdict("review")


def _loses_owner_rx(before: str, after: str) -> bool:
    old, new = int(before, 8), int(after, 8)
    return bool(old & 0o500 & ~new)


def default_verdict(change: Change, config: HarnessConfig, public: re.Pattern[str] | None) -> str:
    """docs/compat-rules.md's verdict for a change, including the conditional rows."""
    kind = change.kind
    detail = change.detail or {}
    if kind == "file-removed":
        return "break" if public is not None and public.match(change.subject) else "review"
    if kind == "mode-changed":
        return "break" if _loses_owner_rx(str(change.before), str(change.after)) else "review"
    if kind == "package-epoch-changed":
        old, new = detail.get("epoch", [0, 0])
        return "break" if int(new) < int(old) else "review"
    if kind == "symbol-size-changed":
        grew = detail.get("grew", True)
        return "break" if grew else "review"
    if kind == "symbol-removed" and detail.get("loader_path") is False:
        return "review"  # a plugin outside the loader's search path: only its host loads it
    if kind == "soname-changed":
        return "info" if detail.get("old_still_shipped") else "break"
    if kind == "runpath-changed":
        return "break" if detail.get("break") else "review"
    if kind == "size-increased":
        return str(detail.get("verdict", "review"))
    if kind == "license-added":
        return "break" if denied(str(change.after or ""), config.license_deny) else "info"
    if kind == "hidden-in-lower-layer":  # break for a secret, setuid/setgid or ELF file
        return str(detail.get("verdict", "info"))
    if kind == "setuid-added" and any(fnmatch.fnmatchcase(change.subject, g) for g in config.setuid_allow):
        return "info"
    if kind in BREAK_KINDS:
        return "break"
    if kind in REVIEW_KINDS:
        return "review"
    return "info"


@dataclass
class WaiverUse:
    """How often each waiver matched in a run (stale = never), and which had expired."""

    matched: dict[int, int] = field(default_factory=dict)
    expired: set[int] = field(default_factory=set)


def _waiver_matches(w: Waiver, change: Change, image: str, arch: str) -> bool:
    return (fnmatch.fnmatchcase(image, w.image) and (w.arch is None or w.arch == arch)
            and fnmatch.fnmatchcase(change.kind, w.kind)
            and fnmatch.fnmatchcase(change.subject, w.subject))


def _waiver_matches_cause(w: Waiver, cause: dict[str, str], image: str, arch: str) -> bool:
    """A waiver on a root cause covers every change that cause explains."""
    return (fnmatch.fnmatchcase(image, w.image) and (w.arch is None or w.arch == arch)
            and fnmatch.fnmatchcase(cause["kind"], w.kind)
            and fnmatch.fnmatchcase(cause["subject"], w.subject))


def judge(changes: Iterable[Change], config: HarnessConfig, image: str, arch: str,
          today: dt.date | None = None, use: WaiverUse | None = None) -> list[Change]:
    """Verdicts for every change: default, then overrides (last match wins), then waivers
    (a waiver matching a change's `cause` waives the change too, naming the cause)."""
    today = today or dt.date.today()
    public = glob_regex(config.public_paths)
    judged: list[Change] = []
    for change in changes:
        verdict = default_verdict(change, config, public)
        for o in config.overrides:
            if (fnmatch.fnmatchcase(image, o.image) and fnmatch.fnmatchcase(change.aspect, o.aspect)
                    and fnmatch.fnmatchcase(change.kind, o.kind)
                    and fnmatch.fnmatchcase(change.subject, o.subject)):
                verdict = o.verdict
        waived, reason = False, None
        # security findings are waived one by one: a waiver on a package's upgrade must
        # not accept the setuid program or world-writable file the upgrade brought
        cause = change.cause if change.cause and change.aspect != "security" and \
            change.cause_key != (change.aspect, change.kind, change.subject) else None
        # a waiver of the change itself first, then one of its cause
        matching = [(i, w, True) for i, w in enumerate(config.waivers)
                    if _waiver_matches(w, change, image, arch)]
        if cause:
            matching += [(i, w, False) for i, w in enumerate(config.waivers)
                         if _waiver_matches_cause(w, cause, image, arch)]
        for index, w, own in matching:
            if use is not None:
                use.matched[index] = use.matched.get(index, 0) + 1
            if w.expires is not None and w.expires < today:
                if use is not None:
                    use.expired.add(index)
                reason = f"waiver expired on {w.expires.isoformat()}: {w.reason}"
                continue
            waived, reason = True, w.reason
            if not own and cause:
                reason = f"waived with its cause {cause['kind']} {cause['subject']}: {w.reason}"
            break
        judged.append(replace(change, verdict=verdict, waived=waived, reason=reason))
    judged.sort(key=Change.sort_key)
    return judged
