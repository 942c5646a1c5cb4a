"""rt-static: images with no shell get the static aspects only; say why probes cannot run."""

from typing import Any

import pytest

pytestmark = pytest.mark.family("rt-static")


def test_probes_need_a_shell(image_families: Any, _harness_image: Any) -> None:
    pytest.skip(f"{_harness_image.name} has no shell: runtime probes cannot run; "
                "the static aspects (suites/compat) cover it")
