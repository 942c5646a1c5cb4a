"""Hostile images cannot exhaust or hang the gate: every parser of image content has bounds
(`[tool.harness.limits]`), and past one the aspect is an `error` naming the file and the
bound, in bounded memory, never a pass.

Images are daemonless archives built here (a layer of a few megabytes expanding to gibibytes:
a dpkg status, an /etc/shadow, compression bombs) and rpm databases written by sqlite3; each
gate run that reads gibibytes runs in a subprocess whose peak RSS is measured.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from fuzz.targets import sqlite_bytes
from harness.config import ConfigError, parse_config
from harness.errors import ParseError
from harness.limits import GIB, MIB, Limits, budget, parse_limits
from harness.snapshot import rpm
from testimages import bombs

REPO = Path(__file__).resolve().parent.parent
#: the bound on the gate's peak memory while it reads a bomb or a huge file
RSS_MB = 500

GATE = """
import json, resource, sys
from pathlib import Path
from harness.config import HarnessConfig, ImageSpec
from harness.aspects import ASPECTS
from harness.gate import SnapshotStore, check_aspect
from harness.limits import parse_limits

limits = parse_limits(json.loads(sys.argv[2]), "test")
cache = Path(sys.argv[3])
store = SnapshotStore(cache, "bounds-test", limits=limits)
results = {a: check_aspect(ImageSpec("b", sys.argv[1]), a, store, cache / "baselines",
                           HarnessConfig(limits=limits)).to_dict() for a in ASPECTS}
store.cleanup()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
print(json.dumps({"results": results, "rss_mb": rss, "children_rss_mb": children}))
"""


def gate(ref: str, limits: dict[str, Any], cache: Path, timeout: int = 900) -> dict[str, Any]:
    """Every aspect of one image through the gate in a fresh interpreter, with its peak RSS."""
    proc = subprocess.run([sys.executable, "-c", GATE, ref, json.dumps(limits), str(cache)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{ref}: peak RSS {figures['rss_mb']} MB (children {figures['children_rss_mb']} MB)")
    return figures


def errors(figures: dict[str, Any]) -> dict[str, str]:
    return {a: r["error"] for a, r in figures["results"].items() if r["error"]}


# -- configuration -------------------------------------------------------------------------------

def test_limits_parse_sizes_and_seconds() -> None:
    limits = parse_config({"limits": {"package_db_bytes": "64 MiB", "manifest_bytes": 1024,
                                      "image_seconds": 30}}).limits
    assert limits.package_db_bytes == 64 * MIB and limits.manifest_bytes == 1024
    assert limits.image_seconds == 30 and limits.expanded_bytes == Limits().expanded_bytes
    for bad in ({"package_db_bytes": "lots"}, {"image_seconds": -1}, {"no_such": 1},
                {"image_seconds": "1h"}, {"expanded_bytes": True}):
        with pytest.raises(ConfigError, match=r"limits\.(package_db_bytes|image_seconds|no_such|expanded_bytes)"):
            parse_config({"limits": bad})


# -- sqlite --------------------------------------------------------------------------------------

RECURSIVE_VIEW = """
CREATE VIEW Packages AS
  WITH RECURSIVE forever(hnum, blob) AS (SELECT 1, x'00' UNION ALL SELECT hnum + 1, blob FROM forever)
  SELECT hnum, blob FROM forever;
