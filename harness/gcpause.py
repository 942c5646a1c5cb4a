"""Pausing Python's cycle collector while large acyclic structures are built.

A snapshot is hundreds of thousands of small dicts and lists built in one go; every 700
allocations the collector walks the young ones, and every few of those the whole heap,
which slows taking and loading a snapshot (bench/README.md). The structures hold no
cycles, so nothing is lost by not scanning them.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import sys
from collections.abc import Iterator

_unfreeze_at_exit = False
#: LIEF's bindings say nothing of its objects left alive at exit (`lief_quiet_at_exit`)
_lief_quiet = False


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Disable the cycle collector for the block (restoring its previous state after)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def settle() -> None:
    """Move everything alive now out of the collector's sight: later collections (pytest
    runs several at the end of a session) no longer walk a snapshot that is kept."""
    global _unfreeze_at_exit
    gc.freeze()
    if not _unfreeze_at_exit:
        atexit.register(_unfreeze_for_lief)
        _unfreeze_at_exit = True


def lief_quiet_at_exit() -> None:
    """LIEF's leak warnings are off (harness.snapshot.elfparse): frozen objects may stay
    uncollected at exit in a process that imported it."""
    global _lief_quiet
    _lief_quiet = True


def _unfreeze_for_lief() -> None:
    """Frozen objects are not collected at shutdown. That is what the gate wants (a final
    collection would walk every record for nothing: tenths of a second for a family's
    snapshots), but LIEF's bindings count its objects left alive as leaks and say so on
    stderr: unfreeze only in a process that imported a LIEF whose warnings cannot be
    turned off."""
    if "lief" in sys.modules and not _lief_quiet:
        gc.unfreeze()
