"""Every change kind the gate can emit: its aspects, default verdict and why it matters,
gathered from the modules that declare them (each aspect of harness.aspects.REGISTRY, and
the runtime probes' harness.aspects.probes).

docs/compat-rules.md is the prose of these kinds, with each kind's subject spelling: policy
derives its default verdicts from here, the reports their why-texts, and
tests/test_contract.py checks that every kind the code emits is here and documented there.
A kind whose verdict depends on the change (a public path, a grown object, a budget) names
its usual verdict here; `harness.policy.default_verdict` holds the condition.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.aspects import REGISTRY, probes
from harness.aspects.aspect import Kind

__all__ = ["KINDS", "WHY", "Kind", "gather", "with_verdict"]


def gather(groups: Iterable[Iterable[Kind]]) -> dict[str, Kind]:
    """Kind name -> its entry, from each declaring module's kinds; a kind two aspects share
    is one entry both list, and two different entries of one name are refused."""
    kinds: dict[str, Kind] = {}
    for group in groups:
        for kind in group:
            held = kinds.setdefault(kind.name, kind)
            if held != kind:
                raise ValueError(f"kind {kind.name} is declared twice, differently: {held} and {kind}")
    return kinds


#: kind name -> its entry
KINDS: dict[str, Kind] = gather([*(a.kinds for a in REGISTRY), probes.KINDS])

#: Why each break hurts a user of the baseline image (the reports' "why" lines).
WHY: dict[str, str] = {k.name: k.why for k in KINDS.values() if k.shown}


def with_verdict(verdict: str) -> frozenset[str]:
    """The kinds whose verdict, when no condition applies, is `verdict`."""
    return frozenset(k.name for k in KINDS.values() if k.verdict == verdict)
