"""Which runtime and model file a command uses: an explicit backend wins, else the file's suffix decides; a
checkpoint given to a runtime that opens ONNX only is exported once (cached) and the ONNX file is used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unetpp.errors import InputError, expected_found
from unetpp.model.resolve import is_checkpoint, model_source, onnx_for_checkpoint
from unetpp.runtimes.base import Runtime
from unetpp.runtimes.registry import backend_for, runtime_class

DEFAULT_BACKEND = "onnxruntime"  # a checkpoint with no --backend runs through ONNX Runtime (the fast CPU path)


def resolve_model(model: str | Path | None, backend: str | None = None,
                  checkpoint_backend: str = DEFAULT_BACKEND, depth: int | None = None) -> tuple[str, Path]:
    """(backend, model file). No model: the shipped guide checkpoint; `guide`/`instance`: a shipped model. A
    checkpoint without --backend goes to `checkpoint_backend`; a checkpoint for a runtime that cannot open it is
    exported to ONNX (cached), pruned to `depth` when given (a checkpoint only: another file's graph is fixed)."""
    path = model_source(model)
    if not path.exists():
        raise InputError(expected_found("--model", "an existing model file", f"nothing at {path}"))
    if path.is_dir():
        raise InputError(expected_found("--model", "a model file", f"a folder at {path}"))
    if backend is None:
        backend = checkpoint_backend if is_checkpoint(path) else backend_for(path)
    cls = runtime_class(backend)
    suffix = path.suffix.lower()
    if depth is not None and not is_checkpoint(path):
        raise InputError(expected_found("--depth", "a checkpoint (.pt/.pth) to prune", f"{path.name}, whose graph "
                                        "is fixed", "Export or compile the checkpoint with --depth instead"))
    if suffix in cls.suffixes:
        return backend, path
    if is_checkpoint(path) and ".onnx" in cls.suffixes:
        return backend, onnx_for_checkpoint(path, depth)
    raise InputError(expected_found(f"--model for backend {backend}", "a file ending in " + ", ".join(cls.suffixes),
                                    path.name))


def open_runtime(model: str | Path | None = None, backend: str | None = None, threads: int | None = None,
                 device: str | None = None, dtype: str | None = None, depth: int | None = None,
                 **options: Any) -> Runtime:
    """A runtime (not yet activated) for a model file and the common flags; `options` are the backend's own;
    `depth` prunes a checkpoint's network to X0,depth (model/depth.py)."""
    backend, path = resolve_model(model, backend, depth=depth)
    cls = runtime_class(backend)
    if depth is not None and "depth" in cls.OPTIONS:  # a runtime that runs the checkpoint itself (torch)
        options = {**options, "depth": depth}
    return cls(path, **{**cls.map_flags(threads, device, dtype), **options})
