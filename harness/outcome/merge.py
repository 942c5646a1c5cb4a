"""JSON reports back into the report model, and many of them merged into one review: a
release gates each image x arch in its own CI job, and one job merges their reports.

The merged verdict is the worst; an image the matrix expects (`NAME/ARCH`) with no report,
or an image reported twice, is an error of the merged review."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.diff.change import VERDICTS, Change
from harness.errors import HarnessError
from harness.outcome.result import AspectResult
from harness.outcome.model import ImageReport, build_reports
from harness.outcome.report import REPORT_SCHEMA

#: a report of another schema is read when it is one of these (2 would add, never remove)
READABLE_SCHEMAS = (1,)
_FIELDS = frozenset(Change.__dataclass_fields__)


def read_report(path: Path) -> list[AspectResult]:
    """The aspect results of one JSON report (the contract of docs/compat-rules.md)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise HarnessError(f"{path}: not a readable JSON report ({type(exc).__name__}: "
                           f"{str(exc)[:200]})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise HarnessError(f"{path}: not a JSON report of the gate (no `images` list)")
    if data.get("schema") not in READABLE_SCHEMAS:
        raise HarnessError(f"{path}: report schema {data.get('schema')!r} is not one this "
                           f"harness reads ({', '.join(map(str, READABLE_SCHEMAS))})")
    results: list[AspectResult] = []
    for image in data["images"]:
        try:
            results += _image_results(image)
        except (KeyError, TypeError, ValueError) as exc:
            raise HarnessError(f"{path}: a malformed image entry ({type(exc).__name__}: {exc})") from exc
    return results


def _image_results(image: dict[str, Any]) -> list[AspectResult]:
    _check_image(image)
    changes = [Change(**{k: v for k, v in c.items() if k in _FIELDS}) for c in image["changes"]]
    by_aspect: dict[str, list[Change]] = {}
    for c in changes:
        by_aspect.setdefault(c.aspect, []).append(c)
    errors = [str(e) for e in image.get("errors") or []]
    missing = set(image.get("missing_baselines") or [])
    results = []
    for aspect in sorted(set(by_aspect) | missing | ({"error"} if errors else set())):
        results.append(AspectResult(str(image["name"]), str(image.get("ref") or ""), aspect,
                                    image.get("arch"), image.get("image_id"), image.get("baseline"),
                                    by_aspect.get(aspect, []),
                                    error="; ".join(errors) if aspect == "error" else None,
                                    missing_baseline=aspect in missing))
    if not results:  # an image with nothing to say still passed: keep it in the review
        results.append(AspectResult(str(image["name"]), str(image.get("ref") or ""), "metadata",
                                    image.get("arch"), image.get("image_id"), image.get("baseline")))
    return results


def _check_image(image: Any) -> None:
    """Raise ValueError unless an image entry has the contract's types: a report is input, and
    a change whose verdict is not one of VERDICTS would otherwise read as a pass, an
    unhashable arch or aspect crash the grouping."""
    def text(value: Any, what: str, optional: bool = True) -> None:
        if not (isinstance(value, str) or (optional and value is None)):
            raise ValueError(f"{what} is {type(value).__name__}, not a string")
    if not isinstance(image, dict):
        raise ValueError(f"an image entry is {type(image).__name__}, not an object")
    text(image.get("name"), "name", optional=False)
    for key in ("ref", "arch", "image_id", "baseline"):
        text(image.get(key), key)
    for key in ("changes", "errors", "missing_baselines"):
        if not isinstance(image.get(key) or [], list):
            raise ValueError(f"{key} is not a list")
    for missing in image.get("missing_baselines") or []:
        text(missing, "a missing baseline", optional=False)
    for change in image.get("changes") or []:
        if not isinstance(change, dict):
            raise ValueError(f"a change is {type(change).__name__}, not an object")
        for key in ("aspect", "kind", "subject"):
            text(change.get(key), f"a change's {key}", optional=False)
        for key in ("consumer", "reason"):
            text(change.get(key), f"a change's {key}")
        if change.get("verdict", "info") not in VERDICTS:
            raise ValueError(f"a change's verdict is not one of {', '.join(VERDICTS)}")
        if not isinstance(change.get("waived", False), bool):
            raise ValueError("a change's waived is not true or false")
        cause = change.get("cause")
        if cause is not None:
            if not isinstance(cause, dict):
                raise ValueError("a change's cause is not an object")
            for key in ("aspect", "kind", "subject"):
                text(cause.get(key), f"a cause's {key}", optional=False)


def merge(paths: list[Path], expect: list[str] | None = None) -> tuple[list[ImageReport], list[str]]:
    """Every image of every report (keyed NAME/ARCH), and the problems of the matrix: an
    expected image without a report, an image reported twice. A problem is also an error of
    the merged review, so it can never read as a pass."""
    results: list[AspectResult] = []
    seen: dict[str, Path] = {}
    problems: list[str] = []
    for path in paths:
        read = read_report(path)
        keys = {f"{r.name}/{r.arch or '?'}" for r in read}
        for key in sorted(keys):
            if key in seen:
                problems.append(f"{key}: reported twice ({seen[key]} and {path})")
            seen.setdefault(key, path)
        results += read
    for key in expect or []:
        name, _, arch = key.partition("/")
        if not name or not arch:
            raise HarnessError(f"--expect {key!r}: write NAME/ARCH (e.g. debian/x86_64)")
        if key not in seen:
            problems.append(f"{key}: expected in the matrix but no report has it")
            results.append(AspectResult(name, "", "matrix", arch, None, None,
                                        error="missing from the matrix: no report for this image"))
    return _by_image(results), problems


def _by_image(results: list[AspectResult]) -> list[ImageReport]:
    """Results grouped by NAME/ARCH in the order they come: one name on two arches is two
    images of the review, named `NAME [ARCH]` so that each section says which."""
    arches: dict[str, set[str | None]] = {}
    for r in results:
        arches.setdefault(r.name, set()).add(r.arch)
    groups: dict[tuple[str, str | None], list[AspectResult]] = {}
    for r in results:
        groups.setdefault((r.name, r.arch), []).append(r)
    reports: list[ImageReport] = []
    for (name, arch), group in groups.items():
        rep = build_reports(group)[0]
        if len(arches[name]) > 1:
            rep.name = f"{name} [{arch or '?'}]"
        reports.append(rep)
    return reports
