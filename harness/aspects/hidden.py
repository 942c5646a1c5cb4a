"""hidden-in-lower-layer, a kind of two aspects: each file a later layer deleted that the
image still ships is a security finding, and the bytes they cost are a size one. The
security and metadata aspects list the one `HIDDEN` kind."""

from __future__ import annotations

from harness.aspects.aspect import kind
from harness.diff.change import Change
from harness.snapshot import Snapshot

HIDDEN = kind("hidden-in-lower-layer", "security size", "info",
              "a deleted secret, privileged program or binary still ships in the image's layers "
              "(docker save, registries) for anyone to extract", True)

#: the subject of the one note an image read as a merged export stream gets
HIDDEN_UNKNOWN = "image"


def hidden_changes(snap: Snapshot) -> list[Change]:
    """hidden-in-lower-layer: each regular file a later layer deleted that the image still
    ships; break when it holds a secret, is setuid/setgid or ELF, else info. An image read
    as one merged stream gets one info note that the check needs its layers."""
    if snap.hidden is None:
        return [Change("security", "hidden-in-lower-layer", HIDDEN_UNKNOWN,
                       after="not checked: the image was read as one merged export stream; "
                             "the check needs its layers (--compat-read=layers on a local "
                             "engine, or a daemonless source)",
                       detail={"verdict": "info"})]
    return [Change("security", "hidden-in-lower-layer", path, after=dict(record),
                   detail={"verdict": "break" if record.get("found") else "info"})
            for path, record in snap.hidden.items()]


def hidden_size(snap: Snapshot) -> list[Change]:
    """The bytes deleted files still cost the image (size aspect, info)."""
    if not snap.hidden:
        return []
    total = sum(int(r.get("size") or 0) for r in snap.hidden.values())
    return [Change("size", "hidden-in-lower-layer", "image",
                   after={"files": len(snap.hidden), "bytes": total}, detail={"verdict": "info"})]
