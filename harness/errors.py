"""One error hierarchy for everything the gate can fail on before it can judge an image.

Each error reads as a single line naming the thing at fault (an image, a baseline file, the
engine), so pytest can show it without a traceback and reports can record it as `error`.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


class EngineUnavailable(HarnessError):
    """No Docker Engine answers (socket missing, daemon down, permission denied)."""


class ImageNotFound(HarnessError):
    """The image reference is neither local nor pullable."""


class SourceError(HarnessError):
    """The image's filesystem stream could not be read to its end."""


class BaselineMissing(HarnessError):
    """No baseline exists for this image, architecture and aspect."""


class BaselineCorrupt(HarnessError):
    """A baseline file exists but cannot be read; it is never overwritten by a normal run."""


class BaselineWriteError(HarnessError):
    """A baseline could not be written (disk full, read-only); the old file is intact."""


class ConfigError(HarnessError):
    """`[tool.harness]` or a command-line option is invalid."""


class ParseError(HarnessError):
    """A package database or ELF object in the image is malformed."""
