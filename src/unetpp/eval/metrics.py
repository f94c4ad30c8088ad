"""Binary segmentation metrics as pure functions: confusion counts first, then scores with an explicit reduction.

Two IoU figures exist and are never mixed (REFERENCE.md):
- the guide's (postprocess_nested_unet.py): logits > 0.5 (no sigmoid), per-image IoU, plain mean over images;
- upstream's (val.py): sigmoid(logits) > 0.5, IoU pooled over each batch of 16, mean weighted by batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unetpp.errors import InputError, expected_found

SMOOTH = 1e-5


def binarize_gt(mask: np.ndarray) -> np.ndarray:
    """Ground truth as the guide and upstream read it: mask / 255 > 0.5 (a bool mask is kept as is)."""
    mask = np.asarray(mask)
    if mask.dtype == np.bool_:
        return mask
    return mask.astype(np.float64) / 255.0 > 0.5


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function in float32, as torch.sigmoid on float32 logits; written with tanh, so large negative
    logits give 0 without an overflow in exp."""
    x = np.asarray(x, dtype=np.float32)
    return (np.float32(0.5) * (np.float32(1.0) + np.tanh(np.float32(0.5) * x))).astype(np.float32)


def confusion_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) over all elements of two equally shaped boolean arrays."""
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise InputError(expected_found("prediction and ground truth", "the same shape",
                                        f"{pred.shape} and {gt.shape}"))
    tp = int(np.count_nonzero(pred & gt))
    fp = int(np.count_nonzero(pred & ~gt))
    fn = int(np.count_nonzero(~pred & gt))
    return tp, fp, fn, pred.size - tp - fp - fn


def iou_from_counts(tp: int, fp: int, fn: int, smooth: float = SMOOTH) -> float:
    """(|P ∧ G| + smooth) / (|P ∨ G| + smooth): empty vs empty scores 1."""
    return (tp + smooth) / (tp + fp + fn + smooth)


def dice_from_counts(tp: int, fp: int, fn: int, smooth: float = SMOOTH) -> float:
    """(2|P ∧ G| + smooth) / (|P| + |G| + smooth): empty vs empty scores 1."""
    return (2 * tp + smooth) / (2 * tp + fp + fn + smooth)


def guide_pred(logits: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The guide's prediction: raw logits > threshold (0.5 on logits, i.e. probability > 0.6225)."""
    return np.asarray(logits) > threshold


def guide_iou(logits: np.ndarray, gt_mask: np.ndarray, threshold: float = 0.5) -> float:
    """Per-image IoU as the guide's post-processing (no sigmoid)."""
    tp, fp, fn, _ = confusion_counts(guide_pred(logits, threshold), binarize_gt(gt_mask))
    return iou_from_counts(tp, fp, fn)


def dice(logits: np.ndarray, gt_mask: np.ndarray, threshold: float = 0.5) -> float:
    """Per-image Dice with the guide's binarisation (logits > threshold) and the same smoothing."""
    tp, fp, fn, _ = confusion_counts(guide_pred(logits, threshold), binarize_gt(gt_mask))
    return dice_from_counts(tp, fp, fn)


def upstream_iou(logits_list: Sequence[np.ndarray], gts_list: Sequence[np.ndarray], batch_size: int = 16) -> float:
    """Upstream val.py: sigmoid > 0.5, IoU pooled over each consecutive batch, mean weighted by batch size."""
    if len(logits_list) != len(gts_list):
        raise InputError(expected_found("upstream IoU inputs", "as many ground truths as predictions",
                                        f"{len(gts_list)} and {len(logits_list)}"))
    if not logits_list:
        raise InputError(expected_found("upstream IoU inputs", "at least one image", "none"))
    if batch_size < 1:
        raise InputError(expected_found("batch size", "a positive integer", batch_size))
    total, weight = 0.0, 0
    for start in range(0, len(logits_list), batch_size):
        tp = fp = fn = 0
        chunk = range(start, min(start + batch_size, len(logits_list)))
        for i in chunk:
            t, f, n, _ = confusion_counts(sigmoid(logits_list[i]) > 0.5, binarize_gt(gts_list[i]))
            tp, fp, fn = tp + t, fp + f, fn + n
        total += iou_from_counts(tp, fp, fn) * len(chunk)
        weight += len(chunk)
    return total / weight
