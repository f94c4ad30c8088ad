"""Full-resolution segmentation of one image: probability (resize or tile mode), mask, nuclei, written atomically.

`predict_one(path, out_dir, runtime, options)` is the unit of work (a Ray worker can call it with a runtime it
activated once); `predict_image(img, runtime, options)` is the same without files.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from unetpp.atomic import write_bytes_atomic, write_text_atomic
from unetpp.data.preprocess import normalize
from unetpp.errors import InputError, OutputError, expected_found
from unetpp.eval.metrics import sigmoid
from unetpp.predict import scale as scale_rules
from unetpp.predict.imageio import BIT16_MODES, read_image
from unetpp.predict.instances import CSV_HEADER, DEFAULT_MIN_AREA, label_nuclei, nucleus_table
from unetpp.predict.tiling import DEFAULT_FLOOR, DEFAULT_OVERLAP, blend_tiles
from unetpp.report.overlay import write_overlay
from unetpp.runtimes import Runtime

MODES = ("resize", "tile")
OUTPUT_SUFFIXES = {"mask": "_mask.png", "labels": "_labels.png", "prob": "_prob.png", "overlay": "_overlay.png",
                   "nuclei": "_nuclei.csv"}  # written in this order: the nucleus table last marks a complete image
OPTIONAL_OUTPUTS = {"prob": "save_prob", "overlay": "overlay"}


@dataclass(frozen=True)
class PredictOptions:
    """Everything that decides an image's outputs (recorded in the run summary; a change disables resume)."""

    mode: str = "resize"
    scale: str | float = "auto"  # tile mode: auto | fit | area | nuclei | a factor (see segment.scale)
    overlap: float = DEFAULT_OVERLAP
    batch: int = 16
    threshold: float = 0.5  # on the probability sigmoid(logit)
    min_area: int = DEFAULT_MIN_AREA
    split: bool = True
    save_prob: bool = False
    overlay: bool = False  # <stem>_overlay.png: predicted contours over the image, and index.html for the run
    bit16: str = "stretch"
    floor: float = DEFAULT_FLOOR
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(expected_found("--mode", " or ".join(MODES), repr(self.mode)))
        object.__setattr__(self, "scale", scale_rules.parse_scale(self.scale))
        if not 0.0 < self.threshold < 1.0:
            raise InputError(expected_found("--threshold", "a probability in (0, 1)", self.threshold))
        if not isinstance(self.batch, int) or self.batch < 1:
            raise InputError(expected_found("--batch", "an integer >= 1", self.batch))
        if self.min_area < 0:
            raise InputError(expected_found("--min-area", "an integer >= 0", self.min_area))
        if self.bit16 not in BIT16_MODES:
            raise InputError(expected_found("--bit16", " or ".join(BIT16_MODES), repr(self.bit16)))
        if not 0.0 <= self.overlap < 1.0:
            raise InputError(expected_found("--overlap", "a fraction in [0, 1)", self.overlap))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def output_paths(out_dir: Path, stem: str, options: PredictOptions) -> dict[str, Path]:
    """The files of one image, in writing order; the optional ones only where the options ask for them."""
    return {k: out_dir / f"{stem}{suf}" for k, suf in OUTPUT_SUFFIXES.items()
            if k not in OPTIONAL_OUTPUTS or getattr(options, OPTIONAL_OUTPUTS[k])}


def outputs_complete(out_dir: str | Path, stem: str, options: PredictOptions) -> bool:
    """All of an image's outputs exist (each is written atomically, so existing means complete)."""
    return all(p.is_file() for p in output_paths(Path(out_dir), stem, options).values())


def tile_probs(runtime: Runtime, tiles: np.ndarray) -> np.ndarray:
    """(n, S, S, 3) BGR uint8 tiles -> (n, S, S) probabilities; a static-batch model gets padded batches."""
    x = np.stack([normalize(t) for t in tiles])
    step = getattr(runtime, "static_batch", None) or len(x)
    parts = []
    for i in range(0, len(x), step):
        chunk = x[i:i + step]
        k = len(chunk)
        if k < step:  # a fixed-batch model: pad with copies of the last tile, drop their outputs
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - k, axis=0)])
        parts.append(np.asarray(runtime.infer(chunk), np.float32)[:k, 0])
    logits = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return sigmoid(logits)


def _size(runtime: Runtime) -> int:
    return int(runtime.input_shape[-1])


