"""Bounds on what a candidate image may make the gate hold, expand or wait for.

An image is untrusted input: a 3 GiB package database, a jar whose manifest inflates to a
gigabyte, a layer that decompresses a thousandfold or a database query that never ends must
become an `error` naming the file and the bound, in bounded memory and time, never a pass nor
a gate that dies. `[tool.harness.limits]` sets the bounds (`Limits`); one `Budget` per image
counts the bytes its layers expand to and the time its reading takes.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import IO, Any

from harness.errors import ConfigError, SourceError

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Limits:
    """The bounds, with defaults far above any real image's needs."""

    #: one package database file (dpkg status, a status.d entry, rpmdb.sqlite, apk installed)
    package_db_bytes: int = 256 * MIB
    #: /etc/passwd, /etc/shadow, /etc/group
    account_file_bytes: int = 16 * MIB
    #: a language package's metadata file, and a jar's MANIFEST.MF once inflated
    manifest_bytes: int = 4 * MIB
    #: what one runtime probe command may print (stdout and stderr each)
    probe_output_bytes: int = 16 * MIB
    #: the bytes an image's compressed layers may expand to, all layers and passes together
    expanded_bytes: int = 32 * GIB
    #: the time reading one image's filesystem may take
    image_seconds: float = 1800.0
    #: the time one package database query may take
    sqlite_seconds: float = 60.0
    #: the time one runtime probe command may take (stretched under emulation)
    probe_seconds: float = 120.0

    def describe(self, name: str) -> str:
        """`limits.NAME = VALUE` as the configuration spells it, for error messages."""
        value = getattr(self, name)
        shown = size_text(value) if name.endswith("_bytes") else f"{value:g} s"
        return f"[tool.harness.limits] {name} = {shown}"


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|TiB)?\s*$")
_UNITS = {None: 1, "B": 1, "KiB": KIB, "MiB": MIB, "GiB": GIB, "TiB": 1 << 40}


def size_text(n: int) -> str:
    """Bytes as the largest binary unit that divides them (`512 MiB`)."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if n and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]} {unit}"
    return f"{n} B"


def parse_limits(table: Any, where: str) -> Limits:
    """`[tool.harness.limits]`: sizes as integers (bytes) or strings (`"512 MiB"`), times as
    seconds; every value positive. A `ConfigError` names a wrong key or value."""
    if table is None:
        return Limits()
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    known = {f.name for f in fields(Limits)}
    values: dict[str, Any] = {}
    number: float
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown limit (known: {', '.join(sorted(known))})")
        if key.endswith("_bytes"):
            match = _SIZE.match(value) if isinstance(value, str) else None
            if isinstance(value, int) and not isinstance(value, bool):
                number = value
            elif match:
                number = int(match.group(1)) * _UNITS[match.group(2)]
            else:
                raise ConfigError(f"{where}.{key} must be a size (bytes, or \"64 MiB\"), not {value!r}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        else:
            raise ConfigError(f"{where}.{key} must be a number of seconds, not {value!r}")
        if number <= 0:
            raise ConfigError(f"{where}.{key} must be positive, not {value!r}")
        values[key] = int(number) if key.endswith("_bytes") else float(number)
    return Limits(**values)


class LimitExceeded(SourceError):
    """A bound was reached: the message names the file (or image) and the bound."""


class Budget:
    """One image's budget of expanded bytes and of reading time (`limits` bounds)."""

    def __init__(self, limits: Limits, what: str) -> None:
        self.limits, self.what = limits, what
        self.expanded = 0
        self.deadline = time.monotonic() + limits.image_seconds

    def spend(self, n: int, where: str) -> None:
        """Count `n` more expanded bytes (read from `where`); raise past the budget."""
        self.expanded += n
        if self.expanded > self.limits.expanded_bytes:
            raise LimitExceeded(f"{where}: the image's layers expand to more than "
                                f"{self.limits.describe('expanded_bytes')} (a compression bomb, "
                                "or raise the limit)")
        self.check_time(where)

    def check_time(self, where: str) -> None:
        """Raise once the image has taken longer than its time budget."""
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"{where}: reading {self.what} took longer than "
                                f"{self.limits.describe('image_seconds')}")

    def seconds_left(self) -> float:
        """Time left before the deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("harness_budget",
                                                                         default=None)


@contextlib.contextmanager
def budget(limits: Limits, what: str) -> Iterator[Budget]:
    """Make a budget the current one while an image is read (its layers' decompressors and
    the walk spend from it)."""
    made = Budget(limits, what)
    token = _CURRENT.set(made)
    try:
        yield made
    finally:
        _CURRENT.reset(token)


def current() -> Budget | None:
    """The budget of the image being read, if any."""
    return _CURRENT.get()


def tick(where: str) -> None:
    """Raise when the current image's time is up (cheap: called per file of the walk)."""
    running = _CURRENT.get()
    if running is not None:
        running.check_time(where)


class Metered(io.RawIOBase):
    """A decompressed stream whose output is spent from the current budget, if any: a
    layer cannot expand past the image's `expanded_bytes` or read past its time."""

    def __init__(self, raw: IO[bytes], where: str) -> None:
        self._raw, self._where = raw, where
        self._budget = current()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        got = int(self._raw.readinto(buffer))  # type: ignore[attr-defined]
        if got and self._budget is not None:
            self._budget.spend(got, self._where)
        return got

    def close(self) -> None:
        self._raw.close()
        super().close()


def read_bounded(stream: IO[bytes], cap: int, what: str, limit_name: str, limits: Limits) -> bytes:
    """Read a stream whole, but never more than `cap` bytes: past it, `LimitExceeded` naming
    `what` and the limit (a zip member read by its inflated size, whatever its header says)."""
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise LimitExceeded(f"{what}: larger than {limits.describe(limit_name)}")
    return data
