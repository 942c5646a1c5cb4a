"""Subtrees an earlier walk of the process read (harness.snapshot.subtrees): a member over a
base replays the base's folders it holds unchanged, and its snapshot, and what every
collector was shown and handed, is the one a walk that lists every folder takes; anything
changed in a layer folder since, or anything that depends on more than a folder's copies,
is walked again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.snapshot import layercache, subtrees
from harness.snapshot.elf import ElfCollector
from harness.snapshot.secrets import SecretsCollector
from harness.snapshot.walk import walk
from harness.source.layerdirs import LayerDirsReader
from conftest import Heads


class Taker:
    """Wants the files below /usr/share/doc (as the packages collector does its copyright
    files), and records what it is handed."""

    def __init__(self) -> None:
        self.taken: dict[str, bytes] = {}

    def wants(self, path: str, head: bytes, size: int) -> bool:
        return path.startswith("/usr/share/doc/")

    def take(self, path: str, data: bytes) -> None:
        self.taken[path] = data


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def layers(tmp_path: Path) -> tuple[Path, Path]:
    """A base layer folder, and a member's own layer over it that touches /usr/lib only."""
    base = _folder(tmp_path / "overlay2" / "base" / "diff", {
        "usr/share/doc/a/copyright": b"License: MIT\n",
        "usr/share/doc/b/copyright": b"License: GPL-2\n",
        "usr/share/zoneinfo/UTC": b"TZif2" + bytes(100),
        "usr/share/zoneinfo/Europe/Paris": b"TZif2" + bytes(200),
        "usr/lib/libold.so": b"\x7fELF" + bytes(60),
        "etc/key.pem": b"-----BEGIN PRIVATE KEY-----\n" + b"A" * 100,
        "usr/share/empty": b"",
    })
    os.symlink("UTC", base / "usr/share/zoneinfo/Zulu")
    os.chmod(base / "usr/share/zoneinfo/Europe", 0o750)
    member = _folder(tmp_path / "overlay2" / "member" / "diff",
                     {"usr/lib/libnew.so": b"\x7fELF" + bytes(80)})
    return base, member


