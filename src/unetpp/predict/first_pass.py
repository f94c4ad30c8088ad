"""The first pass of the `nuclei` scale rule: how large is an image's median nucleus, in its own pixels?

The guide model, trained on whole DSB2018 images squeezed to 96x96, answers well for images of the sizes it was
trained on (up to 1388 px a side): squeeze, predict, resize back, measure the nuclei. On a larger image the
squeeze makes nuclei a pixel or less and the answer is wrong (a 5000x5000 mosaic of 256x256 fields: 1,779 px
instead of about 315). So an image larger than that is measured on windows of its own pixels instead, each
squeezed as a training image was: a ladder of window sides (256, 512, 1024, ...), a few windows per side spread
over the image, nuclei cut by a window's edge left out. The side whose nuclei appear at the model's input closest
to the training median size (TRAIN_MEDIAN_AREA_96) gives the estimate: at that side the model sees what it was
trained on.

`uncertain` says why an estimate should not be trusted (few nuclei, a size far from the training range); the
second pass checks the estimate against the nuclei it finds (predict/work.py, `scale_check`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from unetpp.predict.instances import label_nuclei
from unetpp.predict.scale import TRAIN_MEDIAN_AREA_96

WHOLE_IMAGE_MAX_SIDE = 1400  # the largest DSB2018 training image is 1040x1388: up to this, the squeeze is trained
LADDER_START = 256  # the commonest training size
WINDOWS_PER_SIDE = 3  # a 3x3 grid of windows per rung (fewer where the image is not much larger)
MIN_NUCLEI = 5  # fewer than this: the median says little
LABEL_SIDE = 512  # a window's probability is measured at up to this side (its areas scaled back)
WHOLE_LABEL_SIDE = 512  # a whole image's likewise, along its longer side (0: at its own size; 512 changes the
# estimate by more than 5 % on 1 of the 138 selection ids, and costs a tenth of the full-size labelling on 1 Mpx)
# At the model's input (96x96) training nuclei had a median of 15.8 px, quartiles 9.2 / 30.1 (predict/scale.py).
CONFIDENT_INPUT_AREA = (3.0, 150.0)
# The second pass agrees when its median nucleus is within this factor (in area) of the first pass's estimate.
AGREEMENT_FACTOR = 2.0


@dataclass(frozen=True)
class AreaEstimate:
    """The first pass's answer: median nucleus area in the image's pixels (None: no nucleus found)."""

    median_area: float | None
    n_nuclei: int
    window: int | None  # the native window side used; None: the whole image, squeezed
    n_windows: int
    input_area: float | None  # the median nucleus's area at the model's input
    uncertain: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _probs(runtime: Any, crops: list[np.ndarray], size: int, shape: tuple[int, int]) -> list[np.ndarray]:
    """Each crop squeezed to size x size (INTER_LINEAR, as data/prepare.py), predicted in one call, its
    foreground probability resized to `shape` (height, width): where the nuclei are measured, at most the crop's
    own size, less for a large one (the 96 px prediction holds no finer detail)."""
    from unetpp.data.preprocess import normalize
    from unetpp.eval.metrics import sigmoid

    x = np.stack([normalize(cv2.resize(c, (size, size))) for c in crops])
    probs = sigmoid(np.asarray(runtime.infer_padded(x)[0], np.float32)[:, 0])
    return [cv2.resize(p, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR) for p in probs]


def measuring_shape(h: int, w: int, limit: int | None = None) -> tuple[int, int]:
    """The (height, width) a whole image's probability is measured at: its own, or scaled down (aspect kept)
    so that its longer side is at most `limit` (WHOLE_LABEL_SIDE)."""
    limit = WHOLE_LABEL_SIDE if limit is None else limit
    if not limit or max(h, w) <= limit:
        return h, w
    f = limit / max(h, w)
    return max(1, round(h * f)), max(1, round(w * f))


def _areas(prob: np.ndarray, threshold: float, min_area: int, split: bool, drop_edge: bool) -> np.ndarray:
    labels = label_nuclei(prob >= threshold, min_area, split)
    areas = np.bincount(labels.ravel())
    if drop_edge:
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        areas[edge] = 0
    areas = areas[1:]
    return areas[areas > 0]


def _corners(length: int, side: int, n: int) -> list[int]:
    if length <= side:
        return [0]
    return sorted({round(i * (length - side) / (n - 1)) for i in range(n)}) if n > 1 else [(length - side) // 2]


def _judge(median: float | None, n: int, input_area: float | None, windows: bool) -> str | None:
    """Why an estimate is uncertain. A whole image of a training size is judged by its count only (its nuclei
    appear at the input as the training image's did, however small); windows also by the size at the input."""
    if median is None or n == 0:
        return "the first pass found no nucleus"
    if n < MIN_NUCLEI:
        return f"the first pass found only {n} nucleus/nuclei"
    lo, hi = CONFIDENT_INPUT_AREA
    if windows and input_area is not None and not lo <= input_area <= hi:
        return (f"the nuclei appear at {input_area:.1f} px at the model's input, outside the {lo:g}..{hi:g} px "
                "it was trained on")
    return None


def _estimate(areas: np.ndarray, window: int | None, n_windows: int, input_scale: float) -> AreaEstimate:
    median = float(np.median(areas)) if areas.size else None
    input_area = median * input_scale if median is not None else None
    return AreaEstimate(median, int(areas.size), window, n_windows, input_area,
                        _judge(median, int(areas.size), input_area, window is not None))


def estimate_nucleus_area(img: np.ndarray, runtime: Any, threshold: float = 0.5, min_area: int = 10,
                          split: bool = True) -> AreaEstimate:
    """The median nucleus area of a BGR uint8 image (see the module docstring)."""
    h, w = img.shape[:2]
    size = int(runtime.input_shape[-1])
    if max(h, w) <= WHOLE_IMAGE_MAX_SIDE:
        mh, mw = measuring_shape(h, w)
        f2 = (h * w) / (mh * mw)  # one pixel at the measuring size covers f2 of the image's
        prob = _probs(runtime, [img], size, (mh, mw))[0]
        areas = _areas(prob, threshold, max(1, round(min_area / f2)), split, drop_edge=False) * f2
        return _estimate(areas, None, 1, (size / h) * (size / w))
    best: AreaEstimate | None = None
    side = LADDER_START
    while side <= min(h, w):
        ys, xs = _corners(h, side, WINDOWS_PER_SIDE), _corners(w, side, WINDOWS_PER_SIDE)
        crops = [img[y:y + side, x:x + side] for y in ys for x in xs]
        at = min(side, LABEL_SIDE)
        f2 = (side / at) ** 2  # one pixel at the measuring size covers f2 of the image's
        areas = np.concatenate([_areas(p, threshold, max(1, round(min_area / f2)), split, drop_edge=True)
                                for p in _probs(runtime, crops, size, (at, at))]) * f2
        rung = _estimate(areas, side, len(crops), (size / side) ** 2)
        if best is None or (rung.n_nuclei >= MIN_NUCLEI and (best.n_nuclei < MIN_NUCLEI
                                                              or _distance(rung) < _distance(best))):
            best = rung
        side *= 2
    return best if best is not None else _estimate(np.zeros(0), None, 0, 1.0)


def _distance(e: AreaEstimate) -> float:
    """How far (in log area) the nuclei appear at the model's input from the training median."""
    return abs(math.log(max(e.input_area or 1e-6, 1e-6) / TRAIN_MEDIAN_AREA_96))


def scale_check(first: AreaEstimate, found_areas: np.ndarray, factor: float) -> dict[str, Any]:
    """The first pass's estimate against the nuclei the second pass found (their median area, image pixels)."""
    found = float(np.median(found_areas)) if found_areas.size else None
    reason = first.uncertain
    if reason is None and found is not None and first.median_area:
        ratio = found / first.median_area
        if not 1 / AGREEMENT_FACTOR <= ratio <= AGREEMENT_FACTOR:
            reason = (f"the segmentation's median nucleus ({found:.0f} px) is {ratio:.2f}x the first pass's "
                      f"estimate ({first.median_area:.0f} px)")
    elif reason is None and found is None:
        reason = "the segmentation found no nucleus"
    return {"first_pass": first.to_dict(), "result_median_area": found, "scale": round(factor, 6),
            "uncertain": reason}
