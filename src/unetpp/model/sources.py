"""Where model files are: the shipped checkpoints by name, a `--model` value as a file, and the model cache.

The bottom of the model room: checkpoint loading (torch) and export both read it, and resolve.py (which file
for which runtime, built and cached) sits above both, so no circle forms.
"""

from __future__ import annotations

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
    path = Path(model)
    if not os.path.lexists(path) and path.suffix == "" and len(path.parts) == 1:  # a name, mistyped or unknown
        from unetpp.errors import expected_found

        raise InputError(expected_found("--model", f"a shipped model ({', '.join(SHIPPED_MODELS)}) or an existing "
                                        "model file (.pt, .pth, .onnx, .xml, a zoo package .zip or rdf.yaml)",
                                        f"{str(model)!r}, neither a shipped model's name nor a file"))
    return path


def cache_dir() -> Path:
    """$UNETPP_CACHE, else $XDG_CACHE_HOME/unetpp, else ~/.cache/unetpp; where that cannot be written (a read-only
    home), a cache in the temporary folder, with a note on stderr (once)."""
    env = os.environ.get("UNETPP_CACHE")
    if env:
        wanted = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        wanted = Path(base) / "unetpp"
    if _writable(wanted):
        return wanted
    import sys
    import tempfile

    fallback = Path(tempfile.gettempdir()) / f"unetpp-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    if not _writable(fallback):
        raise InputError(f"model cache: expected a writable folder for converted models, found {wanted} and "
                         f"{fallback} both unwritable. Set UNETPP_CACHE to a writable folder")
    if str(wanted) not in _NOTED:
        _NOTED.add(str(wanted))
        print(f"unetpp: note: the model cache {wanted} cannot be written; using {fallback} instead (set "
              "UNETPP_CACHE to choose it)", file=sys.stderr)
    return fallback


def fast_build_dir(source: Path, depth: int | None, sha: str | None = None) -> Path:
    """The cache folder of a model's fast builds (compile/fast.py, compile/first_pass.py):
    <cache>/fast/<stem>-<sha16>[-d<depth>]."""
    from unetpp.atomic import file_sha256

    sha = sha or file_sha256(source)
    return cache_dir() / "fast" / f"{source.stem}-{sha[:16]}{'' if depth is None else f'-d{int(depth)}'}"


_NOTED: set[str] = set()


def _writable(folder: Path) -> bool:
    """The folder exists (or can be made) and a file can be created in it."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            return True
    except OSError:
        return False


def is_checkpoint(path: str | Path) -> bool:
    return Path(path).suffix.lower() in CHECKPOINT_SUFFIXES
