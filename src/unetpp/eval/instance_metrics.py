"""The 2018 Data Science Bowl metric (instance-level average precision) and pixel scores at full resolution.

Per image (REFERENCE.md, the Kaggle definition): the IoU of every (predicted, true) instance pair; for each
threshold t in 0.50, 0.55, ..., 0.95 a true object counts as a true positive when a predicted object overlaps it
with IoU > t (strictly); FP = predicted objects without such a match, FN = true objects without one;
precision(t) = TP / (TP + FP + FN). Image score = mean over t; dataset score = mean over images.

Both inputs are label images (one integer id per pixel, 0 = background), so instances of one side never overlap.
Then for t >= 0.5 a true object can have at most one predicted object with IoU > t and vice versa, and the
one-to-one matching is simply "pairs with IoU > t"; thresholds below 0.5 would need an assignment and are refused.

Edge cases (our convention, stated in the summary JSON): no true and no predicted objects -> precision 1 at every
threshold (nothing to find, nothing wrongly found; the same as the guide's pixel IoU scoring empty vs empty as 1);
no true objects but some predicted -> 0; true objects but no prediction -> 0 (both follow from the formula).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from unetpp.errors import InputError, expected_found
from unetpp.eval.metrics import confusion_counts, dice_from_counts, iou_from_counts

THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))
EMPTY_IMAGE_PRECISION = 1.0
_LUT_LIMIT = 1 << 20  # labels above this are compacted with np.unique instead of a lookup table


def relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Map the ids present to 1..n in increasing order (0 stays background); returns (int64 labels, n)."""
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise InputError(expected_found("label image", "a 2-D array", f"shape {lab.shape}"))
    if lab.dtype == np.bool_:
        lab = lab.astype(np.uint8)
    if not np.issubdtype(lab.dtype, np.integer):
        raise InputError(expected_found("label image", "integer instance ids (0 = background)", f"dtype {lab.dtype}"))
    if lab.size == 0:
        return lab.astype(np.int64), 0
    lo, hi = int(lab.min()), int(lab.max())
    if lo < 0:
        raise InputError(expected_found("label image", "ids >= 0", f"minimum {lo}"))
    if hi < _LUT_LIMIT:
        present = np.flatnonzero(np.bincount(lab.ravel(), minlength=1))
        present = present[present > 0]
        lut = np.zeros(hi + 1, np.int64)
        lut[present] = np.arange(1, present.size + 1)
        return lut[lab], int(present.size)
    values, inverse = np.unique(lab, return_inverse=True)
    out = inverse.reshape(lab.shape).astype(np.int64)
    if values[0] != 0:
        out += 1
    return out, int(values.size - (values[0] == 0))


