"""One symlink resolver for the whole harness (ownership, families, the loader's view), with
the kernel's semantics: `..` after a symlink climbs from where the link led."""

from __future__ import annotations

from typing import Any

from harness.paths import SymlinkResolver, real_path
from harness.snapshot.elf import image_realpath


def _files(**links: str) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {p: {"type": "dir"} for p in
                                        ("/a", "/b", "/b/c", "/usr", "/usr/lib")}
    files.update({p: {"type": "file"} for p in ("/b/f", "/usr/lib/y", "/a/f")})
    files.update({p: {"type": "symlink", "target": t} for p, t in links.items()})
    return files


def test_dotdot_climbs_from_where_the_link_led() -> None:
    files = _files(**{"/a/link": "/b/c", "/lib": "usr/lib"})
    # lexically /a/link/../f would be /a/f; the kernel lands in /b
    assert real_path(files, "/a/link/../f") == "/b/f"
    assert image_realpath("/a/link/../f", {"/a/link": "/b/c"}) == "/b/f"
    assert real_path(files, "/lib/x/../y") is None  # /usr/lib/x is not there: ENOENT
    assert image_realpath("/lib/x/../y", {"/lib": "usr/lib"}) == "/usr/lib/y"
    assert SymlinkResolver(files).real_path("/lib/y") == "/usr/lib/y"


def test_last_component_loops_and_dangling_links() -> None:
    files = _files(**{"/a/l1": "l2", "/a/l2": "l1", "/a/dangling": "/nowhere", "/a/tof": "f"})
    assert real_path(files, "/a/l1") is None
    assert real_path(files, "/a/dangling") is None
    assert real_path(files, "/a/dangling", follow_last=False) == "/a/dangling"
    assert real_path(files, "/a/tof") == "/a/f"
    assert real_path(files, "/a/tof", follow_last=False) == "/a/tof"
    assert image_realpath("/x/y", {"/x": "/x"}) is None
