"""The aspects the gate judges, one module each in this package, listed in `REGISTRY`.

An aspect's module holds its `ASPECT` (harness.aspects.aspect.Aspect): what its baseline
file stores, its diff, its checks of the candidate alone, what makes it unjudgeable, its
place in the reports and its kinds (each kind's verdict and why-text; harness.kinds gathers
them). The plugin, the command line, the compat suite and the reports read this registry;
the one judging path both faces share is harness.judging.

Adding an aspect: its module here and one line in `REGISTRY` (and its kinds as rows of
docs/compat-rules.md; tests/test_contract.py names any that are missing).
"""

from __future__ import annotations

from harness.aspects import abi, files, metadata, packages, security
from harness.aspects.aspect import Aspect

#: every aspect the gate judges, in the order the suite's tests run them
REGISTRY: tuple[Aspect, ...] = (
    metadata.ASPECT,
    files.ASPECT,
    packages.ASPECT,
    security.ASPECT,
    abi.ASPECT,
)
#: each aspect by its name
BY_NAME: dict[str, Aspect] = {a.name: a for a in REGISTRY}
ASPECTS = tuple(BY_NAME)
#: the baseline file each aspect is judged against
JUDGED_AGAINST = {a.name: a.judged_against for a in REGISTRY}
#: the aspects that store a baseline file of their own
STORED_ASPECTS = tuple(a.name for a in REGISTRY if a.records is not None)
#: the aspects in the reports' order
REPORT_ORDER = tuple(a.name for a in sorted(REGISTRY, key=lambda a: a.order))