"""



def _read_in_child(data: bytes, path: str, seconds: float = 120) -> str:
    """Read an rpm database in a child (a hang is then a failure, not a stuck suite)."""
    code = textwrap.dedent("""
        import sys
        from harness.errors import ParseError
        from harness.snapshot import rpm
        try:
            rpm.read_database({sys.argv[1]: sys.stdin.buffer.read()})
        except ParseError as exc:
            print(exc)
        """)
    proc = subprocess.run([sys.executable, "-c", code, path], input=data, capture_output=True,
                          timeout=seconds, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.decode().strip()


def test_packages_as_a_recursive_view_is_refused() -> None:
    data = sqlite_bytes(RECURSIVE_VIEW)
    assert len(data) <= 8192
    path = "/usr/lib/sysimage/rpm/rpmdb.sqlite"
    message = _read_in_child(data, path)
    assert message.startswith(path) and "Packages is a view, not a table: refused" in message


def test_an_image_with_a_recursive_view_is_a_packages_error(tmp_path: Path) -> None:
    """An rpmdb.sqlite whose Packages is an endless recursive view, in an image: the gate
    ends (the query runs under a deadline), and only the packages aspect is an error, naming
    the file."""
    data = sqlite_bytes(RECURSIVE_VIEW)
    archive = bombs.archive(tmp_path / "view.tar", [("var/lib/rpm/rpmdb.sqlite", data, len(data))],
                            "gzip", "harness-test/rpm-view:1")
    figures = gate(f"docker-archive:{archive}", {}, tmp_path / "cache", timeout=300)
    assert errors(figures) == {"packages": "/var/lib/rpm/rpmdb.sqlite: unreadable SQLite rpm "
                                           "database: its Packages is a view, not a table: refused"}


def test_a_virtual_table_is_refused() -> None:
    data = sqlite_bytes("CREATE VIRTUAL TABLE Packages USING fts5(hnum, blob);")
    with pytest.raises(ParseError, match="Packages is a virtual table, not a table: refused"):
        rpm.read_database({"/var/lib/rpm/rpmdb.sqlite": data})


def test_a_slow_query_stops_at_its_deadline_naming_the_bound() -> None:
    rows = ",".join(f"({i}, x'00')" for i in range(1, 20_001))
    data = sqlite_bytes(f"CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB);"
                         f"INSERT INTO Packages VALUES {rows};")
    with budget(Limits(sqlite_seconds=1e-9), "test"):
        with pytest.raises(ParseError, match=r"rpmdb\.sqlite: .*the query took longer than "
                                             r"\[tool\.harness\.limits\] sqlite_seconds = 1e-09 s"):
            rpm.read_database({"/var/lib/rpm/rpmdb.sqlite": data})


# -- whole-file reads capped at the walk's hand-over --------------------------------------------

@pytest.mark.exclusive  # a memory bound means something only on a machine not shared with other tests
def test_a_huge_dpkg_status_is_an_error_in_bounded_memory(tmp_path: Path) -> None:
    """A 6 MB gzip layer holding a 1.5 GiB /var/lib/dpkg/status: refused by the default cap."""
    size = 3 * GIB // 2
    archive = bombs.archive(tmp_path / "status.tar", [("var/lib/dpkg/status", b"Package: a\n", size)],
                            "gzip", "harness-test/huge-status:1")
    assert archive.stat().st_size < 8 * MIB
    figures = gate(f"docker-archive:{archive}", {}, tmp_path / "cache")
    assert errors(figures) == {"packages": f"/var/lib/dpkg/status: 1536 MiB ({size:,} bytes), "
                                           "larger than [tool.harness.limits] package_db_bytes = 256 MiB"}
    assert figures["rss_mb"] < RSS_MB and figures["children_rss_mb"] < RSS_MB, figures


def test_a_huge_shadow_is_a_security_error(tmp_path: Path) -> None:
    """An empty root password at the start of a 64 MiB /etc/shadow is never a pass."""
    archive = bombs.archive(tmp_path / "shadow.tar",
                            [("etc/shadow", b"root::19000:0:99999:7:::\n", 64 * MIB)],
                            "gzip", "harness-test/huge-shadow:1")
    figures = gate(f"docker-archive:{archive}", {"account_file_bytes": "1 MiB"}, tmp_path / "cache")
    assert errors(figures) == {"security": f"/etc/shadow: 64 MiB ({64 * MIB:,} bytes), larger "
                                           "than [tool.harness.limits] account_file_bytes = 1 MiB"}


def _manifest_bomb(inflated: int) -> bytes:
    """A jar whose MANIFEST.MF inflates to `inflated` bytes (its header says so too)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as jar:
        with jar.open("META-INF/MANIFEST.MF", "w", force_zip64=True) as member:
            member.write(b"Manifest-Version: 1.0\nImplementation-Title: a\n"
                         b"Implementation-Version: 1\n")
            chunk = b"\n" * (16 * MIB)
            for _ in range(inflated // len(chunk)):
                member.write(chunk)
    return out.getvalue()


@pytest.mark.exclusive  # a memory bound means something only on a machine not shared with other tests
def test_jar_manifests_inflating_to_gibibytes_are_an_error_in_bounded_memory(tmp_path: Path) -> None:
    jar = _manifest_bomb(GIB)
    assert len(jar) < 2 * MIB
    files = [(f"app/lib/bomb{i}.jar", jar, len(jar)) for i in range(4)]
    archive = bombs.archive(tmp_path / "jars.tar", files, "gzip", "harness-test/jar-bombs:1")
    figures = gate(f"docker-archive:{archive}", {}, tmp_path / "cache")
    found = errors(figures)
    assert set(found) == {"packages"}, found
    for i in range(4):
        assert (f"/app/lib/bomb{i}.jar!/META-INF/MANIFEST.MF: larger than "
                "[tool.harness.limits] manifest_bytes = 4 MiB") in found["packages"]
    assert figures["rss_mb"] < RSS_MB, figures


# -- each image's budget of expanded bytes and of time -------------------------------------------

@pytest.mark.exclusive  # a memory bound means something only on a machine not shared with other tests
@pytest.mark.parametrize("kind, expanded", [("gzip", 20 * GIB), ("bz2", 64 * GIB)])
def test_compression_bomb_stops_at_the_expanded_budget(kind: str, expanded: int, tmp_path: Path) -> None:
    if expanded not in bombs.KNOWN_DIFF_IDS:
        pytest.skip(f"the diff id of a {expanded >> 30} GiB bomb is not recorded in testimages.bombs")
    archive = bombs.archive(tmp_path / "bomb.tar", bombs.zero_files(expanded), kind,
                            f"harness-test/bomb-{kind}:1")
    assert archive.stat().st_size < 32 * MIB
    figures = gate(f"docker-archive:{archive}", {"expanded_bytes": "256 MiB"}, tmp_path / "cache")
    found = errors(figures)
    assert set(found) == set(figures["results"]), found  # no aspect can be judged
    for message in found.values():
        assert "layer" in message and ("the image's layers expand to more than "
                                       "[tool.harness.limits] expanded_bytes = 256 MiB") in message
    assert figures["rss_mb"] < RSS_MB, figures


def test_an_image_past_its_time_budget_is_an_error(tmp_path: Path) -> None:
    expanded = 64 * GIB
    if expanded not in bombs.KNOWN_DIFF_IDS:
        pytest.skip("the diff id of the 64 GiB bomb is not recorded in testimages.bombs")
    archive = bombs.archive(tmp_path / "bomb.tar", bombs.zero_files(expanded), "bz2",
                            "harness-test/bomb-slow:1")
    figures = gate(f"docker-archive:{archive}", {"image_seconds": 2}, tmp_path / "cache")
    found = errors(figures)
    assert set(found) == set(figures["results"]), found
    for message in found.values():
        assert "took longer than [tool.harness.limits] image_seconds = 2 s" in message


def test_parse_limits_rejects_a_table_of_another_type() -> None:
    with pytest.raises(ConfigError, match="must be a table"):
        parse_limits(["x"], "[tool.harness.limits]")
