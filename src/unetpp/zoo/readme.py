"""The words of our bioimage.io package: name, description, README, citations, tags and the `config.unetpp` block."""

from __future__ import annotations

from typing import Any

from unetpp.config import ModelConfig, PreprocessConfig
from unetpp.model.metadata import predict_facts

CITE = [
    {"text": "Zhou Z., Rahman Siddiquee M.M., Tajbakhsh N., Liang J. UNet++: A Nested U-Net Architecture for "
             "Medical Image Segmentation. DLMIA 2018, LNCS 11045 (2018).",
     "doi": "10.1007/978-3-030-00889-5_1"},
    {"text": "Caicedo J.C. et al. Nucleus segmentation across imaging experiments: the 2018 Data Science Bowl. "
             "Nature Methods 16, 1247-1253 (2019). Training data: BBBC038v1 (CC0).",
     "doi": "10.1038/s41592-019-0612-7"},
]
GUIDE_LOGIT_THRESHOLD = 0.5
# Figures measured through ONNX Runtime by `make run` (bench/results/main_job_val134_cpu.md), by checkpoint SHA-256.
ORT_FIGURES = {
    "93e34f67977d98d3de38f00fcab94d34421e48e255a4065716b1e44e4f9dfad9": {
        "iou_guide": 0.8433, "iou_upstream": 0.8461, "dice": 0.9115,
        "where": "ONNX Runtime 1.32 CPU, batch 16, `make run` of 2026-11-26 (bench/results/main_job_val134_cpu.md)",
    },
}


def model_name(cfg: ModelConfig, size: int) -> str:
    kind = "nuclei" if cfg.num_classes == 1 else "nuclei and borders"
    return f"UNet++ {kind} DSB2018 ({size}x{size})"


def description(cfg: ModelConfig, size: int) -> str:
    return (f"NestedUNet (UNet++) segmenting cell nuclei in {size}x{size} 2-D light microscopy images (2018 Data "
            f"Science Bowl, BBBC038v1); outputs a per-pixel probability ({cfg.up_mode} upsampling).")


def tags(cfg: ModelConfig) -> list[str]:
    return ["unet++", "nestedunet", "nuclei", "segmentation", "2d", "fluorescence-light-microscopy",
            "dsb2018", "bbbc038", "onnx", "torchscript"] + (["instance-segmentation"] if cfg.num_classes > 1 else [])


def _metrics(meta: dict[str, Any], checkpoint_sha256: str) -> str:
    rows = []
    ort = ORT_FIGURES.get(checkpoint_sha256)
    if ort:
        rows += [f"| IoU, guide definition (logits > 0.5, per image, mean over images) | {ort['iou_guide']:.4f} | "
                 f"{ort['where']} |",
                 f"| IoU, upstream definition (sigmoid > 0.5, pooled per batch of 16) | {ort['iou_upstream']:.4f} | "
                 "the same run |",
                 f"| Dice (per image, mean) | {ort['dice']:.4f} | the same run |"]
    if "val_iou_guide" in meta:
        rows.append(f"| IoU, guide definition | {meta['val_iou_guide']:.4f} | PyTorch at training time "
                    f"(epoch {meta.get('epoch', '?')}, the checkpoint's record) |")
    if not rows:
        return "No validation figure was recorded with this checkpoint.\n"
    n_val = meta.get("n_val", 134)
    return (f"On the {n_val} validation images of the fixed split (`val_ids.txt`) at 96x96, by unetpp:\n\n"
            "| metric | value | measured |\n|---|---|---|\n" + "\n".join(rows) + "\n")


