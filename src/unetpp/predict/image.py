"""Full-resolution segmentation of one image: probability (resize or tile mode), mask, nuclei, written atomically.

The options, the output files and the post-processing of one image: what predict/work.py builds on.
`predict_image` and `predict_one` (one image through the driver) live above both, in predict/single.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from unetpp.atomic import write_bytes_atomic, write_text_atomic
from unetpp.errors import InputError, OutputError, expected_found
from unetpp.predict import scale as scale_rules
from unetpp.predict.imageio import BIT16_MODES
from unetpp.predict.protocol import PostProcessing, foreground
from unetpp.predict.table import NucleusTable
from unetpp.predict.tiling import DEFAULT_FLOOR, DEFAULT_OVERLAP
from unetpp.report.overlay import write_overlay

MODES = ("auto", "resize", "tile")  # auto: tile for a model that declares its scale rule (instance), else resize
OUTPUT_SUFFIXES = {"mask": "_mask.png", "labels": "_labels.png", "prob": "_prob.png", "overlay": "_overlay.png",
                   "nuclei": "_nuclei.csv"}  # written in this order: the nucleus table last marks a complete image
OPTIONAL_OUTPUTS = {"prob": "save_prob", "overlay": "overlay"}


@dataclass(frozen=True)
class PredictOptions:
    """Everything that decides an image's outputs (recorded in the run summary; a change disables resume)."""

    mode: str = "auto"
    scale: str | float = "auto"  # tile mode: auto | fit | area | nuclei | a factor (see segment.scale)
    overlap: float = DEFAULT_OVERLAP
    batch: int = 16
    # None: the model's own (predict/protocol.py). A value acts on the parameter that decides for the model: the
    # seeds' foreground threshold t_fg and minimum nucleus area (image pixels) for the instance model, the
    # probability threshold and minimum area of the distance split for a foreground-only model
    threshold: float | None = None
    min_area: int | None = None
    split: bool = True
    save_prob: bool = False
    overlay: bool = False  # <stem>_overlay.png: predicted contours over the image, and index.html for the run
    tta: bool = False  # test-time augmentation: the 8 flips/rotations of each tile, probabilities averaged (8x cost)
    bit16: str = "stretch"
    floor: float = DEFAULT_FLOOR
    extra: dict[str, Any] = field(default_factory=dict)
    # tile mode, a model with free height/width: None = the fewest computed pixels (the whole scaled image, or
    # stitched windows of up to 512 px: tiling.plan_windows) for a model with its own scale rule, the model's own
    # size otherwise (the guide model keeps its 96x96 windows); a number = windows of at most that size (the
    # model's own size, 96: its 96x96 windows blended at `overlap`, the fixed-size protocol)
    window: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(expected_found("--mode", " or ".join(MODES), repr(self.mode)))
        object.__setattr__(self, "scale", scale_rules.parse_scale(self.scale))
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise InputError(expected_found("--threshold", "a probability in (0, 1)", self.threshold))
        if not isinstance(self.batch, int) or self.batch < 1:
            raise InputError(expected_found("--batch", "an integer >= 1", self.batch))
        if self.min_area is not None and (not isinstance(self.min_area, int) or isinstance(self.min_area, bool)
                                          or self.min_area < 0):
            raise InputError(expected_found("--min-area", "an integer >= 0", self.min_area))
        if self.bit16 not in BIT16_MODES:
            raise InputError(expected_found("--bit16", " or ".join(BIT16_MODES), repr(self.bit16)))
        if not 0.0 <= self.overlap < 1.0:
            raise InputError(expected_found("--overlap", "a fraction in [0, 1)", self.overlap))
        if self.window is not None and (not isinstance(self.window, int) or isinstance(self.window, bool)
                                        or self.window < 16):
            raise InputError(expected_found("--window", "an integer >= 16 (pixels, a multiple of the model's size "
                                            "step)", repr(self.window)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def output_paths(out_dir: Path, stem: str, options: PredictOptions) -> dict[str, Path]:
    """The files of one image, in writing order; the optional ones only where the options ask for them."""
    return {k: out_dir / f"{stem}{suf}" for k, suf in OUTPUT_SUFFIXES.items()
            if k not in OPTIONAL_OUTPUTS or getattr(options, OPTIONAL_OUTPUTS[k])}


def outputs_complete(out_dir: str | Path, stem: str, options: PredictOptions) -> bool:
    """All of an image's outputs exist (each is written atomically, so existing means complete)."""
    return all(p.is_file() for p in output_paths(Path(out_dir), stem, options).values())


def postprocess(prob: np.ndarray, post: PostProcessing, outputs: list[str] | None = None,
                scale: float | None = None) -> dict[str, Any]:
    """Probability map(s) at the image's size -> prob (foreground, HxW), mask, labels, nucleus table and the maps
    themselves ((C, H, W): what unetpp.tune grids the post-processing on), by the model's post-processing
    (predict/protocol.py: seeds for a model with a border channel, the distance split for a foreground-only one);
    `scale`: the factor the model ran at (the seeds' model-input areas follow it)."""
    outputs = outputs or ["foreground"]
    maps = prob if prob.ndim == 3 else prob[None]
    mask, labels = post.split_maps(maps, outputs, scale)
    return {"prob": foreground(maps, outputs), "mask": mask, "labels": labels,
            "table": NucleusTable.from_labels(labels), "maps": maps}


def record_from_files(path: Path | None, stem: str, paths: dict[str, Path], mode: str) -> dict[str, Any]:
    """The record of an image whose outputs are complete but whose earlier record is unknown."""
    h, w = cv2.imread(str(paths["mask"]), cv2.IMREAD_GRAYSCALE).shape[:2]
    n = max(0, len(paths["nuclei"].read_text().splitlines()) - 1)
    return {"image": str(path) if path else None, "stem": stem, "height": h, "width": w, "mode": mode, "nuclei": n,
            "seconds": None}


def _png(arr: np.ndarray, what: str) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise OutputError(f"cannot encode {what} as PNG")
    return buf.tobytes()


def write_outputs(result: dict[str, Any], paths: dict[str, Path], image: np.ndarray | None = None) -> None:
    """Each file atomically; the nucleus table last, so its presence marks a complete image."""
    labels = result["labels"]
    if labels.max(initial=0) > np.iinfo(np.uint16).max:
        raise OutputError(expected_found("nuclei in one image", "at most 65535 (uint16 labels PNG)",
                                         int(labels.max())))
    if "prob" in paths:
        prob16 = np.rint(np.clip(result["prob"], 0.0, 1.0) * 65535.0).astype(np.uint16)
        write_bytes_atomic(paths["prob"], _png(prob16, "probability"))
    write_bytes_atomic(paths["mask"], _png(result["mask"].astype(np.uint8) * 255, "mask"))
    write_bytes_atomic(paths["labels"], _png(labels.astype(np.uint16), "labels"))
    if "overlay" in paths:
        if image is None:
            raise OutputError("an overlay needs the image it is drawn on")
        write_overlay(paths["overlay"], image, labels)
    write_text_atomic(paths["nuclei"], result["table"].to_csv())
