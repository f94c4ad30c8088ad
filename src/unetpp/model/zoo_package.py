"""Read a bioimage.io model package (format 0.5) whose model maps one 2-D image to a per-pixel probability.

`open_package(path)` takes a package `.zip` or its RDF (`rdf.yaml`, `bioimageio.yaml`, `*.bioimageio.yaml`),
checks that the model is one (batch, channel, y, x) input -> one (batch, channel, y, x) output with 1 or 2 output
channels ("foreground", optionally "border") and ONNX weights inside the package, extracts those weights, verifies
the SHA-256 the RDF declares and returns a `ZooModel`. Every refusal is an `InputError` saying what was expected and
what was found. Nothing is downloaded: a weights `source` that is a URL is refused.

`zoo_runtime_inputs(zoo_model)` returns what a runtime needs, as a plain dict:

- `onnx_path` (str), `input_name` / `output_name` (the package's tensor ids; the ONNX graph's own names may differ,
  a runtime should ask the session), `opset` (int or None);
- `input_shape`: (C, H, W) when the size is fixed, else None; then `min_shape` (C, H, W) and `step` (0, sy, sx):
  valid sizes are min + n * step;
- `channel_names` (input channels in the package's order) and `channel_order`: "RGB", "BGR", "GRAY" or None
  (unknown names); an image read by OpenCV is BGR and must be reordered to this before `preprocess`;
- `preprocess`: callable (H, W, C) image in the package's channel order -> float32 (C, H, W);
- `preprocessing`: the RDF steps (list of {"id", "kwargs"}); `linear`: where every step is a fixed per-channel
  affine map, {"gain", "offset", "mean", "std"} lists with x*gain + offset == (x - mean)/std, else None;
- `output_channels` (names), `outputs_are_logits`: True when the package's post-processing applies `sigmoid`
  (so the ONNX file returns logits and a runtime must apply the sigmoid), False when the ONNX output is the
  declared value itself; `postprocessing` (the RDF steps).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from unetpp.atomic import file_sha256
from unetpp.errors import InputError, expected_found
from unetpp.model.zoo_processing import check_steps, linear_parameters, make_preprocess

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
AXES = ("batch", "channel", "y", "x")
DEFAULT_AXIS_ID = {"batch": "batch", "channel": "channel", "space": "x", "time": "time", "index": "index"}
POST_STEPS = ("ensure_dtype", "sigmoid")
COLOUR_ORDERS = {("red", "green", "blue"): "RGB", ("r", "g", "b"): "RGB", ("blue", "green", "red"): "BGR",
                 ("b", "g", "r"): "BGR"}


@dataclass(frozen=True)
class ZooModel:
    """A checked package: where its ONNX weights are and how to feed and read the model."""

    source: Path
    root: Path  # the folder holding the package's files (extracted from a zip)
    rdf: dict[str, Any]
    name: str
    onnx_path: Path
    onnx_sha256: str
    opset: int | None
    input_id: str
    output_id: str
    input_channels: tuple[str, ...]
    input_dtype: str
    input_size: tuple[Any, Any]  # (y, x): an int or {"min", "step"}
    preprocessing: tuple[dict[str, Any], ...]
    output_channels: tuple[str, ...]
    postprocessing: tuple[dict[str, Any], ...]
    test_input: Path | None
    test_output: Path | None

    @property
    def input_axes(self) -> tuple[str, ...]:
        return AXES

    @property
    def outputs_are_logits(self) -> bool:
        return any(s.get("id") == "sigmoid" for s in self.postprocessing)

    @property
    def channel_order(self) -> str | None:
        names = tuple(n.lower() for n in self.input_channels)
        return "GRAY" if len(names) == 1 else COLOUR_ORDERS.get(names)

    @property
    def preprocess(self) -> Callable[[np.ndarray], np.ndarray]:
        return make_preprocess(self.preprocessing, len(self.input_channels), self.input_id)


def _fail(what: str, expected: object, found: object, fix: str = "") -> InputError:
    return InputError(expected_found(what, expected, found, fix))


def _read_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        rdf = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(where, "a YAML model description", f"unreadable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(rdf, dict):
        raise _fail(where, "a YAML mapping", type(rdf).__name__)
    return rdf


def _safe_member(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts


def _local_file(root: Path, entry: Any, what: str, zf: zipfile.ZipFile | None) -> Path:
    """The package file an RDF `source` names (extracted from the zip when there is one)."""
    src = entry.get("source") if isinstance(entry, dict) else entry
    if not isinstance(src, str) or not src:
        raise _fail(what, "a `source` file name", repr(src))
    if "://" in src:
        raise _fail(f"{what} source", "a file inside the package (unetpp downloads nothing)", f"the URL {src}")
    if not _safe_member(src):
        raise _fail(f"{what} source", "a relative path inside the package", repr(src))
    path = root / src
    if zf is not None:
        if src not in zf.namelist():
            raise _fail(what, f"{src} inside the package", "no such file in the zip")
        zf.extract(src, root)
    if not path.is_file():
        raise _fail(what, f"the file {src} beside the RDF", f"nothing at {path}")
    return path


def _check_sha(path: Path, entry: dict[str, Any], what: str) -> str:
    found = file_sha256(path)
    declared = entry.get("sha256")
    if declared and str(declared).lower() != found:
        raise _fail(f"{what} {path.name} SHA-256", f"{declared} (declared in the RDF)", f"{found} (the file)",
                    "The file was changed or corrupted after packaging.")
    return found


def _axes(tensor: dict[str, Any], kind: str) -> tuple[list[dict[str, Any]], list[str]]:
    axes = tensor.get("axes")
    if not isinstance(axes, list):
        raise _fail(f"{kind} axes", "a list of axis descriptions (format 0.5)", repr(axes))
    ids = [str(a.get("id", DEFAULT_AXIS_ID.get(a.get("type"), "?"))) for a in axes]
    if "z" in ids:
        raise _fail(f"{kind} '{tensor.get('id')}' axes", "a 2-D model (batch, channel, y, x)",
                    f"a 3-D model ({', '.join(ids)})")
    if tuple(ids) != AXES:
        raise _fail(f"{kind} '{tensor.get('id')}' axes", ", ".join(AXES), ", ".join(ids))
    return axes, ids


def _channels(axis: dict[str, Any], kind: str) -> tuple[str, ...]:
    names = axis.get("channel_names")
    if not isinstance(names, list) or not names:
        raise _fail(f"{kind} channel axis", "channel_names", repr(names))
    return tuple(str(n) for n in names)


def _space_size(axis: dict[str, Any], kind: str) -> Any:
    size = axis.get("size")
    if isinstance(size, int):
        return size
    if isinstance(size, dict) and "min" in size and "step" in size:
        return {"min": int(size["min"]), "step": int(size["step"])}
    raise _fail(f"{kind} {axis.get('id')} size", "an integer or {min, step}", repr(size))


def _locate_rdf(path: Path) -> tuple[str, str]:
    """(text of the RDF, the member name) from a zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            cands = [n for n in RDF_NAMES if n in names] or [n for n in names if n.endswith(".bioimageio.yaml")
                                                            and "/" not in n]
            if len(cands) < 1:
                raise _fail(f"package {path}", f"{' or '.join(RDF_NAMES)} at the top of the zip",
                            f"{len(names)} files and no model description")
            return zf.read(cands[0]).decode("utf-8", errors="replace"), cands[0]
    except zipfile.BadZipFile:
        raise _fail(f"package {path}", "a bioimage.io package (.zip) or its RDF (.yaml)",
                    "a file that is not a zip") from None


