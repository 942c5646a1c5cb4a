"""rt-php8.2: the PHP version and its extensions (`php -m`); a configured extension that fails
to load is a break in itself."""

from typing import Any, Callable

import pytest

pytestmark = pytest.mark.family("rt-php8.2")


def extension_names(listing: str) -> list[str]:
    """`php -m` -> lower-case names ("[PHP Modules]" headers and startup warnings left out)."""
    return sorted({line.strip().lower() for line in listing.splitlines()
                   if line.strip() and not line.startswith("[") and ":" not in line})


def test_php_extensions(host: Any, compat_probes: Callable[..., Any]) -> None:
    version = host.run("php -r 'echo PHP_VERSION;'")
    assert version.rc == 0, version.stderr
    mods = host.run("php -m")
    assert mods.rc == 0, mods.stderr
    warnings = [line for line in (mods.stdout + "\n" + mods.stderr).splitlines()
                if "Unable to load dynamic library" in line]
    assert not warnings, "an extension the ini files load is missing:\n" + "\n".join(warnings)
    compat_probes({"runtime": {"version": version.stdout.strip()},
                   "extension": extension_names(mods.stdout)})
