"""The report contract is complete: every kind the code can emit is in harness.kinds (verdict,
why-text) and is a row of docs/compat-rules.md (verdict, subject spelling, why)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from harness.kinds import KINDS

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "harness"
RULES = ROOT / "docs" / "compat-rules.md"

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


def emitted_kinds() -> set[str]:
    """Every kind a Change or linkage Finding of harness/ can carry, by a scan of the source:
    literal kinds, the values of the tables and `kind = ...` assignments that computed kinds
    come from (and the literals `_kind` returns)."""
    kinds: set[str] = set()
    for path in HARNESS.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (arg := _kind_arg(node)) is not None:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    kinds.add(arg.value)
                else:
                    assert ast.unparse(arg) in DYNAMIC, f"{path}: computed kind {ast.unparse(arg)}"
            if isinstance(node, ast.FunctionDef) and node.name == "_kind":
                kinds |= {r.value.value for r in ast.walk(node) if isinstance(r, ast.Return)
                          and isinstance(r.value, ast.Constant) and isinstance(r.value.value, str)}
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if names & {"kind", "_SCALAR_KINDS", "_MAP_KINDS"} and node.value is not None:
                value = node.value.values if isinstance(node.value, ast.Dict) else [node.value]
                for v in value:
                    kinds |= {c.value for c in ast.walk(v) if isinstance(c, ast.Constant)
                              and isinstance(c.value, str) and re.fullmatch(r"[a-z]+(-[a-z]+)+", c.value)}
    return kinds


def documented() -> dict[str, tuple[str, str, str, str]]:
    """kind -> (aspect, verdict, subject, why) from the kinds table of docs/compat-rules.md."""
    rows: dict[str, tuple[str, str, str, str]] = {}
    for line in RULES.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("aspect", "---"):
            continue
        aspect, names, verdict, subject, why = cells
        for name in re.split(r"\s*[/,]\s*", names):
            rows[f"{aspect}:{name}"] = (aspect, verdict, subject, why)
    return rows


def test_scan_finds_the_known_kinds() -> None:
    """The scan sees literal, table and computed kinds (it can fail: a scan finding nothing
    would pass every other test)."""
    found = emitted_kinds()
    assert {"package-removed", "symbol-unresolved", "user-changed", "label-changed",
            "runtime-updated", "hidden-in-lower-layer", "config-changed"} <= found


def test_every_emitted_kind_is_registered() -> None:
    found = emitted_kinds()
    assert sorted(found - set(KINDS)) == []
    assert sorted(set(KINDS) - found) == [], "registered kinds the code never emits"


def test_every_kind_has_a_verdict_and_why() -> None:
    for kind in KINDS.values():
        assert kind.verdict in ("break", "review", "info"), kind
        assert kind.why.strip(), kind
        assert kind.aspects, kind


def test_every_kind_is_documented_with_verdict_subject_and_why() -> None:
    rows = documented()
    for kind in KINDS.values():
        for aspect in kind.aspects:
            row = rows.get(f"{aspect}:{kind.name}")
            assert row is not None, f"{aspect} {kind.name} is not a row of docs/compat-rules.md"
            _, verdict, subject, why = row
            assert kind.verdict in verdict, (kind.name, verdict)
            assert subject and why, (kind.name, row)
    assert {k.split(":", 1)[1] for k in rows} <= set(KINDS), "documented kinds the code lacks"


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
