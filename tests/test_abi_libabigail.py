"""libabigail's own test pairs (x86_64 shared objects of its tests/data) as an oracle: the
gate's ABI diff breaks exactly where abidiff reports an incompatible change (exit bit 8),
except the deliberate differences the README lists (a grown data object or vtable, an RPATH
leaving the image). The binaries are libabigail's (Apache-2.0 WITH LLVM-exception), copied into
tests/fixtures/libabigail/ (its README says from where; $HARNESS_SHARED_FIXTURES/libabigail/
is read instead when set); tests/libabigail_pairs.json records their provenance, digests and
the outcomes measured by bench/abidiff_oracle.py."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from testimages.abi import gate_object_pair

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("HARNESS_SHARED_FIXTURES") or REPO / "tests" / "fixtures") / "libabigail"
MANIFEST = json.loads((REPO / "tests" / "libabigail_pairs.json").read_text())
PAIRS: list[dict[str, Any]] = MANIFEST["pairs"]
INCOMPATIBLE = 8
#: kinds by which the gate is deliberately stricter than abidiff (README, ABI section)
STRICTER = {"symbol-size-changed", "runpath-changed"}


def pair_files(pair: dict[str, Any]) -> tuple[Path, Path]:
    """The pair's two objects, checked against the manifest's digests."""
    files = (FIXTURES / pair["v0"], FIXTURES / pair["v1"])
    for path in files:
        if not path.is_file():
            pytest.fail(f"libabigail fixture {path} is missing (tests/fixtures/libabigail holds "
                        f"them, or the folder HARNESS_SHARED_FIXTURES names)")
    for path, digest in zip(files, (pair["sha256_v0"], pair["sha256_v1"])):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{path} differs from the manifest"
    return files


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{p['suite']}/{Path(p['v0']).name}" for p in PAIRS])
def test_gate_agrees_with_abidiff(pair: dict[str, Any], tmp_path: Path) -> None:
    old, new = pair_files(pair)
    breaks = gate_object_pair(old, new, tmp_path)
    assert breaks == pair["gate_breaks"]
    incompatible = bool(pair["abidiff_exit"] & INCOMPATIBLE)
    if bool(breaks) != incompatible:
        assert breaks and not incompatible, "the gate passes what abidiff calls incompatible"
        assert {b.split()[0] for b in breaks} <= STRICTER


@pytest.mark.skipif(shutil.which("abidiff") is None, reason="abidiff (abigail-tools) not installed")
@pytest.mark.parametrize("pair", [p for p in PAIRS if p["abidiff_exit"] & INCOMPATIBLE or not p["agree"]],
                         ids=lambda p: f"{p['suite']}/{Path(p['v0']).name}")
def test_abidiff_still_says_what_the_manifest_records(pair: dict[str, Any]) -> None:
    """The oracle itself, re-run on the pairs where it matters: every break and every
    disagreement."""
    old, new = pair_files(pair)
    assert subprocess.run(["abidiff", str(old), str(new)], capture_output=True).returncode == pair["abidiff_exit"]


def test_the_soname_less_and_renamed_pairs_break(tmp_path: Path) -> None:
    """Two classes the gate must catch: an object without DT_SONAME losing a function
    (test30-pub-lib, abicompat's libtest1), and a soname bump spelt without `.so`."""
    by_name = {Path(p["v0"]).name: p for p in PAIRS}
    old, new = pair_files(by_name["test30-pub-lib-v0.so"])
    assert gate_object_pair(old, new, tmp_path)
    old, new = pair_files(by_name["libtest1-fn-removed-v0.so"])
    assert any(b.startswith("symbol-removed /usr/lib/libtest1-fn-removed-v0.so:")
               for b in gate_object_pair(old, new, tmp_path))
    old, new = pair_files(by_name["libtest19-soname-v0.so"])
    assert gate_object_pair(old, new, tmp_path) == ["soname-changed libtest19-soname-0"]
