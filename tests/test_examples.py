"""The CI examples are valid for their CI: each parsed by the GitHub workflow or GitLab CI
schema that check-jsonschema vendors (it runs offline), and the validator rejects a broken
copy (so a pass means something); the commands they run name real harness options."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCHEMAS = {"github-actions.yml": "vendor.github-workflows",
           "github-matrix.yml": "vendor.github-workflows",
           "gitlab-ci.yml": "vendor.gitlab-ci", "gitlab-matrix.yml": "vendor.gitlab-ci"}


def _check(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("check-jsonschema")
    if exe is None:
        pytest.fail("check-jsonschema is missing: pip install -e '.[dev]'")
    return subprocess.run([exe, "--builtin-schema", schema, str(path)], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_example_is_valid_for_its_ci(name: str, tmp_path: Path) -> None:
    assert sorted(SCHEMAS) == sorted(p.name for p in EXAMPLES.glob("*.yml"))
    done = _check(SCHEMAS[name], EXAMPLES / name)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / name  # a job whose steps/script is a number is rejected
    text = (EXAMPLES / name).read_text()
    text = re.sub(r"^(\s+)(steps|script):.*$", r"\1\2: 5", text, count=1, flags=re.M)
    broken.write_text(text)
    assert _check(SCHEMAS[name], broken).returncode != 0


def test_the_matrix_examples_merge_and_spell_path_options_with_equals() -> None:
    for name in ("github-matrix.yml", "gitlab-matrix.yml"):
        text = (EXAMPLES / name).read_text()
        assert "harness report" in text and "--expect os-base/aarch64" in text
        assert not re.search(r"--(baselines|compat-report|compat-cache|sbom) [^-\\]", text), name
