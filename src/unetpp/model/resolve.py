"""Model files for runtimes: the shipped checkpoint, and a checkpoint's ONNX export cached by its SHA-256."""

from __future__ import annotations

import json
import os
from pathlib import Path

from unetpp.errors import InputError

CHECKPOINT_SUFFIXES = (".pt", ".pth")
WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
# The models packaged with unetpp, by the name `--model` accepts: the guide's 1-output model (what the guide
# reproduces: `run`, `infer`, `bench`, ...) and the 2-output instance model (foreground + border; `predict`,
# `serve` and `unetpp.load()` use it by default).
SHIPPED_MODELS = {"guide": WEIGHTS / "nested_unet_dsb2018_96.pt", "instance": WEIGHTS / "nested_unet_instance.pt"}
SHIPPED = SHIPPED_MODELS["guide"]
INSTANCE_MODEL = "instance"


def shipped_checkpoint(name: str = "guide") -> Path:
    """A checkpoint packaged with unetpp (`guide` or `instance`); a clear error where this copy has none."""
    path = SHIPPED_MODELS[name]
    if not path.is_file():
        raise InputError(
            f"the shipped {name} model is missing: expected {path}, found nothing. "
            "Pass a checkpoint path (an upstream model.pth or a unetpp .pt)."
        )
    return path


def model_source(model: str | Path | None) -> Path:
    """The file behind `--model`: a shipped model's name (guide, instance), a path, or None (the guide model)."""
    if model is None or str(model) == "":
        return shipped_checkpoint("guide")
    if isinstance(model, str) and model in SHIPPED_MODELS:
        return shipped_checkpoint(model)
    return Path(model)


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
