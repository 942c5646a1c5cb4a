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
    # the family's interpreter: `python3` may be another version beside it (an OS's own python)
    python = "python3.11" if host.exists("python3.11") else "python3"
    version = host.run(f"{python} -c 'import platform; print(platform.python_version())'")
    assert version.rc == 0, version.stderr
    modules = host.run(f"{python} -c %s" % _quote(LIST_STDLIB))
    assert modules.rc == 0, modules.stderr
    importable = host.run(f"{python} -c %s" % _quote(
        "import importlib\nfor m in %r:\n    try:\n        importlib.import_module(m); print(m)\n"
        "    except Exception: pass" % (CORE,)))
    pip = host.run(f"{python} -m pip --version")
    compat_probes({"runtime": {"version": version.stdout.strip()},
                   "module": modules.stdout.split(), "import": importable.stdout.split(),
                   "tool": ["pip"] if pip.rc == 0 else []})


def _quote(code: str) -> str:
    return "'" + code.replace("'", "'\\''") + "'"
