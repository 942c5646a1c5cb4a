"""A pure function's result, computed in a forked child while this process goes on.

The gate's work after the walk runs on one core while the other idles: the candidate's
linkage closure, which depends on the snapshot alone,
is computed beside the diffs that come first. Anything that goes wrong in the child (no fork,
an exception, a crash, a damaged result) costs only time: the function then runs here.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_UNSET = object()


class ChildResult(Generic[T]):
    """`fn()`, started in a child process now (unless `fork` is False); `result()` waits for
    it, or computes it."""

    def __init__(self, fn: Callable[[], T], fork: bool = True) -> None:
        self._fn = fn
        self._value: object = _UNSET
        self._pid = 0
        self._fd = -1
        # a child of a process with other threads may find a lock taken for ever (and
        # Python 3.12 warns of it): there the function runs in `result`
        if not fork or threading.active_count() > 1:
            return
        try:
            read_end, write_end = os.pipe()
        except OSError:
            return
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return
        if pid == 0:  # the child: compute, hand the result over, leave without cleanup
            os.close(read_end)
            _child(fn, write_end)
        os.close(write_end)
        self._pid, self._fd = pid, read_end

    @classmethod
    def given(cls, value: T) -> ChildResult[T]:
        """A result already known (no child)."""
        return cls(lambda: value, fork=False)

    def result(self) -> T:
        """The function's result: the child's, or computed here when the child gave none."""
        if self._value is _UNSET:
            value = self._collect()
            self._value = self._fn() if value is _UNSET else value
        return self._value  # type: ignore[return-value]

    def fileno(self) -> int:
        """The end of the pipe the child writes its result to (-1: no child)."""
        return self._fd

    def close(self) -> int | None:
        """Stop and reap a child whose result is no longer wanted: its wait status, None when
        no child was running."""
        if not self._pid:
            return None
        try:
            os.kill(self._pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self._reap()

    def _collect(self) -> object:
        if not self._pid:
            return _UNSET
        chunks = []
        try:
            while chunk := os.read(self._fd, 1 << 20):
                chunks.append(chunk)
        except OSError:
            chunks = []
        status = self._reap()
        if status != 0 or not chunks:
            return _UNSET
        try:
            return pickle.loads(b"".join(chunks))
        except Exception:  # a child that died while writing
            return _UNSET

    def _reap(self) -> int:
        pid, self._pid = self._pid, 0
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return -1


def first_ended(children: list[ChildResult[T]], seconds: float) -> list[ChildResult[T]]:
    """Those of `children` that have ended or are handing their result over, once one has,
    waiting at most `seconds`; a result without a child has ended."""
    done = [child for child in children if not child._pid]
    waiting = [child for child in children if child._pid]
    if done or not waiting:
        return done
    import select

    try:
        ready, _, _ = select.select(waiting, [], [], max(0.0, seconds))
    except (OSError, ValueError):
        return waiting
    return ready


def _child(fn: Callable[[], T], fd: int) -> None:
    status = 1
    try:
        gc.disable()  # short-lived: a collection would only copy the parent's pages
        data = memoryview(pickle.dumps(fn(), pickle.HIGHEST_PROTOCOL))
        while data:
            data = data[os.write(fd, data):]
        status = 0
    finally:
        os._exit(status)
