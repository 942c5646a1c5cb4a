"""What a source knows about an image apart from its filesystem (the snapshot records it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ImageInfo:
    """What the engine knows about an image, apart from its filesystem."""

    ref: str
    image_id: str
    arch: str
    os: str
    variant: str | None
    config: dict[str, Any]
    repo_digests: list[str] = field(default_factory=list)
    size: int = 0
    #: what names the image's content besides its id, when the id alone does not: a
    #: daemonless image's config names its layers by diff id, but those are checked only as
    #: the layers are read, so its layer blobs' digest goes here. Empty for an engine's
    #: image (the engine checked its layers when it stored them).
    content: str = ""

    @property
    def key(self) -> str:
        """What every cache (snapshot, verdict, in-process memo) keys this image on."""
        return f"{self.image_id}+{self.content}" if self.content else self.image_id