def predict_resize(img: np.ndarray, runtime: Runtime) -> np.ndarray:
    """The guide's protocol: INTER_LINEAR to SxS (as data/prepare.py), predict, bilinear back to H x W."""
    h, w = img.shape[:2]
    s = _size(runtime)
    prob = tile_probs(runtime, cv2.resize(img, (s, s))[None])[0]
    return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)


def predict_tiled(img: np.ndarray, runtime: Runtime, factor: float, options: PredictOptions,
                  stats: dict | None = None) -> np.ndarray:
    """Rescale by `factor` (INTER_LINEAR, as training), blend SxS windows, bilinear back to H x W."""
    h, w = img.shape[:2]
    sh, sw = max(1, round(h * factor)), max(1, round(w * factor))
    small = img if (sh, sw) == (h, w) else cv2.resize(img, (sw, sh), interpolation=cv2.INTER_LINEAR)
    prob = blend_tiles(small, lambda t: tile_probs(runtime, t), tile=_size(runtime), overlap=options.overlap,
                       batch=options.batch, floor=options.floor, stats=stats)
    if (sh, sw) == (h, w):
        return np.ascontiguousarray(prob)
    return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)


def median_nucleus_area(prob: np.ndarray, options: PredictOptions) -> float | None:
    labels = label_nuclei(prob >= options.threshold, options.min_area, options.split)
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    return float(np.median(areas)) if areas.size else None


def predict_prob(img: np.ndarray, runtime: Runtime, options: PredictOptions) -> tuple[np.ndarray, dict[str, Any]]:
    """Probability map at the image's size and what was done (scale, tiles)."""
    if options.mode == "resize":
        return predict_resize(img, runtime), {"scale": None, "n_tiles": 1}
    h, w = img.shape[:2]
    rule = options.scale
    meta: dict[str, Any] = {"scale_rule": rule if isinstance(rule, str) else "fixed"}
    if isinstance(rule, float):
        factor = rule
    elif rule.startswith("nuclei"):
        median = median_nucleus_area(predict_resize(img, runtime), options)
        meta["first_pass_median_area"] = median
        factor = scale_rules.nuclei_scale(median, h, w, _size(runtime), scale_rules.nuclei_target(rule))
    else:
        factor = scale_rules.geometric_scale(rule, h, w, _size(runtime))
    stats: dict[str, Any] = {}
    prob = predict_tiled(img, runtime, factor, options, stats)
    meta.update(scale=round(factor, 6), **stats)
    return prob, meta


def predict_image(img: np.ndarray, runtime: Runtime, options: PredictOptions | None = None) -> dict[str, Any]:
    """prob (float32 HxW), mask (bool), labels (int32), rows (nucleus table) and meta for one BGR uint8 image."""
    options = options or PredictOptions()
    prob, meta = predict_prob(img, runtime, options)
    mask = prob >= options.threshold
    labels = label_nuclei(mask, options.min_area, options.split)
    return {"prob": prob, "mask": mask, "labels": labels, "rows": nucleus_table(labels), "meta": meta}


def _png(arr: np.ndarray, what: str) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise OutputError(f"cannot encode {what} as PNG")
    return buf.tobytes()


def _csv(rows: list[list[Any]]) -> str:
    return "\n".join([",".join(CSV_HEADER)] + [",".join(str(v) for v in r) for r in rows]) + "\n"


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
    write_text_atomic(paths["nuclei"], _csv(result["rows"]))


def predict_one(path: str | Path, out_dir: str | Path, runtime: Runtime, options: PredictOptions | None = None,
                stem: str | None = None) -> dict[str, Any]:
    """Read, predict, write `<stem>_mask.png`, `_labels.png`, `_nuclei.csv` (+ `_prob.png`); return the record."""
    options = options or PredictOptions()
    path, out_dir = Path(path), Path(out_dir)
    t0 = time.perf_counter()
    img, info = read_image(path, options.bit16)
    result = predict_image(img, runtime, options)
    write_outputs(result, output_paths(out_dir, stem or path.stem, options), img)
    return {"image": str(path), "stem": stem or path.stem, "height": info.height, "width": info.width,
            "channels": info.channels, "dtype": info.dtype, "mode": options.mode, "nuclei": len(result["rows"]),
            "foreground_px": int(result["mask"].sum()), "seconds": round(time.perf_counter() - t0, 4),
            **result["meta"]}
