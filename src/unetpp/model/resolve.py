"""Model files for runtimes: the shipped checkpoint, and a checkpoint's ONNX export cached by its SHA-256."""

from __future__ import annotations

import json
import os
from pathlib import Path

from unetpp.errors import InputError

CHECKPOINT_SUFFIXES = (".pt", ".pth")
SHIPPED = Path(__file__).resolve().parent.parent / "weights" / "nested_unet_dsb2018_96.pt"


def shipped_checkpoint() -> Path:
    """The checkpoint packaged with unetpp; a clear error where this copy has none."""
    if not SHIPPED.is_file():
        raise InputError(
            f"no checkpoint given and the shipped one is missing: expected {SHIPPED}, found nothing. "
            "Pass a checkpoint path (an upstream model.pth or a unetpp .pt)."
        )
    return SHIPPED


def cache_dir() -> Path:
    """$UNETPP_CACHE, else $XDG_CACHE_HOME/unetpp, else ~/.cache/unetpp."""
    env = os.environ.get("UNETPP_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unetpp"


def is_checkpoint(path: str | Path) -> bool:
    return Path(path).suffix.lower() in CHECKPOINT_SUFFIXES


def onnx_for_checkpoint(checkpoint: Path) -> Path:
    """The checkpoint's ONNX export (guide settings), cached by the checkpoint's SHA-256 (as `unetpp run` checks)."""
    from unetpp.atomic import file_sha256

    sha = file_sha256(checkpoint)
    out = cache_dir() / "onnx" / f"{checkpoint.stem}-{sha[:16]}.onnx"
    report = Path(str(out) + ".parity.json")  # model.export.parity_path, without importing torch
    if out.is_file() and report.is_file():
        try:
            rep = json.loads(report.read_text())
            if rep.get("checkpoint_sha256") == sha and rep.get("metadata"):  # older caches lack the metadata
                return out
        except (OSError, ValueError):
            pass
    from unetpp.model.export import export_onnx  # torch: only when the cache misses

    export_onnx(checkpoint, out)
    return out
