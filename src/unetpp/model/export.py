"""ONNX export (the guide's nested_unet_pth2onnx.py) with a parity check against PyTorch."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unetpp.atomic import atomic_path, write_json_atomic
from unetpp.compare import compare_logits
from unetpp.config import DEFAULT_OPSET, INPUT_NAME, MIN_OPSET, OUTPUT_NAME, PreprocessConfig
from unetpp.errors import InputError, ModelFileError, expected_found
from unetpp.model.checkpoint import file_sha256, load_checkpoint
from unetpp.model.depth import choose_depth
from unetpp.model.metadata import (
    FACTS_VERSION,
    SIZE_STEP,
    build_metadata,
    free_size_by_default,
    predict_facts,
    spatial_meta,
    write_onnx_metadata,
)
from unetpp.model.network import PrunedNestedUNet

# ORT and PyTorch both run fp32; BN folding and a different summation order stay well below this on logits.
PARITY_ATOL = 1e-4
# fp32 ONNX Runtime vs PyTorch differ by ~2e-5 of the largest logit (the shipped guide model: 2.9e-4 at 12.8)
PARITY_RTOL = 5e-5
# An export with free height/width is also checked at this second, non-square size (multiples of SIZE_STEP).
SECOND_PARITY_SIZE = (160, 224)


class _LastOutput(nn.Module):
    """With deep supervision the network returns four maps; the exported graph gives the last (the scored one)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out[-1] if isinstance(out, list | tuple) else out


def synthetic_nuclei(n: int = 2, cfg: PreprocessConfig | None = None, seed: int = 0) -> np.ndarray:
    """A batch of nuclei-like images (dark background, bright blurred ellipses, noise), normalised as the guide does.

    Real-looking inputs matter for parity: the trained first layers see values within +-0.01, where plain randn
    would exercise a very different range.
    """
    import cv2

    from unetpp.data.preprocess import normalize

    cfg = cfg or PreprocessConfig()
    rng = np.random.default_rng(seed)
    s = cfg.size
    out = []
    for _ in range(n):
        img = np.full((s, s, 3), rng.integers(5, 30), np.uint8)
        for _ in range(int(rng.integers(5, 15))):
            centre = (int(rng.integers(0, s)), int(rng.integers(0, s)))
            axes = (int(rng.integers(3, 10)), int(rng.integers(3, 10)))
            colour = tuple(int(c) for c in rng.integers(120, 255, size=3))
            cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        img = cv2.GaussianBlur(img, (3, 3), 0)
        img = np.clip(img.astype(np.int16) + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)
        out.append(normalize(img, cfg))
    return np.stack(out)


