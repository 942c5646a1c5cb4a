"""Root causes end to end: every change linked to what explains it, on real image pairs (a
purged package of the tiny image through the pytest gate; Debian bookworm -> trixie minbase
through `python -m harness`), waivers on causes, and the reports grouped by cause."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.diff.causes import CauseIndex, link
from harness.diff.packages import replacements
from harness.diff.change import Change
from harness.outcome.report import MARKDOWN_LIMIT

REPO = Path(__file__).resolve().parent.parent


def test_consequences_link_to_the_top_of_their_chain() -> None:
    removed = Change("packages", "package-removed", "libfoo1", "1.0 amd64")
    library = Change("abi", "library-removed", "libfoo.so.1", {"paths": ["/usr/lib/libfoo.so.1"]})
    user = Change("abi", "needed-unresolved", "libfoo.so.1", consumer="/usr/bin/app")
    gone = Change("files", "file-removed", "/usr/lib/libfoo.so.1", {"type": "file"})
    dir_gone = Change("files", "file-removed", "/usr/share/foo", {"type": "dir"})
    data_gone = Change("files", "file-removed", "/usr/share/foo/a.dat", {"type": "file"})
    other = Change("files", "file-removed", "/etc/unowned", {"type": "file"})
    before_files = {"/usr/lib/libfoo.so.1": {"type": "file", "package": "libfoo1"},
                    "/usr/share/foo/a.dat": {"type": "file", "package": "libfoo1"}}
    index = CauseIndex(before_files=before_files)
    index.add([removed, library])
    index.add_library_owners({"libfoo.so.1": {"paths": ["/usr/lib/libfoo.so.1"]}})
    link([removed, library, user, gone, dir_gone, data_gone, other], index)
    root = {"aspect": "packages", "kind": "package-removed", "subject": "libfoo1"}
    assert library.cause == user.cause == gone.cause == dir_gone.cause == data_gone.cause == root
    assert removed.cause == root, "a root cause's own cause is itself"
    assert other.cause == {"aspect": "files", "kind": "file-removed", "subject": "/etc/unowned"}


def test_files_owned_by_another_package_make_a_replacement() -> None:
    before = {"/usr/lib/libssl.so.3": {"package": "libssl3"}, "/usr/share/doc/libssl3": {}}
    after = {"/usr/lib/libssl.so.3": {"package": "libssl3t64"}}
    assert replacements(["libssl3", "gone"], before, after) == {"libssl3": "libssl3t64"}
    assert replacements(["libssl3"], before, None) == {}


WAIVE_PACKAGE = """
[[tool.harness.waivers]]
image = "x*"
kind = "package-removed"
subject = "libselinux1"
reason = "SELinux support leaves the image (REL-42)"
"""
CAUSE = {"aspect": "packages", "kind": "package-removed", "subject": "libselinux1"}


def test_waiver_on_a_removed_package_waives_its_files_libraries_and_users(
        run_gate, tmp_path: Path, docker_engine) -> None:
    import testimages
    from testimages.abi import MINBASE_PURGED
    from testimages.debian import MINBASE

    root = tmp_path / "baselines"
    run_gate({"x": testimages.build(MINBASE)}, "--update-baselines", baselines=root)
    purged = testimages.build(MINBASE_PURGED)
    plain = run_gate({"x": purged}, baselines=root)
    assert plain.result.ret == 1
    broken = [c for c in plain.image("x")["changes"] if c["verdict"] == "break"]
    kinds = Counter(c["kind"] for c in broken if c["cause"] == CAUSE)
    assert {"package-removed", "file-removed", "library-removed", "needed-unresolved"} <= set(kinds), kinds
    users = {c["consumer"] for c in broken if c["kind"] == "needed-unresolved" and c["cause"] == CAUSE}
    assert "/usr/bin/ls" in users
    plain.result.stdout.fnmatch_lines(["*1 root cause -> * breaks*",
                                       f"*BREAK package-removed libselinux1: {len(broken)} break(s)*"
                                       "consumer(s)*"])

    gate = run_gate({"x": purged}, baselines=root, pyproject="[tool.harness]\n" + WAIVE_PACKAGE)
    out = gate.result.stdout.str()
    assert gate.result.ret == 0, out
    entry = gate.image("x")
    assert entry["verdict"] == "pass"
    covered = [c for c in entry["changes"] if c["cause"] == CAUSE and c["verdict"] == "break"]
    assert Counter(c["kind"] for c in covered) == kinds
    for c in covered:
        assert c["waived"], c
        if c["kind"] != "package-removed":
            assert c["reason"] == ("waived with its cause package-removed libselinux1: "
                                   "SELinux support leaves the image (REL-42)"), c
    source = tmp_path / "gate.json"
    source.write_text(json.dumps(gate.report))
    subprocess.run([sys.executable, "-m", "harness", "report", str(source), "-o",
                    str(tmp_path / "gate.md")], check=True, cwd=REPO, capture_output=True)
    md = (tmp_path / "gate.md").read_text()
    assert "| package-removed `libselinux1` `" in md and "| waived: SELinux support leaves" in md
    assert "waived with its cause package-removed libselinux1" in md


@pytest.fixture(scope="module")
def upgrade_report(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> dict:
    """bookworm -> trixie minbase judged by `python -m harness diff`: JSON and Markdown."""
    from testimages import upgrade

    pair = upgrade.pair()
    if pair.fallback:
        pytest.skip(pair.description)
    folder = tmp_path_factory.mktemp("upgrade")
    for name, ref in (("old", pair.baseline), ("new", pair.candidate)):
        subprocess.run([sys.executable, "-m", "harness", "snapshot", ref, "-o",
                        str(folder / f"{name}.json")], check=True, cwd=REPO, capture_output=True)
    run = subprocess.run([sys.executable, "-m", "harness", "diff", str(folder / "old.json"),
                          str(folder / "new.json"), "--name", "debian",
                          "--report", str(folder / "r.json"), "--report", str(folder / "r.md")],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    return {"json": json.loads((folder / "r.json").read_text()),
            "md": (folder / "r.md").read_text(), "stdout": run.stdout}


def test_upgrade_breaks_are_few_root_causes(upgrade_report: dict) -> None:
    changes = upgrade_report["json"]["images"][0]["changes"]
    breaks = [c for c in changes if c["verdict"] == "break" and not c["waived"]]
    assert len(breaks) > 500
    assert all(c.get("cause") for c in changes)
    roots = {tuple(c["cause"].values()) for c in breaks}
    assert len(roots) < len(breaks) / 10, len(roots)
    for c in changes:
        if (c["aspect"], c["kind"], c["subject"]) in roots:
            assert c["cause"] == {"aspect": c["aspect"], "kind": c["kind"], "subject": c["subject"]}
    # Debian's 64-bit time_t transition renamed libraries: one replacement each, not a removal
    replaced = {c["subject"]: c["after"]["package"] for c in changes if c["kind"] == "package-replaced"}
    assert replaced and all(new == old + "t64" for old, new in replaced.items()), replaced
    assert not {c["subject"] for c in changes if c["kind"] == "package-removed"} & set(replaced)
    assert all(c["verdict"] == "review" for c in changes if c["kind"] == "package-replaced")
    text = upgrade_report["md"]
    assert len(text) < MARKDOWN_LIMIT
    assert f"**{len(roots)} root causes -> {len(breaks):,} breaks" in text
    assert f"{len(roots)} root causes -> {len(breaks):,} breaks" in upgrade_report["stdout"]
    table = text.split("| # | root cause |", 1)[1].split("\n\n", 1)[0]
    for aspect, kind, subject in roots:
        assert f"| {kind} `{subject}`" in table, (kind, subject)


def test_cause_waivers_cover_consequences_but_never_security_findings() -> None:
    import datetime as dt

    from harness.config import HarnessConfig, Waiver
    from harness.policy import WaiverUse, judge

    cause = {"aspect": "packages", "kind": "package-upgraded", "subject": "passwd"}
    changes = [Change("files", "file-removed", "/usr/sbin/gone", {"type": "file"}, cause=cause),
               Change("security", "setuid-added", "/usr/bin/newsu", None, "4755", cause=cause),
               Change("files", "file-removed", "/usr/sbin/own", {"type": "file"}, cause=cause)]
    config = HarnessConfig(public_paths=["/usr/sbin/*"], waivers=[
        Waiver("package-upgraded", "passwd", "shadow 4.17 drops them"),
        Waiver("file-removed", "/usr/sbin/own", "its own reason")])
    use = WaiverUse()
    judged = {c.subject: c for c in judge(changes, config, "x", "x86_64", dt.date(2026, 1, 1), use)}
    assert judged["/usr/sbin/gone"].waived
    assert judged["/usr/sbin/gone"].reason == ("waived with its cause package-upgraded passwd: "
                                               "shadow 4.17 drops them")
    assert judged["/usr/bin/newsu"].blocking, "a security finding is waived only by its own waiver"
    assert judged["/usr/sbin/own"].reason == "its own reason"
    assert use.matched == {0: 1, 1: 1}  # the cause waiver is not stale; the own one won
