"""The package readers on other scanners' test databases, against those scanners' own
expected lists (trivy, syft, osv-scalibr, claircore, go-rpmdb; see tests/fixtures/scanners.toml
for what was taken from where).

Each case is a folder `<project>/<case>/` under tests/fixtures/scanners/ (copied there with
the projects' licences; the two large go-rpmdb databases only under the shared fixtures'
`scanners/`, beside the repo: `../shared/fixtures/`, or the folder `HARNESS_SHARED_FIXTURES`
names, read when there): `files/` holds
the database files at the paths an image holds them, `case.json` the expected outcome taken
from the project's Go test: the complete package list (name and version as that project
spells it), the first packages by name and the count, packages it must contain, source
names, licences, an error, an empty database, or no database at all. A case marked `difference` is one the README lists: our reading is asserted
as `ours` there, and it does not count as agreement.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from harness.licenses import license_ids
from harness.snapshot.packages import PackagesCollector
from harness.snapshot.managers import load_builtin_readers

REPO = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get("HARNESS_SHARED_FIXTURES") or REPO.parent / "shared" / "fixtures")
#: the cases copied here, then those only the shared fixtures hold
IN_REPO, SCANNERS = REPO / "tests" / "fixtures" / "scanners", ROOT / "scanners"


def case_dirs() -> list[Path]:
    """Every case at hand: the repository's, and the shared fixtures' it has not."""
    cases = {(p.parent.parent.name, p.parent.name): p.parent for p in IN_REPO.glob("*/*/case.json")}
    for p in SCANNERS.glob("*/*/case.json") if SCANNERS.is_dir() else ():
        cases.setdefault((p.parent.parent.name, p.parent.name), p.parent)
    return sorted(cases.values(), key=lambda c: (c.parent.name, c.name))



def read_case(case: Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The case's files and symlinks as a snapshot's walk gives them to the collector."""
    load_builtin_readers()
    meta = json.loads((case / "case.json").read_text())
    collector = PackagesCollector()
    records: dict[str, dict[str, Any]] = {}
    top = case / "files"
    for path in sorted(top.rglob("*")):
        image_path = "/" + path.relative_to(top).as_posix()
        if path.is_dir():
            records[image_path] = {"type": "dir"}
            continue
        data = path.read_bytes()
        records[image_path] = {"type": "file", "size": len(data)}
        if collector.wants(image_path, data[:4096], len(data)):
            collector.take(image_path, data)
    for link, target in meta.get("links", {}).items():
        records[link] = {"type": "symlink", "target": target}
    return collector.result(records)


def version_of(record: dict[str, Any], form: str) -> str:
    """A record's version in the form the project's test spells it."""
    if form == "version-release":
        return f"{record['version']}-{record['release']}" if record.get("release") else record["version"]
    if form == "version":
        return str(record["version"])
    return str(record["evr"])


def outcome(case: Path) -> dict[str, Any]:
    """What our readers make of the case, in the expectation's own terms."""
    meta = json.loads((case / "case.json").read_text())
    expect = meta["expect"]
    form = expect.get("form", "evr")
    records, dbs = read_case(case)
    if not dbs:
        return {"no_database": True}
    if any(db.get("error") for db in dbs):
        return {"error": True}
    got: dict[str, Any] = {}
    pairs = sorted([r["name"], version_of(r, form)] for r in records.values())
    if "contains" in expect:  # the project checks some packages only
        got["contains"] = [pair for pair in expect["contains"] if pair in pairs]
    elif "sources" in expect:
        got["sources"] = {r["name"]: r.get("source") for r in records.values()
                          if r["name"] in expect["sources"]}
    elif "count" in expect:
        got["first"] = pairs[:len(expect["first"])]
        got["count"] = len(pairs)
    elif not set(expect) <= {"licenses", "license_ids", "form"}:
        if pairs:
            got["packages"] = pairs
        else:
            got["empty"] = True
    if "licenses" in expect:  # expressions as written
        got["licenses"] = {r["name"]: r.get("license") for r in records.values()
                           if r["name"] in expect["licenses"]}
    if "license_ids" in expect:  # the licence names, as a set
        got["license_ids"] = {r["name"]: sorted(set(license_ids(r.get("license") or "")))
                              for r in records.values() if r["name"] in expect["license_ids"]}
    return got


def expected(meta: dict[str, Any]) -> dict[str, Any]:
    want = {k: v for k, v in meta["expect"].items() if k != "form"}
    if "license_ids" in want:
        want["license_ids"] = {k: sorted(set(v)) for k, v in want["license_ids"].items()}
    return want


@pytest.mark.parametrize("case", case_dirs() or [None], ids=lambda c: "none" if c is None
                         else f"{c.parent.name}/{c.name}")
def test_case_agrees_with_its_project(case: Path | None) -> None:
    """Our reading equals the project's expected list (or, for a listed deliberate
    difference, the reading the README documents)."""
    if case is None:
        pytest.fail(f"no scanner fixtures in {IN_REPO} nor {SCANNERS}")
    meta = json.loads((case / "case.json").read_text())
    got = outcome(case)
    if "difference" in meta:
        assert got == meta["ours"], meta["difference"]
        assert got != expected(meta)
    else:
        assert got == expected(meta)


def agreement() -> tuple[int, int]:
    """(cases agreeing, cases): the figure the README and the manifest quote."""
    cases = case_dirs()
    agree = sum(1 for c in cases if outcome(c) == expected(json.loads((c / "case.json").read_text())))
    return agree, len(cases)


if __name__ == "__main__":
    for c in case_dirs():
        meta = json.loads((c / "case.json").read_text())
        got = outcome(c)
        mark = "ok  " if got == expected(meta) else ("diff" if "difference" in meta else "FAIL")
        print(mark, f"{c.parent.name}/{c.name}", "" if mark == "ok  " else
              f"\n     want {json.dumps(expected(meta))[:300]}\n     got  {json.dumps(got)[:300]}")
    print("agree %d of %d" % agreement())


MANIFEST = REPO / "tests" / "fixtures" / "scanners.toml"


def test_manifest_names_every_case_and_its_provenance() -> None:
    """The committed manifest says where each case comes from (repository, commit, files,
    licence, the test its expectation is taken from); the repository holds exactly its cases
    but those marked `in_repo = false`, which only the shared fixtures may add."""
    cases = tomllib.loads(MANIFEST.read_text())["case"]
    for case in cases:
        assert all(case.get(k) for k in ("project", "case", "repo", "commit", "licence", "files",
                                         "expected_from", "expected")), case
        assert len(case["commit"]) == 40
    here = {(p.parent.parent.name, p.parent.name) for p in IN_REPO.glob("*/*/case.json")}
    assert here == {(c["project"], c["case"]) for c in cases if c.get("in_repo", True)}
    assert len(here) == 59
    present = {(c.parent.name, c.name) for c in case_dirs()}
    assert here <= present <= {(c["project"], c["case"]) for c in cases}
    differences = {(c["project"], c["case"]) for c in cases if "difference" in c}
    assert differences & present == {(c.parent.name, c.name) for c in case_dirs()
                                     if "difference" in json.loads((c / "case.json").read_text())}
