"""rt-php8.2: the PHP version and its extensions (`php -m`)."""

from typing import Any, Callable

import pytest

pytestmark = pytest.mark.family("rt-php8.2")


def test_php_extensions(host: Any, compat_probes: Callable[..., Any]) -> None:
    version = host.run("php -r 'echo PHP_VERSION;'")
    assert version.rc == 0, version.stderr
    mods = host.run("php -m")
    assert mods.rc == 0, mods.stderr
    names = sorted({line.strip().lower() for line in mods.stdout.splitlines()
                    if line.strip() and not line.startswith("[")})
    compat_probes({"runtime": {"version": version.stdout.strip()}, "extension": names})
