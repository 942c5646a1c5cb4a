"""Package-to-file ownership (like `rpm -V`), on the candidate alone: files a package
database promises but the image lacks, files that differ from their record, unowned files."""

from __future__ import annotations

import uuid
from pathlib import Path

import testimages
from harness.config import HarnessConfig, ImageSpec
from harness.gate import SnapshotStore, check_aspect
from testimages import Recipe, rpm, tiny


def _slimmed(root: Path) -> None:
    """A slimming pass that deletes a packaged file behind dpkg's back."""
    (root / "usr/share/demo/data.txt").unlink()


def _tampered(root: Path) -> None:
    """A packaged binary rewritten and a packaged file's mode changed behind rpm's back."""
    (root / "usr/bin/tool").write_text("#!/bin/sh\necho patched\n")
    (root / "usr/share/demo/data.txt").chmod(0o666)
    (root / "usr/local").mkdir(parents=True, exist_ok=True)
    (root / "usr/local/stray").write_text("nobody owns me\n")


SLIMMED = Recipe("own-dpkg-slimmed", _slimmed, parent=tiny.BASE)
TAMPERED = Recipe("own-rpm-tampered", _tampered, parent=rpm.BASE)


def _packages(tag: str, tmp_path: Path) -> list[tuple[str, str, str, object]]:
    store = SnapshotStore(tmp_path / "cache", f"tests-ownership-{uuid.uuid4().hex[:12]}")
    result = check_aspect(ImageSpec("own", tag), "packages", store, tmp_path / "none", HarnessConfig())
    assert result.error is None and result.missing_baseline
    return [(c.kind, c.subject, c.verdict, c.after) for c in result.changes]


def test_dpkg_file_removed_behind_the_database_is_a_break(docker_engine, tmp_path: Path) -> None:
    got = _packages(testimages.build(SLIMMED), tmp_path)
    missing = [g for g in got if g[0] == "package-files-missing"]
    assert missing == [("package-files-missing", "demo-data", "break",
                        {"missing": ["/usr/share/demo/data.txt"], "count": 1})]
    intact = _packages(testimages.build(tiny.BASE), tmp_path)
    assert not [g for g in intact if g[0] in ("package-files-missing", "package-file-changed")]


def test_rpm_digest_and_mode_drift_is_review(docker_engine, tmp_path: Path) -> None:
    got = _packages(testimages.build(TAMPERED), tmp_path)
    changed = {g[1]: g for g in got if g[0] == "package-file-changed"}
    assert set(changed) == {"/usr/bin/tool", "/usr/share/demo/data.txt"}
    assert changed["/usr/bin/tool"][2] == "review" and "sha256" in changed["/usr/bin/tool"][3]
    assert changed["/usr/share/demo/data.txt"][3] == {"mode": "0666"}
    unowned = [g for g in got if g[0] == "unowned-files"]
    assert unowned and "/usr/local/stray" in unowned[0][3]["sample"] and unowned[0][2] == "info"
    intact = _packages(testimages.build(rpm.BASE), tmp_path)
    assert not [g for g in intact if g[0] in ("package-files-missing", "package-file-changed")]