def joint_histogram(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(n_pred + 1) x (n_true + 1) pixel counts of every (pred id, true id) pair; row/column 0 is background."""
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape:
        raise InputError(expected_found("predicted and true label images", "the same size",
                                        f"{pred.shape} and {true.shape}"))
    p, n_p = relabel(pred)
    t, n_t = relabel(true)
    k = n_t + 1
    return np.bincount((p * k + t).ravel(), minlength=(n_p + 1) * k).reshape(n_p + 1, k)


def iou_matrix(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """IoU of every (predicted, true) instance pair, shape (n_pred, n_true), from one joint histogram."""
    hist = joint_histogram(pred, true)
    inter = hist[1:, 1:].astype(np.float64)
    area_p = hist[1:, :].sum(axis=1)
    area_t = hist[:, 1:].sum(axis=0)
    union = area_p[:, None] + area_t[None, :] - inter
    return inter / np.maximum(union, 1)


def _check_thresholds(thresholds: Sequence[float]) -> np.ndarray:
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or (t < 0.5).any() or (t >= 1).any():
        raise InputError(expected_found("IoU thresholds", "one or more values in [0.5, 1)", list(thresholds)))
    return t


@dataclass(frozen=True)
class InstanceScore:
    """One image: counts and precision per threshold, and their mean (the image's DSB2018 score)."""

    n_pred: int
    n_true: int
    thresholds: tuple[float, ...]
    tp: tuple[int, ...]
    fp: tuple[int, ...]
    fn: tuple[int, ...]
    precision: tuple[float, ...]

    @property
    def ap(self) -> float:
        return float(np.mean(self.precision))

    def at(self, t: float) -> float:
        """precision(t) for one of the thresholds."""
        for thr, p in zip(self.thresholds, self.precision):
            if abs(thr - t) < 1e-9:
                return p
        raise InputError(expected_found("threshold", f"one of {list(self.thresholds)}", t))


def matched_area_ratios(pred: np.ndarray, true: np.ndarray, min_iou: float = 0.5) -> np.ndarray:
    """Predicted area / true area of each true nucleus matched with IoU > min_iou (one-to-one for min_iou >= 0.5):
    the outline bias; a median below 1 means the predicted outlines sit inside the annotated ones."""
    hist = joint_histogram(pred, true)
    inter = hist[1:, 1:].astype(np.float64)
    if inter.size == 0:
        return np.zeros(0)
    area_p = hist[1:, :].sum(axis=1).astype(np.float64)
    area_t = hist[:, 1:].sum(axis=0).astype(np.float64)
    iou = inter / np.maximum(area_p[:, None] + area_t[None, :] - inter, 1)
    pi, ti = np.nonzero(iou > min_iou)
    return area_p[pi] / area_t[ti]


def score_from_iou(iou: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> InstanceScore:
    """Counts and precision per threshold from an (n_pred, n_true) IoU matrix."""
    iou = np.asarray(iou, dtype=np.float64)
    t = _check_thresholds(thresholds)
    n_p, n_t = iou.shape
    best = iou.max(axis=0) if n_p else np.zeros(n_t)  # best IoU of each true object
    tp = (best[None, :] > t[:, None]).sum(axis=1)
    fp, fn = n_p - tp, n_t - tp
    denom = tp + fp + fn
    prec = np.where(denom > 0, tp / np.maximum(denom, 1), EMPTY_IMAGE_PRECISION)
    return InstanceScore(n_p, n_t, tuple(float(x) for x in t), tuple(int(x) for x in tp), tuple(int(x) for x in fp),
                         tuple(int(x) for x in fn), tuple(float(x) for x in prec))


def instance_score(pred: np.ndarray, true: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> InstanceScore:
    """The DSB2018 score of one image from its predicted and true label images."""
    return score_from_iou(iou_matrix(pred, true), thresholds)


def phantom_count(pred: np.ndarray, true: np.ndarray) -> int:
    """Predicted nuclei with no pixel on any true nucleus (outlines on empty background)."""
    found = set(np.unique(pred[pred > 0]).tolist())
    return len(found - set(np.unique(pred[(pred > 0) & (true > 0)]).tolist()))


def dataset_score(scores: Sequence[InstanceScore]) -> float:
    """Mean of the image scores (the Kaggle leaderboard figure)."""
    if not scores:
        raise InputError(expected_found("DSB2018 score", "at least one image", "none"))
    return float(np.mean([s.ap for s in scores]))


def mean_precision_at(scores: Sequence[InstanceScore], t: float) -> float:
    """Mean over images of precision(t), e.g. AP@0.5 and AP@0.75."""
    if not scores:
        raise InputError(expected_found("precision at a threshold", "at least one image", "none"))
    return float(np.mean([s.at(t) for s in scores]))


def pixel_scores(pred_fg: np.ndarray, true_fg: np.ndarray) -> tuple[float, float]:
    """(IoU, Dice) of two foreground masks with the guide's smoothing (1e-5): empty vs empty scores 1."""
    tp, fp, fn, _ = confusion_counts(np.asarray(pred_fg) > 0, np.asarray(true_fg) > 0)
    return iou_from_counts(tp, fp, fn), dice_from_counts(tp, fp, fn)
