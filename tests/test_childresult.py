"""harness.childresult: a result computed in a forked child, or here when the child gives none."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from harness.childresult import ChildResult

PARENT = os.getpid()


@pytest.fixture(autouse=True)
def no_other_thread() -> Iterator[None]:
    """A child is forked only where no other thread runs: an earlier test's thread (a
    broken parser pool's, winding down) is given time to end first."""
    deadline = time.monotonic() + 20
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    assert not others, f"threads an earlier test left running: {others}"
    yield


def _where() -> tuple[int, int]:
    return os.getpid(), os.getppid()


def test_the_result_comes_from_a_child() -> None:
    pid, parent = ChildResult(_where).result()
    assert pid != PARENT and parent == PARENT


def test_what_the_child_cannot_give_is_computed_here() -> None:
    def fails_in_a_child() -> int:
        if os.getpid() != PARENT:
            raise RuntimeError("only in the child")
        return 7

    def dies_in_a_child() -> int:
        if os.getpid() != PARENT:
            os._exit(139)
        return 8

    assert ChildResult(fails_in_a_child).result() == 7
    assert ChildResult(dies_in_a_child).result() == 8
    assert ChildResult(_where, fork=False).result() == _where()


def test_no_child_beside_other_threads() -> None:
    """A forked child gets only the forking thread: a lock another thread held stays taken."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert ChildResult(_where).result() == _where()
    finally:
        stop.set()
        other.join()


def test_a_result_no_longer_wanted_stops_its_child() -> None:
    def waits() -> int:
        time.sleep(3600)
        return 1

    pending = ChildResult(waits)
    pid = pending._pid
    assert pid and os.path.exists(f"/proc/{pid}")
    status = pending.close()
    assert status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert not os.path.exists(f"/proc/{pid}")  # reaped: no zombie left
    assert pending.close() is None


def test_first_ended_gives_the_children_that_have_ended() -> None:
    from harness.childresult import first_ended

    def sleeps() -> int:
        time.sleep(3600)
        return 2

    slow, quick = ChildResult(sleeps), ChildResult(lambda: 1)
    try:
        assert first_ended([slow, quick], 30) == [quick]
        assert first_ended([slow], 0.1) == []
        given = ChildResult.given(3)
        assert first_ended([slow, given], 30) == [given]  # no child: ended
        assert quick.result() == 1
    finally:
        slow.close()
