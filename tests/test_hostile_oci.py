"""An OCI layout is image content: its blobs must be regular files inside it. A blob
symlinked to a host tar is not gated as if it were the image, a blob linked to a host file
does not put that file's bytes into the error, a FIFO blob does not hang the gate, and a
symlinked blob folder does not lead out of the layout."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from harness.errors import SourceError
from harness.snapshot import take_snapshot
from harness.source.sources import open_source
from testimages import layered

REPO = Path(__file__).resolve().parent.parent


def _layer(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _layout(tmp_path: Path, layer: bytes) -> tuple[Path, Path]:
    """An OCI layout of one uncompressed layer; returns it and the layer blob's path."""
    archive = layered.docker_archive(tmp_path / "a.tar", [layer], "x/oci:1")
    layout = tmp_path / "oci"
    desc = layered.oci_image(layout, archive, compression="none")
    layered.write_index(layout, [desc])
    manifest = json.loads((layout / "blobs/sha256" / desc["digest"][7:]).read_bytes())
    return layout, layout / "blobs/sha256" / manifest["layers"][0]["digest"][7:]


def _snapshot(ref: str) -> None:
    source = open_source(ref, lambda: None)  # type: ignore[arg-type,return-value]
    info = source.inspect()
    with source.rootfs("oci-test") as stream:
        take_snapshot(info, stream)


def test_blob_linked_to_a_host_tar(tmp_path: Path) -> None:
    host = _layer({"etc/passwd": b"root:x:0:0::/root:/bin/sh\n", "etc/from-the-host": b"x"})
    host_tar = tmp_path / "host-owned.tar"
    host_tar.write_bytes(host)
    layout, blob = _layout(tmp_path, host)  # the config's diff id is the host tar's
    blob.unlink()
    os.symlink(host_tar, blob)
    with pytest.raises(SourceError, match="is a symlink; blobs must be regular files"):
        _snapshot(f"oci:{layout}")


def test_blob_linked_to_a_host_file_quotes_nothing(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"Zq" * 4096)
    for target_layer in (_layer({"a": b"a"}),):
        layout, blob = _layout(tmp_path, target_layer)
        blob.write_bytes(secret.read_bytes())  # a regular blob of garbage: the error quotes none
        with pytest.raises(SourceError) as raised:
            _snapshot(f"oci:{layout}")
        assert "ZqZq" not in str(raised.value) and "qZqZ" not in str(raised.value), raised.value
        blob.unlink()
        os.symlink(secret, blob)
        with pytest.raises(SourceError) as raised:
            _snapshot(f"oci:{layout}")
        assert "Zq" not in str(raised.value).replace(str(tmp_path), ""), raised.value


def test_fifo_blob_does_not_hang(tmp_path: Path) -> None:
    layout, blob = _layout(tmp_path, _layer({"a": b"a"}))
    blob.unlink()
    os.mkfifo(blob)
    code = ("import sys\nfrom harness.errors import SourceError\n"
            "from tests.test_hostile_oci import _snapshot\n"
            "try:\n    _snapshot(sys.argv[1])\nexcept SourceError as exc:\n    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code, f"oci:{layout}"], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "is not a regular file" in proc.stdout, proc.stdout + proc.stderr


def test_symlinked_blob_folder(tmp_path: Path) -> None:
    layout, blob = _layout(tmp_path, _layer({"a": b"a"}))
    outside = tmp_path / "outside"
    (layout / "blobs/sha256").rename(outside)
    os.symlink(outside, layout / "blobs/sha256")
    with pytest.raises(SourceError, match="outside the layout"):
        _snapshot(f"oci:{layout}")


def test_escaping_layer_name_in_a_docker_archive_folder(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    layer = _layer({"a": b"a"})
    (tmp_path / "outside.tar").write_bytes(layer)
    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    (folder / "c.json").write_bytes(layered.image_config([diff]))
    (folder / "manifest.json").write_text(json.dumps([{"Config": "c.json",
                                                       "Layers": ["../outside.tar"]}]))
    with pytest.raises(SourceError, match="points outside"):
        _snapshot(f"docker-archive:{folder}")
