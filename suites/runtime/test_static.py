"""rt-static: images with no shell (a static binary, distroless) get the static aspects, their
own entrypoint run hardened, and a clear skip reason for the probes that cannot run."""

from typing import Any

import docker.errors
import pytest

from harness import runtime
from harness.emulation import Runnable
from harness.gate import SnapshotStore

pytestmark = pytest.mark.family("rt-static")


def test_static_image(image_families: Any, _harness_image: Any, compat_store: SnapshotStore,
                      runtime_emulation: Runnable) -> None:
    """`docker run IMAGE` (no shell needed) must not fail; the probes are skipped with why."""
    name = _harness_image.name
    info = compat_store.find_image(_harness_image)
    config = compat_store.engine.client.api.inspect_image(info.image_id)["Config"] or {}
    command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    why = (f"{name} has no shell: runtime probes cannot run in it; the static aspects "
           "(suites/compat) cover its files, packages and ABI")
    if not command:
        pytest.skip(f"{why}; it has no entrypoint or cmd to run either")
    hint = ("\n(`no such file or directory` for a file that is there: its ELF interpreter or a "
            "library it needs is missing from the image)")
    try:
        code, logs = runtime.run_default(compat_store.engine, info.image_id, compat_store.run_id,
                                         20 * runtime_emulation.time_scale,
                                         platform=runtime_emulation.platform)
    except docker.errors.APIError as exc:
        code, logs = -1, str(exc.explanation or exc)
    if code not in (0, None):
        pytest.fail(f"{name}: the entrypoint/cmd {command} does not run (exit {code}):\n{logs}"
                    + (hint if "no such file or directory" in logs else ""), pytrace=False)
    pytest.skip(f"{why}; its entrypoint/cmd {command} ran "
                f"({'still running after the time limit' if code is None else 'exit 0'})")
