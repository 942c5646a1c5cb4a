"""rt-java17: `java -version` major and the module list."""

import re
from typing import Any, Callable

import pytest

pytestmark = pytest.mark.family("rt-java17")


def test_java_modules(host: Any, compat_probes: Callable[..., Any]) -> None:
    version = host.run("java -version 2>&1")
    assert version.rc == 0, version.stdout
    m = re.search(r'version "([^"]+)"', version.stdout)
    assert m, version.stdout
    modules = host.run("java --list-modules")
    assert modules.rc == 0, modules.stderr
    names = sorted({line.split("@")[0] for line in modules.stdout.split()})
    compat_probes({"runtime": {"version": m.group(1)}, "module": names})
