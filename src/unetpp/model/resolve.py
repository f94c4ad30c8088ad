"""Which model file and runtime `unetpp predict` uses: a checkpoint is exported to ONNX once, into a cache."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from unetpp.errors import InputError, expected_found
from unetpp.runtimes import Runtime, get_runtime

CHECKPOINT_SUFFIXES = (".pt", ".pth")
ONNX_BACKENDS = ("onnxruntime", "openvino")


def cache_dir() -> Path:
    """$UNETPP_CACHE, else $XDG_CACHE_HOME/unetpp, else ~/.cache/unetpp."""
    env = os.environ.get("UNETPP_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unetpp"


def onnx_for_checkpoint(checkpoint: Path) -> Path:
    """The checkpoint's ONNX export (guide settings), cached by the checkpoint's SHA-256 (as `unetpp run` checks)."""
    from unetpp.model.checkpoint import file_sha256
    from unetpp.model.export import export_onnx, parity_path

    sha = file_sha256(checkpoint)
    out = cache_dir() / "onnx" / f"{checkpoint.stem}-{sha[:16]}.onnx"
    report = parity_path(out)
    if out.is_file() and report.is_file():
        try:
            if json.loads(report.read_text()).get("checkpoint_sha256") == sha:
                return out
        except (OSError, ValueError):
            pass
    export_onnx(checkpoint, out)
    return out


def resolve_model(model: str | Path | None, backend: str | None) -> tuple[str, Path]:
    """(backend, model file): default the shipped checkpoint through onnxruntime; a .pt for an ONNX backend is
    exported (cached); an .onnx/.xml for the torch backend is an error."""
    from unetpp.infer.run import pick_backend
    from unetpp.model.checkpoint import shipped_checkpoint

    path = Path(model) if model else shipped_checkpoint()
    if not path.is_file():
        raise InputError(expected_found("--model", "an existing .pt/.pth, .onnx or .xml file", f"nothing at {path}"))
    if backend is None:
        backend = "onnxruntime" if path.suffix.lower() in CHECKPOINT_SUFFIXES else pick_backend(path, None)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES and backend in ONNX_BACKENDS:
        path = onnx_for_checkpoint(path)
    elif backend == "torch" and path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise InputError(expected_found("--model for the torch backend", "a .pt/.pth checkpoint", path.name))
    return backend, path


def open_runtime(model: str | Path | None = None, backend: str | None = None, **options: Any) -> Runtime:
    """A runtime (not yet activated) for predict; options go to the backend (threads, device ...)."""
    backend, path = resolve_model(model, backend)
    return get_runtime(backend, path, **{k: v for k, v in options.items() if v is not None})
