"""rt-nodejs18: node, its core modules, npm."""

from typing import Any, Callable

import pytest

pytestmark = pytest.mark.family("rt-nodejs18")


def test_node_core_modules(host: Any, compat_probes: Callable[..., Any]) -> None:
    version = host.run("node -p process.versions.node")
    assert version.rc == 0, version.stderr
    core = host.run("node -p \"require('module').builtinModules.filter(m => !m.startsWith('_')).join(' ')\"")
    assert core.rc == 0, core.stderr
    npm = host.run("npm --version")
    compat_probes({"runtime": {"version": version.stdout.strip()}, "module": core.stdout.split(),
                   "tool": ["npm"] if npm.rc == 0 else []})
