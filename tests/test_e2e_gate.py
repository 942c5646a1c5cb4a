"""End to end: real images with one planted change each, gated through the real engine by
the user-facing suite in a separate pytest process."""

from __future__ import annotations

from pathlib import Path

import pytest

from testimages import tiny

from conftest import tree_bytes

PLANTED = {r.name: expected for r, expected in tiny.PLANTED.items()}
#: breaks a planted change implies besides itself
IMPLIED = {
    "tiny-purged": {("file-removed", "/usr/lib/libdemo.so.1")},
    # deleted behind dpkg's back: the database still promises the file
    "tiny-file-removed": {("package-files-missing", "hello-demo")},
}


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "xdist-2"])
def test_workflow_finds_every_planted_break(run_gate, tiny_images, tmp_path: Path, xdist: list[str]) -> None:
    baselines = tmp_path / "baselines"
    names = [*PLANTED, "tiny-additions", "tiny-rebuild"]

    # 1. no baseline: every aspect fails and says how to create it
    first = run_gate({"tiny-user": tiny_images["tiny-base"]}, *xdist, baselines=baselines)
    assert first.result.ret == 1
    first.result.stdout.fnmatch_lines(["*no baseline at*metadata.json*",
                                       "*--update-baselines*"])
    assert not baselines.exists()

    # 2. record the base image as the baseline of every name
    update = run_gate({n: tiny_images["tiny-base"] for n in names}, *xdist, "--update-baselines",
                      baselines=baselines)
    update.result.assert_outcomes(passed=5 * len(names))
    for n in names:
        assert sorted(p.name for p in (baselines / n / "x86_64").iterdir()) == [
            "abi.json", "files.json", "metadata.json", "packages.json"]
    before = tree_bytes(baselines)

    # 3. gate each candidate against it
    gate = run_gate({n: tiny_images[n] for n in names}, *xdist, baselines=baselines)
    assert gate.result.ret == 1
    assert tree_bytes(baselines) == before, "a normal run must not touch the baselines"
    for name, (aspect, kind, subject, verdict) in PLANTED.items():
        entry = gate.image(name)
        assert entry["verdict"] == "fail", name
        assert entry["arch"] == "x86_64"
        found = [c for c in entry["changes"] if c["kind"] == kind and c["subject"] == subject]
        assert found, f"{name}: no {kind} of {subject} in {entry['changes']}"
        assert found[0]["aspect"] == aspect and found[0]["verdict"] == verdict
        assert not found[0]["waived"]
        # the planted change is the only break, but for what it implies
        others = {(c["kind"], c["subject"]) for c in entry["changes"] if c["verdict"] == "break"
                  and (c["kind"], c["subject"]) != (kind, subject)}
        assert others == IMPLIED.get(name, set()), (name, others)

    additions = gate.image("tiny-additions")
    assert additions["verdict"] == "pass"
    kinds = {(c["kind"], c["subject"], c["verdict"]) for c in additions["changes"]}
    assert ("file-added", "/usr/share/demo/new.txt", "info") in kinds
    assert ("package-added", "extra-tool", "info") in kinds
    rebuild = gate.image("tiny-rebuild")
    assert rebuild["verdict"] == "pass"
    # an untouched rebuild differs in nothing; only candidate-only findings remain
    assert sorted((c["kind"], c["verdict"]) for c in rebuild["changes"]) == [
        ("root-user", "review"), ("unowned-files", "info")]


def test_purged_package_reports_its_files(run_gate, tiny_images, tmp_path: Path) -> None:
    baselines = tmp_path / "b"
    run_gate({"p": tiny_images["tiny-base"]}, "--update-baselines", baselines=baselines)
    gate = run_gate({"p": tiny_images["tiny-purged"]}, baselines=baselines)
    changes = {(c["kind"], c["subject"]): c for c in gate.image("p")["changes"]}
    assert changes[("package-removed", "libdemo1")]["before"] == "2.0-1 amd64"
    assert changes[("file-removed", "/usr/lib/libdemo.so.1")]["verdict"] == "break"
    gate.result.stdout.fnmatch_lines(["*test_packages*p*", "*package-removed*libdemo1*"])


def test_empty_password_breaks_without_baseline(run_gate, tiny_images, tmp_path: Path) -> None:
    gate = run_gate({"e": tiny_images["tiny-empty-password"]}, baselines=tmp_path / "none")
    entry = gate.image("e")
    assert entry["verdict"] == "fail"
    found = [c for c in entry["changes"] if c["kind"] == "empty-password"]
    assert [(c["subject"], c["verdict"], c["after"]["account"]) for c in found] == [
        ("/etc/shadow", "break", "root")]


def test_update_then_rerun_passes_and_markdown_report(run_gate, tiny_images, tmp_path: Path) -> None:
    baselines = tmp_path / "b"
    run_gate({"x": tiny_images["tiny-base"]}, "--update-baselines", baselines=baselines)
    md = tmp_path / "r.md"
    again = run_gate({"x": tiny_images["tiny-base"]}, "--compat-report", str(md), baselines=baselines)
    again.result.assert_outcomes(passed=5)
    assert again.image("x")["verdict"] == "pass"
    assert "| x | x86_64 | **pass** |" in md.read_text()


def test_update_accepts_a_break_and_says_what_it_wrote(run_gate, tiny_images, tmp_path: Path) -> None:
    baselines = tmp_path / "b"
    run_gate({"x": tiny_images["tiny-base"]}, "--update-baselines", baselines=baselines)
    accept = run_gate({"x": tiny_images["tiny-user"]}, "--update-baselines", baselines=baselines)
    accept.result.assert_outcomes(passed=5)
    accept.result.stdout.fnmatch_lines(["*baselines updated: * file(s) written, * change(s) accepted",
                                        "*wrote*x/x86_64/metadata.json"])
    changed = [c for c in accept.image("x")["changes"] if c["kind"] == "user-changed"]
    assert changed and changed[0]["waived"] and "update-baselines" in changed[0]["reason"]
    assert run_gate({"x": tiny_images["tiny-user"]}, baselines=baselines).result.ret == 0


def test_update_cannot_accept_a_candidate_only_break(run_gate, tiny_images, tmp_path: Path) -> None:
    """An empty root password or a file the package database promises is wrong in the image
    itself: no baseline makes it right (fix the image, or waive it with a reason)."""
    gate = run_gate({"x": tiny_images["tiny-empty-password"]}, "--update-baselines",
                    baselines=tmp_path / "b")
    assert gate.result.ret == 1
    found = [c for c in gate.image("x")["changes"] if c["kind"] == "empty-password"]
    assert found and not found[0]["waived"]
