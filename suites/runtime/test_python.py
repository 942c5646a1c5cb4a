"""rt-python3.11: the interpreter, its stdlib modules, pip."""

from typing import Any, Callable

import pytest

pytestmark = pytest.mark.family("rt-python3.11")

#: imports users rely on; a slimming pass that drops one breaks them
CORE = ("ssl", "sqlite3", "ctypes", "hashlib", "json", "zlib", "bz2", "lzma", "decimal",
        "venv", "ensurepip", "asyncio", "uuid", "readline", "curses", "dbm")
LIST_STDLIB = ("import sys, importlib.util as u; "
               "print('\\n'.join(m for m in sorted(sys.stdlib_module_names) "
               "if not m.startswith('_') and u.find_spec(m) is not None))")


def test_stdlib(host: Any, compat_probes: Callable[..., Any]) -> None:
    version = host.run("python3 -c 'import platform; print(platform.python_version())'")
    assert version.rc == 0, version.stderr
    modules = host.run("python3 -c %s" % _quote(LIST_STDLIB))
    assert modules.rc == 0, modules.stderr
    importable = host.run("python3 -c %s" % _quote(
        "import importlib\nfor m in %r:\n    try:\n        importlib.import_module(m); print(m)\n"
        "    except Exception: pass" % (CORE,)))
    pip = host.run("python3 -m pip --version")
    compat_probes({"runtime": {"version": version.stdout.strip()},
                   "module": modules.stdout.split(), "import": importable.stdout.split(),
                   "tool": ["pip"] if pip.rc == 0 else []})


def _quote(code: str) -> str:
    return "'" + code.replace("'", "'\\''") + "'"
