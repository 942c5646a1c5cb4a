"""The long fuzz run: mutate seed inputs of each reader for a time budget, in ONE process
(one core), and keep what breaks a reader's contract.

    python3 fuzz/run.py --minutes 10                 # every target, 10 minutes each
    python3 fuzz/run.py --minutes 30 --targets elf,tar --seed 7
    python3 fuzz/run.py --replay fuzz/findings/apk/OverflowError-apk.py-129.bin

A finding is any exception outside the target's contract (ParseError, TarFormatError or
SourceError), a run over `--timeout` seconds, or a result that does not serialise to JSON. Each
distinct finding (exception type and the innermost harness frame) is written once to
`--out/TARGET/` as the input (.bin) and its traceback (.txt). Inputs that end in a new way (a
new error message shape, a new record count) join the target's corpus, a cheap stand-in for
coverage feedback. The summary (executions, rate, findings) is printed and written as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import resource
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz.targets import TARGETS, Target, mutate  # noqa: E402

MAX_CORPUS = 400


class Hang(Exception):
    """A single run exceeded its time limit."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang("run exceeded the time limit")


def _where(exc: BaseException) -> str:
    """The innermost frame in the harness (else the innermost at all): the finding's identity."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/harness/" in f.filename] or frames
    if not ours:
        return "?"
    f = ours[-1]
    return f"{Path(f.filename).name}:{f.lineno}"


def _shape(result: Any, exc: BaseException | None) -> str:
    """How a run ended, coarsely: new shapes grow the corpus."""
    if exc is not None:
        return type(exc).__name__ + ":" + re.sub(r"[0-9]+|'[^']*'|\"[^\"]*\"", "#", str(exc))[:80]
    return "ok"


def run_once(target: Target, data: bytes, timeout: float) -> tuple[str, BaseException | None]:
    """("ok" | "allowed" | "finding", the exception)."""
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        target.run(data)
        return "ok", None
    except target.allowed as exc:
        return "allowed", exc
    except (Exception, Hang) as exc:  # noqa: BLE001 - anything else is what we look for
        return "finding", exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def fuzz(target: Target, seconds: float, rng: random.Random, out: Path,
         timeout: float) -> dict[str, Any]:
    """Fuzz one target for a time budget; returns its figures."""
    corpus = list(target.seeds())
    shapes: set[str] = set()
    for seed in corpus:
        shapes.add(_shape(None, run_once(target, seed, timeout)[1]))
    findings: dict[str, dict[str, Any]] = {}
    execs = allowed = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        data = mutate(rng.choice(corpus), rng, corpus, target.text)
        outcome, exc = run_once(target, data, timeout)
        execs += 1
        if outcome == "allowed":
            allowed += 1
        if outcome == "finding":
            assert exc is not None
            key = f"{type(exc).__name__}-{_where(exc)}"
            entry = findings.setdefault(key, {"count": 0, "message": str(exc)[:200]})
            entry["count"] += 1
            if entry["count"] == 1:
                folder = out / target.name
                folder.mkdir(parents=True, exist_ok=True)
                stem = re.sub(r"[^A-Za-z0-9_-]", "-", key)
                (folder / f"{stem}.bin").write_bytes(data)
                (folder / f"{stem}.txt").write_text("".join(traceback.format_exception(exc)))
                entry["input"] = str(folder / f"{stem}.bin")
                print(f"  [{target.name}] finding {key}: {str(exc)[:120]}", flush=True)
            continue
        shape = _shape(None, exc)
        if shape not in shapes and len(corpus) < MAX_CORPUS:
            shapes.add(shape)
            corpus.append(data)
    elapsed = time.monotonic() - start
    return {"target": target.name, "seconds": round(elapsed, 1), "executions": execs,
            "per_second": round(execs / elapsed, 1), "allowed_errors": allowed,
            "corpus": len(corpus), "findings": findings}


def replay(path: Path, timeout: float) -> int:
    """Run one saved input through its target (the folder name) and print what happens."""
    target = TARGETS[path.parent.name]
    outcome, exc = run_once(target, path.read_bytes(), timeout)
    print(outcome, "".join(traceback.format_exception(exc)) if exc else "")
    return 1 if outcome == "finding" else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="budget per target")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated names")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address space limit")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "findings")
    parser.add_argument("--replay", type=Path, default=None, help="run one saved input")
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore")  # LIEF warns about every odd enum value it meets
    signal.signal(signal.SIGALRM, _alarm)
    limit = args.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a bogus count must not eat the box
    if args.replay:
        return replay(args.replay, args.timeout)
    seed = args.seed if args.seed is not None else int(time.time())
    print(f"fuzz: seed {seed}, {args.minutes} min per target", flush=True)
    summary = []
    for name in args.targets.split(","):
        rng = random.Random(f"{seed}-{name}")
        figures = fuzz(TARGETS[name], args.minutes * 60, rng, args.out, args.timeout)
        print(json.dumps(figures), flush=True)
        summary.append(figures)
    args.out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(str(seed).encode()).hexdigest()[:8]
    (args.out / f"summary-{digest}.json").write_text(json.dumps(
        {"seed": seed, "targets": summary}, indent=1))
    return 1 if any(s["findings"] for s in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
