"""Metrics on hand-computed cases: the guide's per-image IoU and upstream's batch-pooled IoU."""

from __future__ import annotations

import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.eval.metrics import confusion_counts, dice, guide_iou, upstream_iou

E = 1e-5


def test_guide_iou_hand_case():
    logits = np.array([[0.6, 0.4], [0.2, 0.9]], np.float32)  # pred: (0,0), (1,1)
    gt = np.array([[255, 255], [0, 0]], np.uint8)  # gt: (0,0), (0,1)
    assert guide_iou(logits, gt) == pytest.approx((1 + E) / (3 + E), abs=1e-12)
    assert dice(logits, gt) == pytest.approx((2 + E) / (4 + E), abs=1e-12)
    assert confusion_counts(logits > 0.5, gt > 127) == (1, 1, 1, 1)


def test_empty_vs_empty_scores_one():
    z = np.zeros((4, 4), np.float32)
    assert guide_iou(z - 3, np.zeros((4, 4), np.uint8)) == 1.0
    assert dice(z - 3, np.zeros((4, 4), np.uint8)) == 1.0


def test_threshold_is_half_on_raw_logits_not_zero():
    logits = np.full((4, 4), 0.3, np.float32)  # sigmoid(0.3) = 0.574 > 0.5, but 0.3 is not > 0.5
    empty = np.zeros((4, 4), np.uint8)
    assert guide_iou(logits, empty) == 1.0  # guide: nothing predicted
    assert upstream_iou([logits], [empty]) == pytest.approx(E / (16 + E))  # upstream: all 16 predicted
    exactly = np.full((2, 2), 0.5, np.float32)
    assert guide_iou(exactly, np.full((2, 2), 255, np.uint8)) == pytest.approx(E / (4 + E))  # strict >


def test_gt_binarisation_mask_over_255_above_half():
    logits = np.array([[1.0, 1.0]], np.float32)
    gt = np.array([[128, 127]], np.uint8)  # 128/255 = 0.502 counts, 127/255 = 0.498 does not
    assert guide_iou(logits, gt) == pytest.approx((1 + E) / (2 + E))


def test_upstream_iou_pools_each_batch_and_weights_by_size():
    pos, neg = 2.0, -2.0
    a_logit = np.array([[pos, neg], [neg, neg]], np.float32)
    a_gt = np.array([[255, 0], [0, 0]], np.uint8)  # tp 1
    b_logit = np.array([[pos, pos], [neg, neg]], np.float32)
    b_gt = np.zeros((2, 2), np.uint8)  # fp 2
    c_logit = np.array([[pos, neg], [neg, neg]], np.float32)
    c_gt = np.array([[255, 255], [0, 0]], np.uint8)  # tp 1, fn 1
    got = upstream_iou([a_logit, b_logit, c_logit], [a_gt, b_gt, c_gt], batch_size=2)
    batch1 = (1 + E) / (3 + E)  # pooled over a and b (the per-image mean would be about 0.5)
    batch2 = (1 + E) / (2 + E)
    assert got == pytest.approx((2 * batch1 + 1 * batch2) / 3, abs=1e-12)
    # one batch of 16 pools all three
    assert upstream_iou([a_logit, b_logit, c_logit], [a_gt, b_gt, c_gt]) == pytest.approx((2 + E) / (5 + E))


def test_metric_input_errors():
    with pytest.raises(InputError, match="same shape"):
        guide_iou(np.zeros((2, 2)), np.zeros((3, 3), np.uint8))
    with pytest.raises(InputError, match="at least one image"):
        upstream_iou([], [])