def open_package(path: str | Path, extract_to: str | Path | None = None) -> ZooModel:
    """Check a package (.zip) or RDF (.yaml) and describe it; a zip's needed files go to `extract_to` (default: a
    temporary folder removed at exit)."""
    path = Path(path)
    if not path.is_file():
        raise _fail("model package", "a .zip package or its .yaml RDF", f"nothing at {path}")
    suffix = path.suffix.lower()
    zf: zipfile.ZipFile | None = None
    if suffix in (".yaml", ".yml"):
        rdf, root = _read_yaml(path.read_text(errors="replace"), str(path)), path.parent
    elif suffix == ".zip" or zipfile.is_zipfile(path):
        text, member = _locate_rdf(path)
        rdf = _read_yaml(text, f"{path}:{member}")
        if extract_to is None:
            extract_to = tempfile.mkdtemp(prefix="unetpp-zoo-")
            atexit.register(shutil.rmtree, extract_to, True)
        root = Path(extract_to)
        root.mkdir(parents=True, exist_ok=True)
        zf = zipfile.ZipFile(path)
    else:
        raise _fail(f"model package {path}", "a .zip package or a .yaml RDF", f"suffix {path.suffix!r}")
    try:
        return _describe(path, root, rdf, zf)
    finally:
        if zf is not None:
            zf.close()


