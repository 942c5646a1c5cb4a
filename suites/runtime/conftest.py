"""Runtime suites: testinfra's `host` bound to the started, hardened candidate.

Fixtures come from the harness plugin; this conftest only gives `runtime_host` the name the
testinfra docs use, so suites read like any testinfra test.
"""

from typing import Any

import pytest


@pytest.fixture
def host(runtime_host: Any) -> Any:
    """testinfra's host, bound to a container of the candidate image (no network)."""
    return runtime_host
