"""Model files for runtimes: the shipped checkpoint, and a checkpoint's ONNX export cached by its SHA-256."""

from __future__ import annotations

import json
import os
from pathlib import Path

CHECKPOINT_SUFFIXES = (".pt", ".pth")


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
    from unetpp.model.export import export_onnx, parity_path

    sha = file_sha256(checkpoint)
    out = cache_dir() / "onnx" / f"{checkpoint.stem}-{sha[:16]}.onnx"
    report = parity_path(out)
    if out.is_file() and report.is_file():
        try:
            rep = json.loads(report.read_text())
            if rep.get("checkpoint_sha256") == sha and rep.get("metadata"):  # older caches lack the metadata
                return out
        except (OSError, ValueError):
            pass
    export_onnx(checkpoint, out)
    return out
