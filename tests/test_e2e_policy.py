"""Waivers, expiry, stale waivers, policy overrides and size budgets, end to end through
`[tool.harness]` of the project that runs the suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def baselines(run_gate, tiny_images, tmp_path: Path) -> Path:
    root = tmp_path / "baselines"
    run_gate({"x": tiny_images["tiny-base"]}, "--update-baselines", baselines=root)
    return root


def _change(entry: dict, kind: str, subject: str) -> dict:
    found = [c for c in entry["changes"] if c["kind"] == kind and c["subject"] == subject]
    assert found, (kind, subject, entry["changes"])
    return found[0]


WAIVE_PURGE = """
[[tool.harness.waivers]]
image = "x*"
kind = "package-removed"
subject = "libdemo1"
reason = "libdemo1 moved to the -extras image (REL-42)"
{expires}
[[tool.harness.waivers]]
kind = "file-removed"
subject = "/usr/lib/libdemo*"
reason = "same split"
{expires}
"""


def test_waiver_turns_breaks_into_waived_changes(run_gate, tiny_images, baselines: Path) -> None:
    gate = run_gate({"x": tiny_images["tiny-purged"]}, baselines=baselines,
                    pyproject="[tool.harness]\n" + WAIVE_PURGE.format(expires=""))
    assert gate.result.ret == 0, gate.result.stdout.str()
    entry = gate.image("x")
    assert entry["verdict"] == "pass"
    removed = _change(entry, "package-removed", "libdemo1")
    assert removed["verdict"] == "break" and removed["waived"]
    assert removed["reason"] == "libdemo1 moved to the -extras image (REL-42)"
    assert "STALE" not in gate.result.stdout.str()


def test_expired_waiver_stops_waiving_and_says_so(run_gate, tiny_images, baselines: Path) -> None:
    gate = run_gate({"x": tiny_images["tiny-purged"]}, baselines=baselines,
                    pyproject="[tool.harness]\n" + WAIVE_PURGE.format(expires="expires = 2020-01-31"))
    assert gate.result.ret == 1
    removed = _change(gate.image("x"), "package-removed", "libdemo1")
    assert not removed["waived"] and "expired on 2020-01-31" in removed["reason"]
    gate.result.stdout.fnmatch_lines(["EXPIRED waiver ?0? kind=package-removed*expired on 2020-01-31*"])


def test_stale_waiver_is_reported_after_a_full_run(run_gate, tiny_images, baselines: Path) -> None:
    extra = '\n[[tool.harness.waivers]]\nkind = "user-changed"\nsubject = "User"\nreason = "old"\n'
    gate = run_gate({"x": tiny_images["tiny-purged"]}, baselines=baselines,
                    pyproject="[tool.harness]\n" + WAIVE_PURGE.format(expires="") + extra)
    gate.result.stdout.fnmatch_lines(["STALE waiver ?2? kind=user-changed subject=User*matched nothing*"])
    partial = run_gate({"x": tiny_images["tiny-purged"]}, "-k", "packages", baselines=baselines,
                       pyproject="[tool.harness]\n" + WAIVE_PURGE.format(expires="") + extra)
    assert "STALE" not in partial.result.stdout.str()


def test_override_makes_an_addition_a_break(run_gate, tiny_images, baselines: Path) -> None:
    policy = '[[tool.harness.policy]]\nkind = "package-added"\nverdict = "break"\n'
    gate = run_gate({"x": tiny_images["tiny-additions"]}, baselines=baselines,
                    pyproject="[tool.harness]\n" + policy)
    assert gate.result.ret == 1
    assert _change(gate.image("x"), "package-added", "extra-tool")["verdict"] == "break"


@pytest.mark.parametrize("budget, verdict, ret", [
    ("", "info", 0),
    ("review_percent = 0.0001\n", "review", 0),
    ("review_percent = 0.0001\nbreak_percent = 0.001\n", "break", 1),
])
def test_size_budgets(run_gate, tiny_images, baselines: Path, budget: str, verdict: str, ret: int) -> None:
    gate = run_gate({"x": tiny_images["tiny-additions"]}, baselines=baselines,
                    pyproject="[tool.harness.size]\n" + budget)
    assert gate.result.ret == ret
    grown = _change(gate.image("x"), "size-increased", "image")
    assert grown["verdict"] == verdict and grown["after"] > grown["before"]
