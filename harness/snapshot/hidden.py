"""Files a later layer deleted but the image still ships (`hidden-in-lower-layer`).

A file added in one layer and removed in a later one (a whiteout, an opaque folder, or a
folder replaced by a non-folder) is invisible in a container, yet `docker save` and every
registry hand it out: attackers hide tools there and careless builds leak secrets. The readers
that see each layer (`harness.source.layermerge` for daemonless images, `harness.source.layerdirs` for an
engine's layer folders read in place) hand each such regular file to `HiddenCollector.add`
as they pass it; an export stream shows the merged view only, so there the check is unknown.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from harness.snapshot.secrets import MAX_SCAN, SecretsCollector
from harness.snapshot.walk import WANTS_HEAD

ELF_MAGIC = b"\x7fELF"
SETID = 0o6000


class HiddenCollector:
    """Collects the deleted-but-shipped regular files of an image's layers."""

    def __init__(self) -> None:
        #: path -> {"layers": [n, ...] (1 = bottom), "size": bytes, "mode": "4755",
        #: "found": ["secret (private-key)", "setuid/setgid", "ELF"] when any}
        self.found: dict[str, dict[str, Any]] = {}
        self._secrets = SecretsCollector()

    def add(self, path: str, layer: int, mode: int, size: int,
            chunks: Iterator[memoryview]) -> None:
        """One hidden regular file: its first bytes decide ELF and key headers, a token file
        (at most `MAX_SCAN` bytes) is read whole for the secret detector."""
        head, parts, whole = b"", [], False
        for view in chunks:
            if not head:
                head = bytes(view[:WANTS_HEAD])
                whole = size <= MAX_SCAN and self._secrets.wants(path, head, size)
            if not whole:
                break
            parts.append(bytes(view))
        if whole:
            self._secrets.take(path, b"".join(parts))
        why = []
        secret = self._secrets.found.pop(path, None)
        if secret:
            why.append(f"secret ({secret})")
        if mode & SETID:
            why.append("setuid/setgid")
        if head.startswith(ELF_MAGIC):
            why.append("ELF")
        record = self.found.setdefault(path, {"layers": [], "size": 0,
                                              "mode": format(mode & 0o7777, "04o")})
        record["layers"].append(layer)
        record["size"] += size
        if why:
            record["found"] = sorted(set(record.get("found", [])) | set(why))

    def result(self) -> dict[str, dict[str, Any]]:
        """Path -> record, sorted by path."""
        return {p: self.found[p] for p in sorted(self.found)}
