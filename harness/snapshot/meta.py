"""The metadata aspect: an image's config flattened to one record per key.

Keys are the contract's subjects (`User`, `Env.PATH`, `ExposedPorts.80/tcp`, `Labels.KEY`),
so a diff of two records is a diff of key sets.
"""

from __future__ import annotations

from typing import Any

from harness.rootfs.image import ImageInfo

SCALAR_KEYS = ("User", "Entrypoint", "Cmd", "WorkingDir", "StopSignal", "Healthcheck")


def flatten_config(info: ImageInfo) -> dict[str, Any]:
    """Image config -> {subject: value}."""
    cfg = info.config
    out: dict[str, Any] = {"Architecture": info.arch, "Os": info.os}
    if info.variant:
        out["Variant"] = info.variant
    for key in SCALAR_KEYS:
        value = cfg.get(key)
        if key in ("User", "WorkingDir"):
            value = value or ""
        if value is not None:
            out[key] = value
    for item in cfg.get("Env") or []:
        name, _, value = item.partition("=")
        out[f"Env.{name}"] = value
    for port in sorted(cfg.get("ExposedPorts") or {}):
        out[f"ExposedPorts.{port}"] = True
    for volume in sorted(cfg.get("Volumes") or {}):
        out[f"Volumes.{volume}"] = True
    for label, value in sorted((cfg.get("Labels") or {}).items()):
        out[f"Labels.{label}"] = value
    return out
