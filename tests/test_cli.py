"""`python -m harness` shares the gate's code paths: same kinds as the pytest suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # this checkout's harness, whatever an editable install elsewhere points at
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env=env)


def test_snapshot_diff_report(tiny_images, tmp_path: Path) -> None:
    for name in ("tiny-base", "tiny-setuid"):
        done = _cli("snapshot", tiny_images[name], "-o", str(tmp_path / f"{name}.json"), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    diff = _cli("diff", str(tmp_path / "tiny-base.json"), str(tmp_path / "tiny-setuid.json"),
                "--name", "t", "--report", str(tmp_path / "r.json"), cwd=tmp_path)
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert "BREAK setuid-added /usr/bin/hello-demo" in diff.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["images"][0]["verdict"] == "fail"
    md = _cli("report", str(tmp_path / "r.json"), "-o", str(tmp_path / "r.md"), cwd=tmp_path)
    assert md.returncode == 0 and "setuid-added" in (tmp_path / "r.md").read_text()


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "junk.json").write_text("{}")
    done = _cli("diff", str(tmp_path / "junk.json"), str(tmp_path / "junk.json"), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def _damaged(root: Path) -> None:
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_bytes(b"\x00\x01garbage without a colon\n")
    (root / "etc").mkdir()
    (root / "etc/hostname-of-image").write_text("damaged\n")


def test_snapshot_takes_every_reference_the_plugin_takes(tiny_images, tmp_path: Path) -> None:
    """docker-archive:, oci:, oci-archive: give the engine's snapshot (same packages, files)."""
    from testimages import layered

    tag = tiny_images["tiny-base"]
    saved = layered.save(tag, tmp_path / "saved.tar")
    layout = layered.write_index(tmp_path / "oci", [layered.oci_image(tmp_path / "oci", saved)],
                                 ref_name="latest")
    refs = {"engine": tag, "docker-archive": f"docker-archive:{saved}", "oci": f"oci:{layout}",
            "oci-archive": f"oci-archive:{layered.tar_folder(layout, tmp_path / 'oci.tar')}"}
    snaps = {}
    for kind, ref in refs.items():
        out = tmp_path / f"{kind}.json"
        done = _cli("snapshot", ref, "-o", str(out), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        snaps[kind] = json.loads(out.read_text())
    for kind, snap in snaps.items():
        assert snap["files"] == snaps["engine"]["files"], kind
        assert snap["packages"] == snaps["engine"]["packages"], kind


def test_unreadable_database_exits_non_zero_naming_the_file(docker_engine, tmp_path: Path) -> None:
    """A damaged dpkg status: the snapshot is written, the exit is 3, stderr names the file."""
    import testimages
    from testimages import Recipe, layered

    tag = testimages.build(Recipe("damaged-dpkg", _damaged))
    saved = layered.save(tag, tmp_path / "saved.tar")
    for ref in (tag, f"docker-archive:{saved}"):
        done = _cli("snapshot", ref, "-o", str(tmp_path / "s.json"), cwd=tmp_path)
        assert done.returncode == 3, done.stdout + done.stderr
        assert "/var/lib/dpkg/status" in done.stderr and "cannot be read" in done.stderr
        assert (tmp_path / "s.json").is_file()


def _snapshot(path: Path, size: int, errors: dict[str, list[str]]) -> None:
    from harness.snapshot import Snapshot

    image = {"ref": "demo:1", "image_id": "sha256:" + "ab" * 32, "arch": "x86_64", "os": "linux",
             "content_size": size}
    Snapshot(image=image, metadata={"User": "app"}, files={}, packages={}, hidden={},
             errors=errors).dump(path)


def test_diff_judges_as_the_plugin_does_size_and_aspect_errors(tmp_path: Path) -> None:
    """The CLI's diff goes through the plugin's judging path (harness.judging.judged_changes):
    the size change and an aspect that cannot be judged are in its report too."""
    _snapshot(tmp_path / "old.json", 1000, {})
    _snapshot(tmp_path / "new.json", 2000, {"files": ["/big: past the cap of 1 KiB"]})
    (tmp_path / "pyproject.toml").write_text("[tool.harness.size]\nreview_percent = 50\n")
    done = _cli("diff", "old.json", "new.json", "--report", "r.json", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    image = json.loads((tmp_path / "r.json").read_text())["images"][0]
    assert image["verdict"] == "error"
    assert image["errors"] == ["files: /big: past the cap of 1 KiB"]
    size = [c for c in image["changes"] if c["kind"] == "size-increased"]
    assert [(c["aspect"], c["subject"], c["verdict"]) for c in size] == [("size", "image", "review")]
