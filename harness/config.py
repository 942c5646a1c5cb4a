"""`[tool.harness]` of pyproject.toml: image aliases, families, ignore globs, policy, waivers.

Parsed once into plain, serialisable data; every mistake is a `ConfigError` naming the key.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.limits import Limits, parse_limits

#: docs/compat-rules.md: volatile paths ignored by default (package-manager caches and logs, the
#: engine-managed files, byte-code, temp dirs, and the package databases themselves, whose
#: content is the packages aspect).
DEFAULT_IGNORE = (
    "/var/cache/*", "/var/log/*", "/var/lib/apt/lists/*", "/var/lib/dnf/*", "/var/lib/yum/*",
    "/var/cache/dnf/*", "/var/lib/rpm/*", "/usr/lib/sysimage/rpm/*", "/var/lib/dpkg/*",
    "/lib/apk/db/*", "/etc/apk/world", "/etc/machine-id", "/etc/hostname", "/etc/hosts",
    "/etc/resolv.conf", "/etc/ld.so.cache", "*.pyc", "*/__pycache__", "/tmp/*", "/var/tmp/*",
    "/run/*", "/var/run/*", "/etc/shadow-", "/etc/passwd-", "/etc/group-", "/etc/gshadow-",
)

#: Paths whose removal breaks users (docs/compat-rules.md: public paths).
DEFAULT_PUBLIC = (
    "/bin/*", "/sbin/*", "/lib/*", "/lib32/*", "/lib64/*", "/libx32/*", "/usr/bin/*",
    "/usr/sbin/*", "/usr/lib/*", "/usr/lib32/*", "/usr/lib64/*", "/usr/libexec/*", "/etc/*",
    "/usr/include/*", "/usr/share/zoneinfo/*", "/usr/local/bin/*", "/usr/local/lib/*",
    "/usr/share/ca-certificates/*",
)


@dataclass(frozen=True)
class ImageSpec:
    """One image the run gates: its name (baseline folder, test id) and reference."""

    name: str
    ref: str
    families: tuple[str, ...] = ()


@dataclass(frozen=True)
class Waiver:
    """Accepts matching changes with a recorded reason, until `expires` (inclusive)."""

    kind: str
    subject: str
    reason: str
    image: str = "*"
    arch: str | None = None
    expires: dt.date | None = None


@dataclass(frozen=True)
class Override:
    """Sets the verdict of matching changes (e.g. file-removed -> break everywhere)."""

    verdict: str
    kind: str = "*"
    image: str = "*"
    aspect: str = "*"
    subject: str = "*"


@dataclass(frozen=True)
class HarnessConfig:
    """Everything `[tool.harness]` says, with defaults."""

    images: dict[str, ImageSpec] = field(default_factory=dict)
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    public_paths: tuple[str, ...] = DEFAULT_PUBLIC
    waivers: tuple[Waiver, ...] = ()
    overrides: tuple[Override, ...] = ()
    size_review_percent: float | None = None
    size_break_percent: float | None = None
    setuid_allow: tuple[str, ...] = ()
    abi_suppress_versions: tuple[str, ...] = ("GLIBC_PRIVATE",)
    abi_suppress_symbols: tuple[str, ...] = ()
    abi_suppress_sonames: tuple[str, ...] = ()
    #: licence names (globs, case-blind) a new package must not carry: license-added breaks
    license_deny: tuple[str, ...] = ()
    #: `[tool.harness.limits]`: what an image may make the gate hold, expand or wait for
    limits: Limits = field(default_factory=Limits)


def _strs(table: dict[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key} must be a list of strings")
    return tuple(value)


def _date(value: Any, where: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where}: expires must be a date (YYYY-MM-DD), not {value!r}") from None


def parse_config(table: dict[str, Any], where: str = "[tool.harness]") -> HarnessConfig:
    """Validate a `[tool.harness]` table."""
    images: dict[str, ImageSpec] = {}
    for name, value in (table.get("images") or {}).items():
        if isinstance(value, str):
            images[name] = ImageSpec(name, value)
        elif isinstance(value, dict):
            ref = value.get("ref", name)
            families = _strs(value, "families", f"{where}.images.{name}") or ()
            images[name] = ImageSpec(name, str(ref), families)
        else:
            raise ConfigError(f"{where}.images.{name} must be a reference string or a table")
    waivers = []
    for i, w in enumerate(table.get("waivers") or []):
        at = f"{where}.waivers[{i}]"
        if not isinstance(w, dict) or not w.get("kind") or not w.get("reason"):
            raise ConfigError(f"{at}: a waiver needs kind, subject and a reason")
        waivers.append(Waiver(kind=w["kind"], subject=w.get("subject", "*"), reason=w["reason"],
                              image=w.get("image", "*"), arch=w.get("arch"),
                              expires=_date(w.get("expires"), at)))
    overrides = []
    for i, o in enumerate(table.get("policy") or []):
        at = f"{where}.policy[{i}]"
        if not isinstance(o, dict) or o.get("verdict") not in ("break", "review", "info"):
            raise ConfigError(f"{at}: an override needs verdict = break|review|info")
        overrides.append(Override(verdict=o["verdict"], kind=o.get("kind", "*"),
                                  image=o.get("image", "*"), aspect=o.get("aspect", "*"),
                                  subject=o.get("subject", "*")))
    ignore: tuple[str, ...] = DEFAULT_IGNORE if table.get("ignore_defaults", True) else ()
    ignore += _strs(table, "ignore", where) or ()
    size = table.get("size") or {}
    abi = table.get("abi") or {}
    return HarnessConfig(
        images=images, ignore=ignore,
        public_paths=_strs(table, "public_paths", where) or DEFAULT_PUBLIC,
        waivers=tuple(waivers), overrides=tuple(overrides),
        size_review_percent=size.get("review_percent"), size_break_percent=size.get("break_percent"),
        setuid_allow=_strs(table, "setuid_allow", where) or (),
        abi_suppress_versions=_strs(abi, "suppress_versions", f"{where}.abi") or ("GLIBC_PRIVATE",),
        abi_suppress_symbols=_strs(abi, "suppress_symbols", f"{where}.abi") or (),
        abi_suppress_sonames=_strs(abi, "suppress_sonames", f"{where}.abi") or (),
        license_deny=_strs(table, "license_deny", where) or (),
        limits=parse_limits(table.get("limits"), f"{where}.limits"),
    )


def load_config(pyproject: Path) -> HarnessConfig:
    """Read `[tool.harness]` from a pyproject.toml; a missing file or table gives defaults."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return HarnessConfig()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{pyproject}: {exc}") from exc
    return parse_config(data.get("tool", {}).get("harness", {}), f"{pyproject} [tool.harness]")


def parse_image_option(value: str, config: HarnessConfig) -> ImageSpec:
    """`NAME[=REF]`: REF defaults to the alias in `[tool.harness.images]`, else NAME itself."""
    name, sep, ref = value.partition("=")
    name = name.strip()
    if not name or (sep and not ref.strip()):
        raise ConfigError(f"--image {value!r}: expected NAME or NAME=REF")
    if "/" in name or name in (".", ".."):
        raise ConfigError(f"--image {value!r}: NAME names a baseline folder; use NAME=REF for a reference")
    known = config.images.get(name)
    if sep:
        return ImageSpec(name, ref.strip(), known.families if known else ())
    return known or ImageSpec(name, name)