def _describe(source: Path, root: Path, rdf: dict[str, Any], zf: zipfile.ZipFile | None) -> ZooModel:
    if rdf.get("type") != "model":
        raise _fail(f"{source} type", "model", repr(rdf.get("type")))
    version = str(rdf.get("format_version", ""))
    if not version.startswith("0.5."):
        raise _fail(f"{source} format_version", "0.5.x", repr(version),
                    "Update it with `bioimageio update-format` (bioimageio.core).")
    inputs, outputs = rdf.get("inputs") or [], rdf.get("outputs") or []
    if len(inputs) != 1 or len(outputs) != 1:
        raise _fail(f"{source} tensors", "one input and one output (one 2-D image -> one probability map)",
                    f"{len(inputs)} input(s) and {len(outputs)} output(s)")
    inp, out = inputs[0], outputs[0]
    in_axes, _ = _axes(inp, "input")
    out_axes, _ = _axes(out, "output")
    out_channels = _channels(out_axes[1], "output")
    if len(out_channels) not in (1, 2):
        raise _fail("output channels", "1 (foreground) or 2 (foreground, border)",
                    f"{len(out_channels)}: {', '.join(out_channels)}")
    pre = tuple(dict(s) for s in inp.get("preprocessing") or [])
    check_steps(pre)
    post = tuple(dict(s) for s in out.get("postprocessing") or [])
    unknown = [s.get("id") for s in post if s.get("id") not in POST_STEPS]
    if unknown:
        raise _fail("post-processing", f"steps among {', '.join(POST_STEPS)}", ", ".join(map(str, unknown)))

    weights = rdf.get("weights") or {}
    if not isinstance(weights, dict) or "onnx" not in weights:
        found = ", ".join(weights) if isinstance(weights, dict) and weights else "none"
        raise _fail(f"{source} weights", "an onnx entry", found,
                    "Add ONNX weights, e.g. `bioimageio add-weights` (bioimageio.core).")
    entry = weights["onnx"]
    onnx_path = _local_file(root, entry, "ONNX weights", zf)
    sha = _check_sha(onnx_path, entry, "ONNX weights")
    if isinstance(entry.get("external_data"), dict):
        ext = _local_file(root, entry["external_data"], "ONNX external data", zf)
        _check_sha(ext, entry["external_data"], "ONNX external data")
    tests = []
    for tensor in (inp, out):
        t = tensor.get("test_tensor")
        tests.append(_local_file(root, t, f"test tensor of '{tensor.get('id')}'", zf) if t else None)
    data = inp.get("data") or {}
    dtype = str((data[0] if isinstance(data, list) else data).get("type", "float32"))
    return ZooModel(
        source=source, root=root, rdf=rdf, name=str(rdf.get("name", source.stem)), onnx_path=onnx_path,
        onnx_sha256=sha, opset=entry.get("opset_version"), input_id=str(inp.get("id")),
        output_id=str(out.get("id")), input_channels=_channels(in_axes[1], "input"), input_dtype=dtype,
        input_size=(_space_size(in_axes[2], "input"), _space_size(in_axes[3], "input")), preprocessing=pre,
        output_channels=out_channels, postprocessing=post, test_input=tests[0], test_output=tests[1],
    )


def _size_min(size: Any) -> int:
    return size if isinstance(size, int) else int(size["min"])


def _size_step(size: Any) -> int:
    return 0 if isinstance(size, int) else int(size["step"])


def zoo_runtime_inputs(zoo_model: ZooModel) -> dict[str, Any]:
    """What a runtime needs to run the package's ONNX weights on images (see the module docstring)."""
    zm = zoo_model
    c = len(zm.input_channels)
    (sy, sx) = zm.input_size
    fixed = isinstance(sy, int) and isinstance(sx, int)
    out: dict[str, Any] = {
        "onnx_path": str(zm.onnx_path),
        "input_name": zm.input_id,
        "output_name": zm.output_id,
        "opset": zm.opset,
        "input_shape": (c, sy, sx) if fixed else None,
        "min_shape": (c, _size_min(sy), _size_min(sx)),
        "step": (0, _size_step(sy), _size_step(sx)),
        "input_dtype": zm.input_dtype,
        "channel_names": list(zm.input_channels),
        "channel_order": zm.channel_order,
        "preprocess": zm.preprocess,
        "preprocessing": [dict(s) for s in zm.preprocessing],
        "linear": linear_parameters(zm.preprocessing, c),
        "output_channels": list(zm.output_channels),
        "outputs_are_logits": zm.outputs_are_logits,
        "postprocessing": [dict(s) for s in zm.postprocessing],
    }
    return out
