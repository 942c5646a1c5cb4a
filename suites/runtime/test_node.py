"""rt-nodejs18: node, its core modules, the packages on its global path, npm and friends."""

from typing import Any, Callable

import pytest

pytestmark = pytest.mark.family("rt-nodejs18")

#: package tools users call beside node
TOOLS = ("npm", "npx", "corepack", "yarn", "pnpm")
CORE = "console.log(require('module').builtinModules.filter(m => !m.startsWith('_')).join('\\n'))"
#: packages node resolves without a local node_modules: its global paths (Debian puts parts of
#: node itself there) and npm's global root (PREFIX/lib/node_modules: npm, corepack)
GLOBAL = r"""
const fs = require('fs'), path = require('path');
const roots = [...require('module').globalPaths,
               path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules')];
const found = new Set();
const isPackage = d => fs.existsSync(path.join(d, 'package.json'));
for (const root of roots) {
  let names = [];
  try { names = fs.readdirSync(root); } catch (e) { continue; }
  for (const name of names) {
    if (name.startsWith('@')) {
      try {
        for (const sub of fs.readdirSync(path.join(root, name)))
          if (isPackage(path.join(root, name, sub))) found.add(name + '/' + sub);
      } catch (e) {}
    } else if (isPackage(path.join(root, name))) found.add(name);
  }
}
console.log([...found].sort().join('\n'));
"""


def _quote(code: str) -> str:
    return "'" + code.replace("'", "'\\''") + "'"


def test_node_core_modules(host: Any, compat_probes: Callable[..., Any]) -> None:
    version = host.run("node -p process.versions.node")
    assert version.rc == 0, version.stderr
    core = host.run(f"node -e {_quote(CORE)}")
    assert core.rc == 0, core.stderr
    packages = host.run(f"node -e {_quote(GLOBAL)}")
    assert packages.rc == 0, packages.stderr
    tools = host.run("for t in %s; do command -v $t >/dev/null 2>&1 && echo $t; done" % " ".join(TOOLS))
    compat_probes({"runtime": {"version": version.stdout.strip()}, "module": core.stdout.split(),
                   "package": packages.stdout.split(), "tool": tools.stdout.split()})
