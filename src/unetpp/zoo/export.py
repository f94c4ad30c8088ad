"""`unetpp export --format bioimageio`: one of our checkpoints as a bioimage.io model package (format 0.5).

The package holds TorchScript weights (the root entry) and ONNX weights (parent: torchscript), both taking the
package's channel order (RGB by default: a channel flip to the checkpoint's BGR is part of the graph), axes
(batch, channel, y, x) at the training size, pre-processing as `ensure_dtype` + per-channel `scale_linear`
(exactly ((x/255 - mean)/std)/255 of the guide) and post-processing `sigmoid`. The test output is computed by our
native path (the guide's ONNX export, `normalize`, ONNX Runtime) and both packaged weights are checked against it.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from unetpp.config import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, PreprocessConfig
from unetpp.errors import InputError, ModelFileError, expected_found
from unetpp.model.checkpoint import file_sha256, load_checkpoint
from unetpp.model.zoo_processing import make_preprocess
from unetpp.zoo import readme
from unetpp.zoo.package import PackageContent, TensorSpec, write_package

CHANNEL_ORDERS = ("rgb", "bgr")
COLOUR_NAMES = {"r": "red", "g": "green", "b": "blue"}
OUTPUT_CHANNELS = {1: ("foreground",), 2: ("foreground", "border")}
CHECK_ATOL = 1e-4  # packaged weights vs the native path, on probabilities


class ZooNet(nn.Module):
    """The network as packaged: input in the package's channel order, the scored output (last one with deep
    supervision), raw logits."""

    def __init__(self, net: nn.Module, flip: bool) -> None:
        super().__init__()
        self.net = net
        self.flip = flip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x.flip(1) if self.flip else x)
        return out[-1] if isinstance(out, list | tuple) else out


def channel_names(order: str) -> tuple[str, ...]:
    return tuple(COLOUR_NAMES[c] for c in order.lower())


def output_channel_names(num_classes: int) -> tuple[str, ...]:
    return OUTPUT_CHANNELS.get(num_classes, tuple(f"class{i}" for i in range(num_classes)))


def scale_linear_kwargs(pre: PreprocessConfig, order: str) -> dict[str, Any]:
    """Per-channel gain/offset in the package's order: x*gain + offset == ((x/255 - mean)/std)/extra_divide."""
    ckpt_names = channel_names(pre.channel_order)
    gain, offset = [], []
    for name in channel_names(order):
        j = ckpt_names.index(name)
        gain.append(1.0 / (255.0 * pre.std[j] * pre.extra_divide))
        offset.append(-pre.mean[j] / (pre.std[j] * pre.extra_divide))
    return {"axis": "channel", "gain": gain, "offset": offset}


def synthetic_image(size: int, seed: int = 0) -> np.ndarray:
    """A generated nuclei image (unetpp.data.synthetic), read and resized as `unetpp prepare` does: BGR uint8."""
    from unetpp.data.preprocess import read_bgr
    from unetpp.data.synthetic import make_synthetic_dsb

    with tempfile.TemporaryDirectory(prefix="unetpp-zoo-img-") as d:
        root = make_synthetic_dsb(Path(d), n=2, seed=seed, n_val=1)
        first = sorted((root / "stage1_train").iterdir())[0]
        img = read_bgr(first / "images" / f"{first.name}.png")
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)


