"""The README's "Extending" recipes hold: on a copy of the tree, an aspect added as one
module plus one registry line (the README's own example, read from it) and a package
manager added as one module plus one registry entry are picked up by the judging path the
plugin and `python -m harness diff` share, the compat suite, the kinds, the reports and the
contract check, which names the one documentation row the new kind still lacks; both
modules keep the layer contracts and type-check."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: a toy ecosystem whose versions are written MONTH.YEAR: its own order says 12.2023 ->
#: 01.2024 is an upgrade, where dpkg's (the order of a manager the registry lacks) says a
#: downgrade
TOY_MANAGER = '''
"""toypkg: one package a line, `NAME MONTH.YEAR`, in /var/lib/toypkg/installed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.snapshot.manager import Manager
from harness.snapshot.packages import PackageReader

LOCATION = "/var/lib/toypkg"


def is_database(path: str) -> bool:
    return path == LOCATION + "/installed"


def read_database(files: dict[str, bytes], problems: list[str] | None = None) -> list[dict[str, Any]]:
    records = []
    for path, data in files.items():
        for number, line in enumerate(data.decode().splitlines(), 1):
            name, _, version = line.partition(" ")
            if not version:
                if problems is not None:
                    problems.append(f"{path}:{number}: no version")
                continue
            records.append({"manager": "toypkg", "name": name, "arch": "all", "epoch": None,
                            "version": version, "release": None, "evr": version,
                            "license": None})
    return records


def _order(before: Mapping[str, object], after: Mapping[str, object]) -> int:
    def key(record: Mapping[str, object]) -> tuple[int, int]:
        month, year = str(record.get("version")).split(".")
        return int(year), int(month)
    return (key(before) > key(after)) - (key(before) < key(after))


MANAGER = Manager("toypkg", _order, purl_type="generic",
                  reader=PackageReader("toypkg", is_database, read_database,
                                       locations=(LOCATION,)))
'''

#: run in the copy: two images differing in /etc/os-release and in a toypkg package,
#: judged aspect by aspect and by `python -m harness diff`; prints what it saw as JSON
CHECK = '''
import io, json, sys, tarfile
from pathlib import Path

import harness
from harness import cli, kinds
from harness.aspects import ASPECTS, REPORT_ORDER
from harness.config import HarnessConfig
from harness.judging import judged_changes, stored_records
from harness.outcome import sbom
from harness.rootfs.image import ImageInfo
from harness.snapshot import baseline_header, take_snapshot
from harness.snapshot.managers import compare_versions

def image(version_id, toy):
    files = {"etc/": None, "etc/os-release": f"ID=toy\\nVERSION_ID={version_id}\\n".encode(),
             "var/": None, "var/lib/": None, "var/lib/toypkg/": None,
             "var/lib/toypkg/installed": f"demo {toy}\\n".encode()}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return take_snapshot(ImageInfo("toy", "sha256:" + version_id, "x86_64", "linux", None, {}), buf)

config = HarnessConfig()
before, after = image("1", "12.2023"), image("2", "01.2024")
seen = {"harness": harness.__file__, "aspects": list(ASPECTS), "order": list(REPORT_ORDER),
        "kind": kinds.KINDS["os-release-changed"].verdict, "dbs": after.package_dbs}
def judged(aspect):
    held = (baseline_header(before), stored_records(before, aspect, config))
    return [(c.kind, c.subject, c.verdict) for c in judged_changes(aspect, after, config, "toy", held, None)]
seen["osrelease"] = judged("osrelease")
seen["first release"] = judged_changes("osrelease", after, config, "toy", None, None)
seen["packages"] = [c for c in judged("packages") if c[1] == "demo"]
seen["purl"] = str(sbom.purl(after.packages["demo:all"], None))
seen["unregistered order"] = compare_versions("nobody", before.packages["demo:all"], after.packages["demo:all"])
work = Path(sys.argv[1])
before.dump(work / "before.json")
after.dump(work / "after.json")
seen["cli exit"] = cli.main(["diff", str(work / "before.json"), str(work / "after.json"),
                             "--config", str(work / "none.toml"), "--report", str(work / "r.json"),
                             "--report", str(work / "r.html")])
report = json.loads((work / "r.json").read_text())["images"][0]
seen["cli"] = sorted((c["aspect"], c["kind"], c["subject"], c["verdict"]) for c in report["changes"]
                     if c["aspect"] == "osrelease" or c["subject"] == "demo")
seen["html"] = "os-release-changed" in (work / "r.html").read_text()
import importlib.util
spec = importlib.util.spec_from_file_location("suite", "suites/compat/test_compat.py")
suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)
seen["suite"] = sorted(n for n in vars(suite) if n.startswith("test_"))
seen["suite doc"] = suite.test_osrelease.__doc__
sys.path.insert(0, "tests")
import test_contract
seen["contract"] = test_contract.contract_problems(kinds.KINDS, test_contract.emitted_kinds(),
                                                   test_contract.documented())
