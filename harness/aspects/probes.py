"""The kinds of the runtime suites' probes (harness.diff.probes): not an aspect of the
registry, as the runtime suites judge them (`probes.FAMILY.json`), but kinds of the
contract all the same."""

from __future__ import annotations

from harness.aspects.aspect import kind

KINDS = (
    kind("probe-item-removed", "probes", "break",
         "programs using the module, extension or applet fail", True),
    kind("probe-item-added", "probes", "info", "a new module, extension or applet is expected"),
    kind("probe-item-changed", "probes", "info", "a module's, extension's or applet's detail moved"),
    kind("runtime-version-changed", "probes", "break", "code written for the runtime's version may "
                                                       "fail", True),
    kind("runtime-updated", "probes", "info", "a patch release of the same major.minor"),
)