def _ort_run(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _export_weights(net: ZooNet, size: int, channels: int, opset: int, work: Path) -> tuple[Path, Path]:
    dummy = torch.zeros(1, channels, size, size)
    onnx_path, ts_path = work / "weights.onnx", work / "weights_torchscript.pt"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's and tracer's deprecation notices
        torch.onnx.export(net, (dummy,), str(onnx_path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=opset, do_constant_folding=True, dynamo=False)
        traced = torch.jit.trace(net, dummy, check_trace=False)
        traced.save(str(ts_path))
    return onnx_path, ts_path


def _cover(img_bgr: np.ndarray, logits: np.ndarray, threshold: float, height: int = 256) -> bytes:
    """The image and the same image with predicted nuclei contours (report.overlay), side by side, 2:1."""
    from unetpp.predict.instances import label_nuclei
    from unetpp.report.overlay import draw_overlay

    labels = label_nuclei(logits > threshold).astype(np.float32)
    big = cv2.resize(img_bgr, (height, height), interpolation=cv2.INTER_LINEAR)
    big_labels = cv2.resize(labels, (height, height), interpolation=cv2.INTER_NEAREST).astype(np.int32)
    pair = np.concatenate([big, draw_overlay(big, big_labels, thickness=2)], axis=1)
    ok, buf = cv2.imencode(".png", pair)
    if not ok:
        raise ModelFileError("cannot encode the cover image as PNG")
    return buf.tobytes()


def _encode(ext: str, img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, img)
    if not ok:
        raise ModelFileError(f"cannot encode a sample image as {ext}")
    return buf.tobytes()


def _encode_pages(prob: np.ndarray) -> bytes:
    """A float32 TIFF of a (C, H, W) probability: one page (H, W) per channel, so any number of channels (the
    instance model has 2, which no single-page image format holds)."""
    pages = [np.ascontiguousarray(c, dtype=np.float32) for c in prob]
    if len(pages) == 1:
        return _encode(".tiff", pages[0])
    ok, buf = cv2.imencodemulti(".tiff", pages)
    if not ok:
        raise ModelFileError("cannot encode the sample output as a multi-page TIFF")
    return buf.tobytes()


def _samples(img_pkg: np.ndarray, order: str, prob: np.ndarray) -> dict[str, tuple[str, bytes]]:
    """The test image as a PNG (cv2 writes BGR, so the PNG holds the colours as they are) and the probability as a
    float32 TIFF, one page per output channel."""
    img_bgr = img_pkg[..., ::-1] if order == "rgb" else img_pkg
    return {"input": ("sample_input.png", _encode(".png", np.ascontiguousarray(img_bgr))),
            "output": ("sample_output.tif", _encode_pages(prob))}


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def export_bioimageio(
    checkpoint: str | Path | None,
    out: str | Path,
    opset: int = DEFAULT_OPSET,
    channel_order: str = "rgb",
    up_mode: str | None = None,
) -> dict[str, Any]:
    """Build the package `out` (.zip) from a checkpoint (default: the shipped one); return a report."""
    from unetpp.data.preprocess import normalize
    from unetpp.eval.metrics import sigmoid
    from unetpp.model.depth import choose_depth
    from unetpp.model.export import export_onnx
    from unetpp.model.network import PrunedNestedUNet

    if Path(out).suffix.lower() != ".zip":  # write_package checks it too; here before the export work
        raise InputError(expected_found("package file name", "a name ending in .zip", Path(out).name))
    order = channel_order.lower()
    if order not in CHANNEL_ORDERS:
        raise InputError(expected_found("--channel-order", " or ".join(CHANNEL_ORDERS), repr(channel_order)))
    ckpt = load_checkpoint(checkpoint, up_mode=up_mode)
    cfg, pre = ckpt.config, ckpt.preprocess
    if cfg.input_channels != 3 or pre.channel_order.upper() not in ("RGB", "BGR"):
        raise InputError(expected_found("checkpoint input", "3 channels in RGB or BGR order",
                                        f"{cfg.input_channels} channels, order {pre.channel_order}"))
    flip = channel_names(order) != channel_names(pre.channel_order)
    # a deeply supervised model is packaged at its own default depth (the pruned graph predict runs)
    depth = choose_depth(None, cfg.deep_supervision, ckpt.meta, ckpt.path)
    net = ZooNet(PrunedNestedUNet(ckpt.model, depth) if cfg.deep_supervision else ckpt.model, flip).eval()
    s = pre.size
    img_bgr = synthetic_image(s)
    img_pkg = img_bgr[..., ::-1] if order == "rgb" else img_bgr
    test_input = np.ascontiguousarray(img_pkg.transpose(2, 0, 1)[None])
    pre_steps = ({"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
                 {"id": "scale_linear", "kwargs": scale_linear_kwargs(pre, order)},
                 {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}})  # else the spec appends one to uint8

    with tempfile.TemporaryDirectory(prefix="unetpp-zoo-") as d:
        work = Path(d)
        native = export_onnx(ckpt.path, work / "native.onnx", opset=opset, up_mode=cfg.up_mode, depth=depth)
        logits = _ort_run(work / "native.onnx", normalize(img_bgr, pre)[None])
        test_output = sigmoid(logits).astype(np.float32)
        onnx_path, ts_path = _export_weights(net, s, 3, opset, work)
        x_pkg = make_preprocess(pre_steps, 3)(img_pkg)[None]
        diffs = {"onnx": _max_diff(sigmoid(_ort_run(onnx_path, x_pkg)), test_output)}
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load's notice in torch 2.13
            ts_out = torch.jit.load(str(ts_path))(torch.from_numpy(x_pkg)).numpy()
        diffs["torchscript"] = _max_diff(sigmoid(ts_out), test_output)
        bad = {k: v for k, v in diffs.items() if not v <= CHECK_ATOL}
        if bad:
            raise ModelFileError(expected_found("packaged weights vs the native ONNX path (max |diff| of "
                                                "probabilities)", f"<= {CHECK_ATOL:g}", bad))
        out_names = output_channel_names(cfg.num_classes)
        ckpt_sha = file_sha256(ckpt.path)
        content = PackageContent(
            name=readme.model_name(cfg, s),
            description=readme.description(cfg, s),
            input=TensorSpec("image", f"{s}x{s} {order.upper()} 8-bit image of nuclei",
                             channel_names(order), (s, s), "uint8", (0, 255), pre_steps),
            output=TensorSpec("probability", "per-pixel probability of " + ", ".join(out_names), out_names,
                              (s, s), "float32", (0.0, 1.0), ({"id": "sigmoid"},)),
            onnx=onnx_path, opset=opset, torchscript=ts_path, pytorch_version=torch.__version__,
            test_input=test_input, test_output=test_output,
            readme=readme.readme_text(cfg, pre, order, ckpt.meta, opset, ckpt_sha),
            cover_png=_cover(img_bgr, logits[0, 0], pre.logit_threshold),
            samples=_samples(img_pkg, order, test_output[0]),
            cite=readme.CITE, tags=readme.tags(cfg),
            config={"unetpp": readme.config_section(cfg, pre, order, ckpt.meta, ckpt_sha)},
        )
        write_package(out, content)
    return {"package": str(out), "checkpoint": str(ckpt.path), "channel_order": order, "channel_flip": flip,
            "opset": opset, "output_channels": list(out_names), "max_abs_diff_vs_native": diffs,
            "native_parity_vs_pytorch": native["max_abs_diff"], "package_sha256": file_sha256(out)}


def format_report(report: dict[str, Any]) -> str:
    """The text `unetpp export --format bioimageio` prints."""
    diffs = ", ".join(f"{k} {v:.2g}" for k, v in report["max_abs_diff_vs_native"].items())
    return (f"wrote {report['package']} (bioimage.io model, ONNX opset {report['opset']} + TorchScript, input "
            f"{report['channel_order'].upper()}, outputs {', '.join(report['output_channels'])})\n"
            f"packaged weights vs native ONNX path, max |diff| of probabilities: {diffs}\n"
            f"check it with: bioimageio test {report['package']}")