print(json.dumps(seen))
'''


def _readme_example() -> tuple[str, str]:
    """The aspect module and the registry line the README's "Extending" section shows."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Extending"):]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    module = blocks[0]
    line = re.search(r"^\s*(\w+\.ASPECT,)$", blocks[1], re.M)
    assert line is not None, blocks[1]
    return module, line.group(1)


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("harness", "suites", "docs"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=ignore)
    (copy / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "test_contract.py", copy / "tests")
    shutil.copy(ROOT / "pyproject.toml", copy)
    return copy


def _add_line(path: Path, after: str, line: str) -> None:
    """`line` added after the one registry line `after` matches (the last entry)."""
    text = path.read_text()
    match = re.search(after, text, re.M)
    assert match is not None, (path, after)
    path.write_text(text[:match.end()] + "\n" + line + text[match.end():])


def _extend(copy: Path) -> None:
    module, line = _readme_example()
    (copy / "harness" / "aspects" / "osrelease.py").write_text(module)
    registry = copy / "harness" / "aspects" / "__init__.py"
    text = registry.read_text()
    registry.write_text(text.replace("from harness.aspects import abi,",
                                     "from harness.aspects import osrelease\nfrom harness.aspects import abi,", 1))
    _add_line(registry, r"^    abi\.ASPECT,$", "    " + line)
    (copy / "harness" / "snapshot" / "toypkg.py").write_text(TOY_MANAGER)
    managers = copy / "harness" / "snapshot" / "managers.py"
    text = managers.read_text()
    managers.write_text(text.replace("from harness.snapshot import apk,",
                                     "from harness.snapshot import toypkg\n    from harness.snapshot import apk,", 1)
                        .replace("*language.MANAGERS)", "*language.MANAGERS, toypkg.MANAGER)", 1))


def _check(copy: Path, work: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    result = subprocess.run([sys.executable, "-c", CHECK, str(work)], cwd=copy, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_an_aspect_and_a_manager_are_one_module_and_one_entry_each(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    _extend(copy)
    seen = _check(copy, tmp_path)
    assert seen["harness"].startswith(str(copy))
    assert seen["aspects"][-1] == "osrelease" and seen["order"][-1] == "osrelease"
    assert seen["kind"] == "review"
    # the judging path: the aspect's diff, and policy's verdict from its module's kind
    assert seen["osrelease"] == [["os-release-changed", "VERSION_ID", "review"]]
    assert seen["first release"] == []
    # the manager: its database read, its version order used, its purl type given
    assert [(d["manager"], d["location"], d.get("count")) for d in seen["dbs"]] == [
        ("toypkg", "/var/lib/toypkg", 1)]
    assert seen["packages"] == [["package-upgraded", "demo", "info"]]
    assert seen["unregistered order"] == 1  # without its entry: a downgrade, a break
    assert seen["purl"] == "pkg:generic/demo@01.2024"
    # python -m harness diff judges both on the same path; its reports show the new aspect
    assert seen["cli exit"] == 0
    assert seen["cli"] == [["osrelease", "os-release-changed", "VERSION_ID", "review"],
                           ["packages", "package-upgraded", "demo", "info"]]
    assert seen["html"]
    assert seen["suite"] == ["test_abi", "test_files", "test_metadata", "test_osrelease",
                             "test_packages", "test_security"]
    assert seen["suite doc"] == "The fields of /etc/os-release."
    # the contract names the one thing left: the new kind's row in docs/compat-rules.md
    assert len(seen["contract"]) == 1
    assert seen["contract"][0].startswith("osrelease os-release-changed (emitted at "
                                          "harness/aspects/osrelease.py:")
    assert seen["contract"][0].endswith("is not a row of docs/compat-rules.md: add `| osrelease "
                                        "| os-release-changed | review | SUBJECT | WHY |` to "
                                        "its kinds table")
    rules = copy / "docs" / "compat-rules.md"
    _add_line(rules, r"^\| size \| size-increased .*\|$",
              "| osrelease | os-release-changed | review | the field's name (`VERSION_ID`) | "
              "scripts reading the distribution's name or version see another |")
    assert _check(copy, tmp_path)["contract"] == []
    # the two modules keep the layers and type-check strictly, as the rest of harness/
    env = {**os.environ, "PYTHONPATH": str(copy)}
    lint = subprocess.run([shutil.which("lint-imports") or "lint-imports", "--no-cache"], cwd=copy,
                          env=env, capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0 and "0 broken" in lint.stdout, lint.stdout + lint.stderr
    typed = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy"),
                            "harness/aspects/osrelease.py", "harness/snapshot/toypkg.py"],
                           cwd=copy, env=env, capture_output=True, text=True, timeout=600)
    assert typed.returncode == 0, typed.stdout + typed.stderr


def test_the_copy_alone_is_complete(tmp_path: Path) -> None:
    """Without the additions the copy judges the five aspects and its contract holds (the
    recipe's test sees the additions, not a difference of the copy)."""
    copy = _copy(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(copy)}
    script = ("import sys; sys.path.insert(0, 'tests'); import test_contract as t, harness.kinds as k, "
              "harness.aspects as a; print(a.ASPECTS, t.contract_problems(k.KINDS, t.emitted_kinds(), "
              "t.documented()))")
    result = subprocess.run([sys.executable, "-c", script], cwd=copy, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('metadata', 'files', 'packages', 'security', 'abi') []"