def _walk(folders: list[Path], cache: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The files of a walk of the folders (top first) under the layer cache, and what its
    collectors were shown and handed."""
    heads, taker, secrets = Heads(), Taker(), SecretsCollector()
    elf = ElfCollector(in_place=False)
    with layercache.using(cache) as known:
        files = walk(LayerDirsReader(folders, "test"), [heads, taker, secrets, elf])
        known.learn(files, elf.result(files, {}).get("objects", {}))
        known.save()
    shown = {"heads": heads.seen, "taken": taker.taken, "secrets": secrets.result()}
    return dict(files.items()), shown


@pytest.fixture
def replayed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders whose subtrees a walk replayed."""
    paths: list[str] = []
    replay = subtrees.Recorder.replay

    def counting(self: subtrees.Recorder, key: Any, *args: Any) -> bool:
        done = replay(self, key, *args)
        if done:
            paths.append(os.fsdecode(key[0]))
        return done
    monkeypatch.setattr(subtrees.Recorder, "replay", counting)
    monkeypatch.setattr(subtrees, "_segments", {})
    monkeypatch.setattr(subtrees, "_kept", [])
    monkeypatch.setattr(subtrees, "_alone", {})
    return paths


def _alone(folders: list[Path], cache: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The walk with nothing kept from earlier ones (and its notes then forgotten)."""
    kept = dict(subtrees._segments), list(subtrees._kept), dict(subtrees._alone)
    _forget()
    try:
        return _walk(folders, cache)
    finally:
        _forget()
        subtrees._segments.update(kept[0])
        subtrees._kept[:] = kept[1]
        subtrees._alone.update(kept[2])


def _forget() -> None:
    """Forget what earlier walks noted."""
    subtrees._segments.clear()
    subtrees._kept.clear()
    subtrees._alone.clear()


def test_a_member_replays_the_base_folders_it_holds_unchanged(
        tmp_path: Path, layers: tuple[Path, Path], replayed: list[str]) -> None:
    base, member = layers
    cache = tmp_path / "cache"
    _walk([base], cache)
    assert not replayed
    got = _walk([member, base], cache)
    # /usr and /usr/lib hold the member's copies: walked; /usr/share is the base's. /etc is
    # never replayed (the init layer's rules hold its entries)
    assert replayed == ["usr/share"]
    assert got == _alone([member, base], tmp_path / "cache-alone")
    files, shown = got
    assert files["/usr/share/zoneinfo/Zulu"] == {"type": "symlink", "mode": "0777", "uid": os.getuid(),
                                                 "gid": os.getgid(), "target": "UTC"}
    assert files["/usr/share/zoneinfo/Europe"]["mode"] == "0750"
    assert shown["taken"] == {"/usr/share/doc/a/copyright": b"License: MIT\n",
                              "/usr/share/doc/b/copyright": b"License: GPL-2\n"}
    assert shown["secrets"] == {"/etc/key.pem": "private-key"}
    assert shown["heads"]["/usr/share/empty"] == b""


@pytest.mark.parametrize("change", ["content", "added", "removed", "mode", "symlink"])
def test_a_folder_changed_in_place_is_walked_again(
        tmp_path: Path, layers: tuple[Path, Path], replayed: list[str], change: str) -> None:
    """A layer folder never changes once made; when one did anyway (a file written, a name
    added or removed, a mode changed, a symlink replaced), the walk sees it as a listing
    would."""
    base, member = layers
    cache = tmp_path / "cache"
    _walk([base], cache)
    doc = base / "usr/share/doc/a"
    if change == "content":
        (doc / "copyright").write_bytes(b"License: BSD-3-Clause\n")
    elif change == "added":
        (doc / "changelog").write_bytes(b"new\n")
    elif change == "removed":
        (base / "usr/share/doc/b/copyright").unlink()
    elif change == "mode":
        os.chmod(base / "usr/share/zoneinfo/UTC", 0o600)
    else:
        os.unlink(base / "usr/share/zoneinfo/Zulu")
        os.symlink("Europe/Paris", base / "usr/share/zoneinfo/Zulu")
    got = _walk([member, base], cache)
    assert "usr/share" not in replayed
    assert got == _alone([member, base], tmp_path / "cache-alone")


def test_a_subtree_with_a_hard_link_is_not_replayed(
        tmp_path: Path, layers: tuple[Path, Path], replayed: list[str]) -> None:
    """Which member of a hard link group carries the data depends on the whole walk."""
    base, member = layers
    os.link(base / "usr/share/zoneinfo/UTC", base / "usr/share/zoneinfo/UCT")
    cache = tmp_path / "cache"
    _walk([base], cache)
    got = _walk([member, base], cache)
    assert "usr/share" not in replayed and "usr/share/doc" in replayed
    assert "usr/share/zoneinfo" not in replayed
    assert got == _alone([member, base], tmp_path / "cache-alone")
    assert got[0]["/usr/share/zoneinfo/UTC"]["link"] == "/usr/share/zoneinfo/UCT"


def test_a_whiteout_below_a_folder_walks_it_again(
        tmp_path: Path, layers: tuple[Path, Path], replayed: list[str]) -> None:
    """A member deleting a base file holds a copy of its folder: that folder is walked."""
    base, member = layers
    os.makedirs(member / "usr/share/doc/b")
    os.mknod(member / "usr/share/doc/b/copyright", 0o600 | 0o020000, os.makedev(0, 0)) \
        if os.geteuid() == 0 else pytest.skip("a whiteout (char 0/0) needs root")
    cache = tmp_path / "cache"
    _walk([base], cache)
    got = _walk([member, base], cache)
    assert "usr/share/doc/a" in replayed and "usr/share/doc/b" not in replayed
    assert "/usr/share/doc/b/copyright" not in got[0]
    assert got == _alone([member, base], tmp_path / "cache-alone")


def test_a_walk_notes_at_most_max_noted_members(
        tmp_path: Path, layers: tuple[Path, Path], replayed: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bound a walk notes no more: what it noted before still serves."""
    base, member = layers
    monkeypatch.setattr(subtrees, "MAX_NOTED", 10)  # to /usr/share/doc/b, sorted
    cache = tmp_path / "cache"
    _walk([base], cache)
    assert len(subtrees._kept[-1][0].paths) == 10
    got = _walk([member, base], cache)
    assert replayed == ["usr/share/doc/a"]  # closed before the bound; the others not
    assert got == _alone([member, base], tmp_path / "cache-alone")


def test_a_file_the_cache_lost_is_read(
        tmp_path: Path, layers: tuple[Path, Path], replayed: list[str]) -> None:
    """A subtree is replayed only when the layer cache holds each of its files."""
    base, member = layers
    cache = tmp_path / "cache"
    _walk([base], cache)
    shutil.rmtree(cache)
    got = _walk([member, base], cache)
    assert not replayed
    assert got == _alone([member, base], tmp_path / "cache-alone")


def test_a_rows_digest_is_read_from_each_packed_form() -> None:
    """`_file_digest` reads what `unpack` gives, from a small row, a large one (ids past
    16 bits) and a record kept as a dict; a folder, a symlink and a hard link have none."""
    from harness.filetable import Names, pack

    digest = "ab" * 32
    names = Names()
    for uid in (0, 70000):
        record = {"type": "file", "mode": "0644", "uid": uid, "gid": 0, "size": 5,
                  "sha256": digest}
        assert subtrees._file_digest(pack(record, names)) == digest
    odd = {"type": "file", "mode": "0644", "uid": 0, "gid": 0, "size": 5, "sha256": digest,
           "extra": 1}
    assert type(pack(odd, names)) is dict and subtrees._file_digest(pack(odd, names)) == digest
    for other in ({"type": "dir", "mode": "0755", "uid": 0, "gid": 0},
                  {"type": "symlink", "mode": "0777", "uid": 0, "gid": 0, "target": "x"},
                  {"type": "file", "mode": "0644", "uid": 0, "gid": 0, "size": 5,
                   "sha256": digest, "link": "/a"}):
        assert subtrees._file_digest(pack(other, names)) is None


def test_a_child_taking_its_last_snapshot_replays_but_notes_nothing(
        tmp_path: Path, layers: tuple[Path, Path], replayed: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    base, member = layers
    cache = tmp_path / "cache"
    _walk([base], cache)
    kept = list(subtrees._kept)
    monkeypatch.setattr(subtrees, "_noting", [True])
    subtrees.last_walk()
    got = _walk([member, base], cache)
    assert replayed == ["usr/share"] and subtrees._kept == kept
    assert got == _alone([member, base], tmp_path / "cache-alone")


def test_a_name_that_is_not_utf8_is_walked_as_before(
        tmp_path: Path, layers: tuple[Path, Path], replayed: list[str]) -> None:
    """An image chooses its names: a file the layer cache cannot key (not UTF-8) keeps its
    folder from being replayed; its neighbours' folders still are."""
    base, member = layers
    with open(os.path.join(os.fsencode(base / "usr/share/doc/a"), b"bad\xff"), "wb") as f:
        f.write(b"x" * 10)
    cache = tmp_path / "cache"
    _walk([base], cache)
    got = _walk([member, base], cache)
    assert "usr/share/doc/b" in replayed and "usr/share/doc/a" not in replayed
    assert "usr/share" not in replayed
    assert got == _alone([member, base], tmp_path / "cache-alone")
    assert "/usr/share/doc/a/bad\udcff" in got[0]


class CountingTaker(Taker):
    """A `Taker` that keeps the count the walk reads (`ContentCollector.noticed`)."""

    def __init__(self) -> None:
        super().__init__()
        self.noticed = 0

    def wants(self, path: str, head: bytes, size: int) -> bool:
        wanted = super().wants(path, head, size)
        self.noticed += wanted
        return wanted


class Asked:
    """Records every file it is asked of, and takes notice of none (a test's spy: a real
    collector counts what its `wants` keeps)."""

    def __init__(self) -> None:
        self.noticed = 0
        self.asked: list[str] = []

    def wants(self, path: str, head: bytes, size: int) -> bool:
        self.asked.append(path)
        return False

    def take(self, path: str, data: bytes) -> None:
        raise AssertionError(f"{path} was not wanted")


def _counted_walk(folders: list[Path], cache: Path) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """`_walk` with collectors that all keep their counts: the files, what they were shown
    and handed, and what the spy was asked of."""
    taker, secrets, asked = CountingTaker(), SecretsCollector(), Asked()
    elf = ElfCollector(in_place=False)
    with layercache.using(cache) as known:
        files = walk(LayerDirsReader(folders, "test"), [taker, secrets, elf, asked])
        objects = elf.result(files, {}).get("objects", {})
        known.learn(files, objects)
        known.save()
    shown = {"taken": taker.taken, "secrets": secrets.result(), "objects": objects}
    return dict(files.items()), shown, asked.asked


def test_a_replay_shows_only_the_files_a_collector_took_notice_of(
        tmp_path: Path, layers: tuple[Path, Path], replayed: list[str]) -> None:
    """A file no collector took notice of in the first walk moves none in a replay either:
    it is shown to none; the others (a copyright file taken, an ELF object, a private key
    found) are shown as a walk shows them, and the result is the walk's."""
    base, member = layers
    cache = tmp_path / "cache"
    _counted_walk([base], cache)
    files, shown, asked = _counted_walk([member, base], cache)
    assert replayed == ["usr/share"]
    _forget()
    alone_files, alone_shown, alone_asked = _counted_walk([member, base], tmp_path / "alone")
    assert (files, shown) == (alone_files, alone_shown)
    assert "/usr/share/zoneinfo/UTC" in alone_asked and "/usr/share/zoneinfo/UTC" not in asked
    assert "/usr/share/doc/a/copyright" in asked and "/usr/share/empty" not in asked
    assert shown["taken"] == {"/usr/share/doc/a/copyright": b"License: MIT\n",
                              "/usr/share/doc/b/copyright": b"License: GPL-2\n"}


def test_a_quiet_file_is_replayed_by_its_identity_and_a_changed_one_is_not(
        tmp_path: Path, layers: tuple[Path, Path], replayed: list[str]) -> None:
    """A quiet file needs no layer cache entry (its identity vouches for its row, as it
    vouches for an entry): the cache lost, the folders of quiet files are still replayed;
    one rewritten is walked again."""
    base, member = layers
    cache = tmp_path / "cache"
    _counted_walk([base], cache)
    shutil.rmtree(cache)
    (base / "usr/share/zoneinfo/Europe/Paris").write_bytes(b"TZif3" + bytes(300))
    files, _, _ = _counted_walk([member, base], cache)
    assert "usr/share/zoneinfo/Europe" not in replayed
    assert "usr/share/doc/a" not in replayed  # a copyright file to show: needs its entry
    _forget()
    assert files == _counted_walk([member, base], tmp_path / "alone")[0]
    assert files["/usr/share/zoneinfo/Europe/Paris"]["size"] == 305


def test_a_collector_without_a_count_makes_no_file_quiet(
        tmp_path: Path, layers: tuple[Path, Path], replayed: list[str]) -> None:
    base, _ = layers
    with layercache.using(tmp_path / "cache"):
        walk(LayerDirsReader([base], "test"), [Taker(), SecretsCollector()])
    assert subtrees.QUIET not in subtrees._kept[-1][0].alone
    with layercache.using(tmp_path / "cache2"):
        walk(LayerDirsReader([base], "test"),
             [CountingTaker(), SecretsCollector(), ElfCollector(in_place=False)])
    walked = subtrees._kept[-1][0]
    quiet = {path for path, q in zip(walked.paths, walked.alone) if q == subtrees.QUIET}
    assert "/usr/share/zoneinfo/UTC" in quiet and "/usr/share/empty" in quiet
    assert not quiet & {"/usr/share/doc/a/copyright", "/etc/key.pem", "/usr/lib/libold.so"}


@pytest.fixture
def reused(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The members whose rows a walk took from an earlier walk's."""
    paths: list[str] = []
    reuse = subtrees.Recorder.reuse

    def counting(self: subtrees.Recorder, path: str, files: Any) -> bool:
        done = reuse(self, path, files)
        if done:
            paths.append(path)
        return done
    monkeypatch.setattr(subtrees.Recorder, "reuse", counting)
    return paths


def test_a_folder_a_member_adds_to_reuses_the_rows_of_the_bases_quiet_members(
        tmp_path: Path, layers: tuple[Path, Path], replayed: list[str],
        reused: list[str]) -> None:
    """/usr/share/zoneinfo holds a member's copy (a file added): it is listed, and its
    quiet files and symlinks the base holds take the base walk's rows; its folders are
    replayed; a file rewritten since, and a hard link group's members, are read."""
    base, member = layers
    (member / "usr/share/zoneinfo").mkdir(parents=True)
    (member / "usr/share/zoneinfo/Local").write_bytes(b"TZif2" + bytes(10))
    os.link(base / "usr/share/zoneinfo/UTC", base / "usr/share/zoneinfo/UCT")
    (base / "usr/share/zoneinfo/GMT").write_bytes(b"TZif2" + bytes(50))
    cache = tmp_path / "cache"
    _counted_walk([base], cache)
    (base / "usr/share/zoneinfo/GMT").write_bytes(b"TZif2" + bytes(60))  # rewritten
    files, shown, asked = _counted_walk([member, base], cache)
    assert reused == ["/usr/share/empty", "/usr/share/zoneinfo/Zulu"]
    assert "usr/share/zoneinfo/Europe" in replayed and "usr/share/doc" in replayed
    assert {"/usr/share/zoneinfo/GMT", "/usr/share/zoneinfo/UCT",
            "/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/Local"} <= set(asked)
    _forget()
    assert (files, shown) == _counted_walk([member, base], tmp_path / "alone")[:2]
    assert files["/usr/share/zoneinfo/GMT"]["size"] == 65


def test_a_quiet_file_in_a_listed_folder_is_reused_unless_moved(
        tmp_path: Path, layers: tuple[Path, Path], reused: list[str]) -> None:
    """The rows taken are those of the same host path with the same identity: a file the
    member's layer replaces, or one changed in place, is read."""
    base, member = layers
    for name in ("a", "b", "c"):
        (base / "usr/lib" / f"{name}.txt").write_bytes(name.encode() * 10)
    (member / "usr/lib/b.txt").write_bytes(b"member's")
    cache = tmp_path / "cache"
    _counted_walk([base], cache)
    os.chmod(base / "usr/lib/c.txt", 0o600)
    files, _, _ = _counted_walk([member, base], cache)
    assert reused == ["/usr/lib/a.txt"]
    assert files["/usr/lib/b.txt"]["size"] == 8 and files["/usr/lib/c.txt"]["mode"] == "0600"
    _forget()
    assert files == _counted_walk([member, base], tmp_path / "alone")[0]
