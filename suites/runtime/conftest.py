"""Runtime suites: testinfra's `host` bound to the started, hardened candidate.

Fixtures come from the harness plugin; this conftest only gives `runtime_host` the name the
testinfra docs use, so suites read like any testinfra test, and asks first of every test
whether the engine can run the image at all (an image of another architecture needs a binfmt
emulator), so all of an image's tests that cannot run give that one reason.
"""

from typing import Any

import pytest

from harness.emulation import Runnable


@pytest.fixture
def host(runtime_host: Any) -> Any:
    """testinfra's host, bound to a container of the candidate image (no network)."""
    return runtime_host


@pytest.fixture(autouse=True)
def _runnable(runtime_emulation: Runnable) -> Runnable:
    """Skips the test, with the reason, when the engine cannot run the image under test."""
    return runtime_emulation
