"""The report contract is complete: every kind the code can emit is declared by the module
of its aspect (harness.kinds gathers them: verdict, why-text) and is a row of
docs/compat-rules.md (verdict, subject spelling, why). `contract_problems` names exactly
what is missing (tests/test_extending.py runs it on a copy of the tree with a new aspect)."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import Path

from harness.kinds import KINDS, Kind

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "harness"
RULES = ROOT / "docs" / "compat-rules.md"
VERDICTS = ("break", "review", "info")

#: Change(...) / Finding(...) calls whose kind is computed, and where its values are listed
#: (a new computed kind must be added here, so the scan sees its values)
DYNAMIC = {"_kind(k, 0)", "_kind(k, 1)", "_kind(k, 2)", "kind", "f.kind"}


def _kind_arg(call: ast.Call) -> ast.expr | None:
    name = call.func.id if isinstance(call.func, ast.Name) else None
    if name == "Change" and len(call.args) >= 2:
        return call.args[1]
    if name == "Finding" and call.args:
        return call.args[0]
    return None


def emitted_kinds(harness: Path = HARNESS) -> dict[str, str]:
    """Every kind a Change or linkage Finding of `harness` can carry, with the first place
    (`path:line`) it is emitted, by a scan of the source: literal kinds, the values of the
    tables and `kind = ...` assignments that computed kinds come from (and the literals
    `_kind` returns)."""
    kinds: dict[str, str] = {}
    for path in sorted(harness.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(harness.parent)

        def add(node: ast.AST, *names: str) -> None:
            for name in names:
                kinds.setdefault(name, f"{where}:{getattr(node, 'lineno', 0)}")

        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (arg := _kind_arg(node)) is not None:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    add(node, arg.value)
                else:
                    assert ast.unparse(arg) in DYNAMIC, f"{where}: computed kind {ast.unparse(arg)}"
            if isinstance(node, ast.FunctionDef) and node.name == "_kind":
                add(node, *(r.value.value for r in ast.walk(node) if isinstance(r, ast.Return)
                            and isinstance(r.value, ast.Constant) and isinstance(r.value.value, str)))
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if names & {"kind", "_SCALAR_KINDS", "_MAP_KINDS"} and node.value is not None:
                value = node.value.values if isinstance(node.value, ast.Dict) else [node.value]
                for v in value:
                    add(node, *(c.value for c in ast.walk(v) if isinstance(c, ast.Constant)
                                and isinstance(c.value, str)
                                and re.fullmatch(r"[a-z]+(-[a-z]+)+", c.value)))
    return kinds


def documented(rules: Path = RULES) -> dict[str, tuple[str, str, str, str]]:
    """`aspect:kind` -> (aspect, verdict, subject, why) from the kinds table of
    docs/compat-rules.md."""
    rows: dict[str, tuple[str, str, str, str]] = {}
    for line in rules.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("aspect", "---"):
            continue
        aspect, names, verdict, subject, why = cells
        for name in re.split(r"\s*[/,]\s*", names):
            rows[f"{aspect}:{name}"] = (aspect, verdict, subject, why)
    return rows


def contract_problems(kinds: Mapping[str, Kind], emitted: Mapping[str, str],
                      rows: Mapping[str, tuple[str, str, str, str]]) -> list[str]:
    """What keeps the contract from being complete, one line each naming the kind, where
    it is emitted and what to add: a kind the code emits that no aspect module declares,
    a declared kind without a valid verdict, a why-text or a row of docs/compat-rules.md
    (whose verdict must name the declared one and whose subject and why must be filled),
    and declared or documented kinds the code never emits."""
    problems = []
    for name, where in sorted(emitted.items()):
        if name not in kinds:
            problems.append(f"{name} (emitted at {where}) is declared by no module: add "
                            f"kind({name!r}, ASPECT, VERDICT, WHY) to its aspect module's kinds "
                            "in harness/aspects/")
    for kind in kinds.values():
        where = emitted.get(kind.name, "nowhere")
        if kind.name not in emitted:
            problems.append(f"{kind.name} is declared but the code never emits it")
        if kind.verdict not in VERDICTS:
            problems.append(f"{kind.name} (emitted at {where}) has no verdict of {VERDICTS}: "
                            f"{kind.verdict!r}")
        if not kind.why.strip():
            problems.append(f"{kind.name} (emitted at {where}) has no why-text")
        if not kind.aspects:
            problems.append(f"{kind.name} (emitted at {where}) names no aspect")
        for aspect in kind.aspects:
            row = rows.get(f"{aspect}:{kind.name}")
            if row is None:
                problems.append(f"{aspect} {kind.name} (emitted at {where}) is not a row of "
                                f"docs/compat-rules.md: add `| {aspect} | {kind.name} | "
                                f"{kind.verdict} | SUBJECT | WHY |` to its kinds table")
                continue
            _, verdict, subject, why = row
            if kind.verdict not in verdict:
                problems.append(f"{aspect} {kind.name}: docs/compat-rules.md says {verdict!r}, "
                                f"its module {kind.verdict!r}")
            if not subject:
                problems.append(f"{aspect} {kind.name}: docs/compat-rules.md gives no subject "
                                "spelling")
            if not why:
                problems.append(f"{aspect} {kind.name}: docs/compat-rules.md gives no why")
    for key in sorted(rows):
        aspect, name = key.split(":", 1)
        if aspect not in kinds.get(name, Kind(name, (), "", "")).aspects:
            problems.append(f"{aspect} {name} is a row of docs/compat-rules.md that no "
                            "module declares")
    return problems


def test_scan_finds_the_known_kinds() -> None:
    """The scan sees literal, table and computed kinds (it can fail: a scan finding nothing
    would pass every other test)."""
    found = emitted_kinds()
    assert {"package-removed", "symbol-unresolved", "user-changed", "label-changed",
            "runtime-updated", "hidden-in-lower-layer", "config-changed"} <= set(found)
    assert found["no-package-database"].startswith("harness/aspects/packages.py:")


def test_the_contract_is_complete() -> None:
    """Every kind the code can emit has a verdict, a why-text and a documented subject
    spelling, and nothing is declared or documented that the code never emits."""
    assert contract_problems(KINDS, emitted_kinds(), documented()) == []


def test_a_gap_is_named_exactly() -> None:
    """The check can fail, and says what to add: a kind without its row, a row the code
    lacks, a kind no module declares, a declared kind without a why."""
    rows = documented()
    emitted = emitted_kinds()
    del rows["files:mode-changed"]
    assert contract_problems(KINDS, emitted, rows) == [
        f"files mode-changed (emitted at {emitted['mode-changed']}) is not a row of "
        "docs/compat-rules.md: add `| files | mode-changed | review | SUBJECT | WHY |` to "
        "its kinds table"]
    rows = {**documented(), "files:mode-lost": ("files", "break", "path", "why")}
    assert contract_problems(KINDS, emitted, rows) == [
        "files mode-lost is a row of docs/compat-rules.md that no module declares"]
    kinds = {n: k for n, k in KINDS.items() if n != "symbol-moved"}
    assert contract_problems(kinds, emitted, documented()) == [
        f"symbol-moved (emitted at {emitted['symbol-moved']}) is declared by no module: add "
        "kind('symbol-moved', ASPECT, VERDICT, WHY) to its aspect module's kinds in "
        "harness/aspects/",
        "abi symbol-moved is a row of docs/compat-rules.md that no module declares"]
    kinds = {**KINDS, "root-user": Kind("root-user", ("security",), "review", " ")}
    assert contract_problems(kinds, emitted, documented()) == [
        f"root-user (emitted at {emitted['root-user']}) has no why-text"]


def test_every_manager_has_one_entry() -> None:
    """Each database reader and each language ecosystem the snapshot records has its entry
    in the registry of managers (version order, purl type)."""
    from harness.snapshot.managers import load_builtin_readers, managers
    from harness.snapshot.packages import READERS

    load_builtin_readers()
    readers = {r.manager for r in READERS}
    assert {"dpkg", "rpm", "apk"} <= readers
    tree = ast.parse((HARNESS / "snapshot" / "language.py").read_text())
    ecosystems = {n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call)
                  and isinstance(n.func, ast.Name) and n.func.id == "_record"
                  and n.args and isinstance(n.args[0], ast.Constant)}
    assert "pypi" in ecosystems
    assert sorted((readers | ecosystems) - set(managers())) == []


def _layout_rows() -> dict[str, str]:
    """README's layout table: each module path it names -> the job its row gives (a bare name
    in a cell is in the folder of the cell's first path)."""
    text = (ROOT / "README.md").read_text()
    table = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    named: dict[str, str] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`harness/"):
            continue
        folder = ""
        for name in re.findall(r"`([^`]+)`", cells[0]):
            if "/" in name:
                folder = name.rsplit("/", 1)[0]
                named[name] = cells[1]
            else:
                named[f"{folder}/{name}"] = cells[1]
    return named


def _defines(path: Path) -> bool:
    """Whether a module defines a function, a class or an import (more than a docstring)."""
    return any(isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))
               for node in ast.parse(path.read_text()).body)


def test_the_readme_layout_names_every_module_and_only_modules_that_exist() -> None:
    named = _layout_rows()
    modules = {str(p.relative_to(ROOT)) for p in HARNESS.rglob("*.py")
               if p.name != "__init__.py" or _defines(p)}  # else a package's docstring only
    assert sorted(modules - named.keys()) == [], "modules the README's layout table omits"
    assert sorted(named.keys() - modules) == [], "the layout table names modules that do not exist"
    assert all(len(job) > 10 for job in named.values()), "every module's row says its job"