def parity_check(onnx_path: Path, model: nn.Module, x: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Run the ONNX file with onnxruntime (CPU) and the PyTorch model on `x`; compare logits and decisions."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.inference_mode():
        ref = _LastOutput(model)(torch.from_numpy(x)).numpy()
    return {"parity_input_shape": list(x.shape), **compare_logits(ref, onnx_out, threshold, atol=PARITY_ATOL,
                                                                rtol=PARITY_RTOL)}


def _add_second_size_parity(parity: dict[str, Any], onnx_path: Path, model: Any, n: int,
                            preprocess: PreprocessConfig) -> None:
    """Parity of a free-size graph at SECOND_PARITY_SIZE too: under `second_size`, the worst of both kept."""
    h2, w2 = SECOND_PARITY_SIZE
    second = synthetic_nuclei(n, PreprocessConfig(**{**preprocess.to_dict(), "size": max(h2, w2)}), seed=1)
    extra = parity_check(onnx_path, model, np.ascontiguousarray(second[:, :, :h2, :w2]), preprocess.logit_threshold)
    parity["second_size"] = extra
    for key in ("max_abs_diff", "flipped_pixels"):
        if key in parity and key in extra:
            parity[key] = max(parity[key], extra[key])
    if "within_atol" in parity and "within_atol" in extra:
        parity["within_atol"] = bool(parity["within_atol"] and extra["within_atol"])


def export_onnx(
    checkpoint: str | Path | None,
    out: Path,
    opset: int = DEFAULT_OPSET,
    batch: int | None = None,
    up_mode: str | None = None,
    parity_input: np.ndarray | None = None,
    depth: int | None = None,
    dynamic_size: bool | None = None,
) -> dict[str, Any]:
    """Export a checkpoint to ONNX (TorchScript exporter), check it, compare it with PyTorch; return the report.

    Writes `out` atomically and the report as `<out>.parity.json`. `batch` fixes axis 0; None keeps it dynamic.
    `depth` (1..4, default the model's own, see model/depth.py) exports the pruned graph of X0,depth: only the
    nodes that output needs are in the file; a model without deep supervision has depth 4 only.
    `dynamic_size`: free height/width (any multiple of 16; the file's metadata says so, and parity is also checked
    at a second, non-square size); None decides by the model: free for a model trained at a normalised scale
    (its checkpoint states a scale rule: the instance model, run on whole images or large windows), fixed for
    the others (the guide model keeps the guide's 96x96 graph).
    """
    import onnx

    out = Path(out)
    if batch is not None and batch < 1:
        raise InputError(expected_found("--batch", "a positive integer", batch))
    check_opset(opset)
    ckpt = load_checkpoint(checkpoint, up_mode=up_mode)
    ds = ckpt.config.deep_supervision
    depth = choose_depth(depth, ds, ckpt.meta, ckpt.path)
    model = (PrunedNestedUNet(ckpt.model, depth) if ds else _LastOutput(ckpt.model)).eval()
    c, s = ckpt.config.input_channels, ckpt.preprocess.size
    dummy = torch.zeros(batch or 1, c, s, s)
    dynamic = batch is None
    if dynamic_size is None:
        dynamic_size = free_size_by_default(ckpt.meta)
    axes: dict[int, str] = ({0: "batch"} if dynamic else {}) | ({2: "height", 3: "width"} if dynamic_size else {})
    dynamic_axes = {INPUT_NAME: axes, OUTPUT_NAME: dict(axes)} if axes else None

    if parity_input is None:
        parity_input = synthetic_nuclei(batch or 2, ckpt.preprocess)
    parity_input = np.ascontiguousarray(parity_input, dtype=np.float32)
    if parity_input.ndim != 4 or parity_input.shape[1:] != (c, s, s) or (batch and parity_input.shape[0] != batch):
        want = f"({batch or 'N'}, {c}, {s}, {s})"
        raise InputError(expected_found("parity input shape", want, tuple(parity_input.shape)))

    with atomic_path(out) as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's own notices
            try:
                torch.onnx.export(
                    model, (dummy,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True, dynamo=False,
                )
            except Exception as exc:  # noqa: BLE001 - the exporter's own errors carry a whole graph dump
                first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
                raise ModelFileError(f"ONNX export at opset {opset} failed: {first}") from None
        proto = onnx.load(str(tmp))
        meta = build_metadata(ckpt.config, ckpt.preprocess, ckpt.meta.get("outputs"),
                              checkpoint_sha256=file_sha256(ckpt.path),
                              **predict_facts(ckpt.meta),
                              **({"depth": depth} if ds else {}),
                              **({"spatial": spatial_meta(SIZE_STEP)} if dynamic_size else {}))
        write_onnx_metadata(proto, meta)
        onnx.save(proto, str(tmp))
        try:
            onnx.checker.check_model(proto)
        except onnx.checker.ValidationError as exc:
            raise ModelFileError(f"exported graph fails onnx.checker: {str(exc).splitlines()[0]}") from None
        found_opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None)
        if found_opset != opset:
            raise ModelFileError(expected_found("exported opset", opset, found_opset))
        parity = parity_check(tmp, model, parity_input, ckpt.preprocess.logit_threshold)
        if dynamic_size:  # the same graph at a second, non-square size
            _add_second_size_parity(parity, tmp, model, parity_input.shape[0], ckpt.preprocess)

    report: dict[str, Any] = {
        "onnx": str(out),
        "opset": opset,
        "input_names": [i.name for i in proto.graph.input],
        "output_names": [o.name for o in proto.graph.output],
        "dynamic": dynamic,
        "dynamic_size": bool(dynamic_size),
        "metadata": meta,
        "facts_version": FACTS_VERSION,
        "batch": batch,
        "up_mode": ckpt.config.up_mode,
        "depth": depth,
        **parity,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "onnxruntime_version": _ort_version(),
        "checkpoint": str(ckpt.path),
        "checkpoint_sha256": file_sha256(ckpt.path),
        "onnx_sha256": file_sha256(out),
    }
    write_json_atomic(parity_path(out), report)
    return report


def opset_range() -> tuple[int, int]:
    """The opsets `export` accepts: MIN_OPSET up to the installed torch's highest."""
    from torch.onnx import _constants

    return MIN_OPSET, int(getattr(_constants, "ONNX_MAX_OPSET", 20))


def check_opset(opset: int) -> None:
    lo, hi = opset_range()
    if not isinstance(opset, int) or not lo <= opset <= hi:
        raise InputError(expected_found("--opset", f"an ONNX opset from {lo} to {hi} (NestedUNet's upsampling needs "
                                        f"{lo}; torch {torch.__version__} exports up to {hi})", opset))


def parity_path(out: Path) -> Path:
    return Path(str(out) + ".parity.json")


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def format_report(report: dict[str, Any]) -> str:
    """The short text `unetpp export` prints."""
    return (
        f"wrote {report['onnx']} (opset {report['opset']}, input {report['input_names'][0]}, "
        f"output {report['output_names'][0]}, batch {'dynamic' if report['dynamic'] else report['batch']}, "
        f"{'height/width free (multiples of 16)' if report.get('dynamic_size') else 'fixed height/width'}, "
        f"up_mode {report['up_mode']})\n"
        f"parity vs PyTorch on {report['parity_input_shape']}: max |diff| of logits {report['max_abs_diff']:.3g} "
        f"(tolerance {report['tolerance']:.2g}: {'ok' if report['within_atol'] else 'EXCEEDED'}), "
        f"decisions >{report['threshold']} flipped: {report['flipped_pixels']} pixels "
        f"({100 * report['flipped_share']:.4f} %)\n"
        f"report: {parity_path(Path(report['onnx']))}"
    )
