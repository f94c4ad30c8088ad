"""Write a bioimage.io model package (format 0.5) for a 2-D image -> per-pixel map model, as one zip, atomically.

`write_package(out, content)` is the lower-level writer: it takes ready ONNX (and optionally TorchScript) weights,
test tensors, a README and metadata (`PackageContent`) and lays out `rdf.yaml` plus the files it names, with
their SHA-256. It knows nothing about NestedUNet (see `unetpp.zoo.export` for that).
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from unetpp.atomic import atomic_path, file_sha256
from unetpp.errors import InputError, expected_found

FORMAT_VERSION = "0.5.4"
RDF_NAME = "rdf.yaml"  # the name bioimageio.spec writes; older tools (QuPath) look for it
ONNX_NAME = "weights.onnx"
TORCHSCRIPT_NAME = "weights_torchscript.pt"
TEST_INPUT_NAME = "test_input.npy"
TEST_OUTPUT_NAME = "test_output.npy"
README_NAME = "README.md"
COVER_NAME = "cover.png"


@dataclass(frozen=True)
class TensorSpec:
    """One tensor laid out (batch, channel, y, x) with a fixed spatial size."""

    id: str
    description: str
    channels: tuple[str, ...]
    size: tuple[int, int]  # (H, W)
    dtype: str = "float32"
    value_range: tuple[float | None, float | None] | None = None
    processing: tuple[dict[str, Any], ...] = ()

    def axes(self) -> list[dict[str, Any]]:
        return [
            {"type": "batch"},
            {"type": "channel", "channel_names": list(self.channels)},
            {"type": "space", "id": "y", "size": int(self.size[0])},
            {"type": "space", "id": "x", "size": int(self.size[1])},
        ]


@dataclass
class PackageContent:
    """Everything a package holds; arrays are whole test tensors shaped (1, C, H, W)."""

    name: str
    description: str
    input: TensorSpec
    output: TensorSpec
    onnx: Path
    opset: int
    test_input: np.ndarray
    test_output: np.ndarray
    readme: str
    torchscript: Path | None = None
    pytorch_version: str | None = None
    cover_png: bytes | None = None
    # optional human-viewable samples (any format imageio reads, not .npy): {"input"|"output": (file name, bytes)}
    samples: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    authors: list[dict[str, str]] = field(default_factory=lambda: [{"name": "unetpp developers"}])
    cite: list[dict[str, str]] = field(default_factory=list)
    license: str = "MIT"
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    root_weights: str = "torchscript"  # the entry without `parent`; the other one points at it


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _check(content: PackageContent) -> None:
    for what, arr, spec in (("test input", content.test_input, content.input),
                            ("test output", content.test_output, content.output)):
        want = (1, len(spec.channels), *spec.size)
        if tuple(arr.shape) != want:
            raise InputError(expected_found(what, f"shape {want}", f"shape {tuple(arr.shape)}"))
        if str(arr.dtype) != spec.dtype:
            raise InputError(expected_found(f"{what} dtype", spec.dtype, arr.dtype))
    for what, path in (("ONNX weights", content.onnx), ("TorchScript weights", content.torchscript)):
        if path is not None and not Path(path).is_file():
            raise InputError(expected_found(what, "an existing file", f"nothing at {path}"))
    if content.torchscript is not None and not content.pytorch_version:
        raise InputError(expected_found("pytorch_version", "the torch version that wrote the TorchScript", "none"))
    if content.root_weights not in ("onnx", "torchscript") or (
            content.root_weights == "torchscript" and content.torchscript is None):
        raise InputError(expected_found("root weights entry", "onnx, or torchscript when given", content.root_weights))


def _tensor_rdf(spec: TensorSpec, test_sha: str, test_name: str, step_key: str,
                sample: tuple[str, str] | None) -> dict[str, Any]:
    data: dict[str, Any] = {"type": spec.dtype}
    if spec.value_range is not None:
        data["range"] = list(spec.value_range)
    out: dict[str, Any] = {
        "id": spec.id,
        "description": spec.description,
        "axes": spec.axes(),
        "test_tensor": {"source": test_name, "sha256": test_sha},
        "data": data,
    }
    if sample is not None:
        out["sample_tensor"] = {"source": sample[0], "sha256": sample[1]}
    if spec.processing:
        out[step_key] = [dict(s) for s in spec.processing]
    return out


def _sample(content: PackageContent, which: str, shas: dict[str, str]) -> tuple[str, str] | None:
    name = content.samples.get(which, (None, b""))[0]
    return None if name is None else (name, shas[name])


def build_rdf(content: PackageContent, shas: dict[str, str]) -> dict[str, Any]:
    """The `rdf.yaml` mapping; `shas` maps each packaged file name to its SHA-256."""
    weights: dict[str, Any] = {}
    onnx: dict[str, Any] = {"source": ONNX_NAME, "sha256": shas[ONNX_NAME], "opset_version": int(content.opset)}
    if content.torchscript is not None:
        ts: dict[str, Any] = {"source": TORCHSCRIPT_NAME, "sha256": shas[TORCHSCRIPT_NAME],
                              "pytorch_version": str(content.pytorch_version).split("+")[0]}
        child, parent = (onnx, "torchscript") if content.root_weights == "torchscript" else (ts, "onnx")
        child["parent"] = parent
        child["comment"] = f"Exported by unetpp from the same PyTorch model as the {parent} weights."
        weights["torchscript"] = ts
    weights["onnx"] = onnx
    rdf: dict[str, Any] = {
        "type": "model",
        "format_version": FORMAT_VERSION,
        "name": content.name,
        "description": content.description,
        "authors": content.authors,
        "cite": content.cite,
        "license": content.license,
        "tags": content.tags,
        "documentation": {"source": README_NAME, "sha256": shas[README_NAME]},
        "timestamp": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "inputs": [_tensor_rdf(content.input, shas[TEST_INPUT_NAME], TEST_INPUT_NAME, "preprocessing",
                               _sample(content, "input", shas))],
        "outputs": [_tensor_rdf(content.output, shas[TEST_OUTPUT_NAME], TEST_OUTPUT_NAME, "postprocessing",
                                _sample(content, "output", shas))],
        "weights": weights,
    }
    if content.cover_png is not None:
        rdf["covers"] = [{"source": COVER_NAME, "sha256": shas[COVER_NAME]}]
    if content.config:
        rdf["config"] = content.config
    return rdf


def package_files(content: PackageContent) -> dict[str, bytes]:
    """Every file of the package by name, `rdf.yaml` included."""
    _check(content)
    files: dict[str, bytes] = {
        ONNX_NAME: Path(content.onnx).read_bytes(),
        TEST_INPUT_NAME: _npy_bytes(content.test_input),
        TEST_OUTPUT_NAME: _npy_bytes(content.test_output),
        README_NAME: content.readme.encode(),
    }
    if content.torchscript is not None:
        files[TORCHSCRIPT_NAME] = Path(content.torchscript).read_bytes()
    if content.cover_png is not None:
        files[COVER_NAME] = content.cover_png
    for which, (name, data) in content.samples.items():
        if which not in ("input", "output") or name in files or name.endswith(".npy"):
            raise InputError(expected_found(f"sample {which!r}", "input or output, a new non-.npy file name",
                                            f"{which!r}: {name!r}"))
        files[name] = data
    rdf = build_rdf(content, {name: _sha(data) for name, data in files.items()})
    files[RDF_NAME] = ("# bioimage.io model description, written by unetpp\n"
                       + yaml.safe_dump(rdf, sort_keys=False, allow_unicode=True)).encode()
    return files


def write_package(out: str | Path, content: PackageContent) -> Path:
    """Write the package as one zip (the RDF first), atomically: a reader never sees a half-written file."""
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise InputError(expected_found("package file name", "a name ending in .zip", out.name))
    files = package_files(content)
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(RDF_NAME, files.pop(RDF_NAME))
        for name, data in files.items():
            zf.writestr(name, data)
    return out


def package_sha256(path: str | Path) -> str:
    """SHA-256 of a written package (for reports)."""
    return file_sha256(path)