def readme_text(cfg: ModelConfig, pre: PreprocessConfig, order: str, meta: dict[str, Any], opset: int,
                checkpoint_sha256: str) -> str:
    """The package's README.md."""
    s = pre.size
    names = ", ".join(("foreground", "border")[: cfg.num_classes]) if cfg.num_classes <= 2 else "classes"
    return f"""# {model_name(cfg, s)}

NestedUNet (UNet++, Zhou et al. 2018) without deep supervision, {cfg.num_classes} output channel(s) ({names}),
{cfg.up_mode} upsampling, trained with unetpp on the 2018 Data Science Bowl nuclei images.

## Intended use
Semantic segmentation of cell nuclei in 2-D light microscopy images like those of DSB2018 (fluorescence and
brightfield/histology, mostly small fields of view). The network sees {s}x{s} pixels: resize an image (or tile it) to
{s}x{s} before running it. It is a research model: check its output on your own images before relying on it.

## Input
`image`: uint8, axes (batch, channel, y, x), {s}x{s}, 3 channels in **{order.upper()}** order.
Pre-processing (in the package as `ensure_dtype` float32 then a per-channel `scale_linear`) reproduces the training
normalisation exactly: `x = ((pixel/255 - mean) / std) / 255`, with ImageNet mean/std taken in **BGR** order
(blue gets mean {pre.mean[0]}, std {pre.std[0]}; red gets mean {pre.mean[2]}, std {pre.std[2]}) and the extra `/255`
of the original code (the weights depend on it). The model was trained on images read by OpenCV (BGR); this
package {"takes RGB and reverses the channels inside the network" if order == "rgb" else "takes BGR, as trained"},
so feed {order.upper()} images. Grey images: repeat the grey channel three times.

## Output
`probability`: float32 in [0, 1], axes (batch, channel, y, x), {s}x{s}. The network itself returns logits; the
package's post-processing applies `sigmoid`. The original guide thresholds the **logits** at {GUIDE_LOGIT_THRESHOLD}
(no sigmoid), which is probability > 0.6225; the metrics below use that rule. Nuclei instances: label connected
components of the thresholded mask (unetpp also splits touching nuclei).

## Training data
2018 Data Science Bowl stage1_train (BBBC038v1, Broad Bioimage Benchmark Collection, CC0), 670 images resized
to {s}x{s}; fixed split of 536 training and 134 validation images.

## Validation
{_metrics(meta, checkpoint_sha256)}
## Weights
TorchScript (root entry) and ONNX (opset {opset}, parent: torchscript), both exported by unetpp from the same
PyTorch model. The test output was computed by unetpp's native path (ONNX export of the original graph, OpenCV-style
normalisation, ONNX Runtime) and both packaged formats reproduce it.

## Licence and citation
MIT. Please cite UNet++ (Zhou et al. 2018) and the Data Science Bowl data set (Caicedo et al. 2019, Nature
Methods); see `cite` in rdf.yaml.
"""


def config_section(cfg: ModelConfig, pre: PreprocessConfig, order: str, meta: dict[str, Any],
                   checkpoint_sha256: str) -> dict[str, Any]:
    """Facts for unetpp (and people) reading the package back: the training convention and our own figures."""
    out: dict[str, Any] = {
        "model_config": cfg.to_dict(),
        "training_channel_order": pre.channel_order.upper(),
        "package_channel_order": order.upper(),
        "normalisation": {"mean": list(pre.mean), "std": list(pre.std), "extra_divide": pre.extra_divide,
                          "formula": "((x/255 - mean)/std)/extra_divide, mean/std in training channel order"},
        "guide_threshold": {"on": "logits", "value": GUIDE_LOGIT_THRESHOLD},
        "checkpoint_sha256": checkpoint_sha256,
    }
    if checkpoint_sha256 in ORT_FIGURES:
        out["onnxruntime_figures"] = ORT_FIGURES[checkpoint_sha256]
    for k in ("val_iou_guide", "val_iou_upstream", "epoch", "n_train", "n_val"):
        if k in meta:
            out[k] = meta[k]
    out.update(predict_facts(meta))  # predict's scale rule and chosen post-processing (model/metadata.py)
    return out
