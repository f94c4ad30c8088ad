"""The DSB2018 instance metric and the full-resolution pixel scores on hand-built label images."""

from __future__ import annotations

import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.eval.instance_metrics import (
    THRESHOLDS,
    dataset_score,
    instance_score,
    iou_matrix,
    joint_histogram,
    mean_precision_at,
    phantom_count,
    pixel_scores,
    relabel,
)

E = 1e-5


def lab(shape=(80, 80), **boxes) -> np.ndarray:
    """Label image from boxes given as id_<k>=(r0, r1, c0, c1)."""
    out = np.zeros(shape, np.uint16)
    for name, (r0, r1, c0, c1) in boxes.items():
        out[r0:r1, c0:c1] = int(name.split("_")[1])
    return out


def test_thresholds_are_the_ten_kaggle_values():
    assert THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_iou_06_counts_only_below_06():
    true = lab(id_1=(0, 10, 0, 10))  # 100 px
    pred = lab(id_1=(0, 6, 0, 10))  # 60 px inside: IoU 60/100 = 0.6
    assert iou_matrix(pred, true) == pytest.approx(np.array([[0.6]]))
    s = instance_score(pred, true)
    assert s.tp == (1, 1) + (0,) * 8 and s.fp == (0, 0) + (1,) * 8 and s.fn == s.fp
    assert s.precision == (1.0, 1.0) + (0.0,) * 8
    assert s.ap == pytest.approx(0.2)


def test_shifted_squares_and_strict_threshold():
    # 10x10 squares shifted 2 rows: inter 80, union 120, IoU 2/3 -> TP for t = .50 .55 .60 .65
    s = instance_score(lab(id_1=(2, 12, 0, 10)), lab(id_1=(0, 10, 0, 10)))
    assert s.ap == pytest.approx(0.4)
    # IoU exactly 0.75 (150/200) is not a match at t = 0.75 (IoU > t)
    s = instance_score(lab(id_4=(0, 10, 0, 15)), lab(id_9=(0, 10, 0, 20)))
    assert s.at(0.7) == 1.0 and s.at(0.75) == 0.0 and s.ap == pytest.approx(0.5)


def test_mixed_image_by_hand_with_sparse_ids():
    # true A, B, C (ids 5, 9, 11); pred: A exact (id 3), B 6/10 rows (id 7, IoU 0.6), a false blob (id 200); C missed
    true = lab(id_5=(0, 10, 0, 10), id_9=(20, 30, 20, 30), id_11=(40, 50, 40, 50))
    pred = lab(id_3=(0, 10, 0, 10), id_7=(20, 26, 20, 30), id_200=(60, 64, 60, 64))
    assert iou_matrix(pred, true) == pytest.approx(np.array([[1, 0, 0], [0, 0.6, 0], [0, 0, 0]]))
    s = instance_score(pred, true)
    assert (s.n_pred, s.n_true) == (3, 3)
    # t = .50, .55: TP 2, FP 1, FN 1 -> 2/4; t >= .60 (8 values): TP 1, FP 2, FN 2 -> 1/5
    assert s.precision == pytest.approx((0.5, 0.5) + (0.2,) * 8)
    assert s.ap == pytest.approx((2 * 0.5 + 8 * 0.2) / 10)


def test_perfect_prediction_scores_one_whatever_the_ids():
    true = np.zeros((64, 64), np.uint16)
    for k in range(16):
        r, c = divmod(k, 4)
        true[r * 16 + 2: r * 16 + 12, c * 16 + 1: c * 16 + 14] = k + 1
    pred = np.where(true > 0, 1000 - true.astype(np.int64), 0)  # same nuclei, other ids
    s = instance_score(pred, true)
    assert s.ap == 1.0 and s.tp == (16,) * 10 and s.fp == (0,) * 10


def test_touching_nuclei_are_kept_apart():
    true = lab(id_1=(0, 10, 0, 10), id_2=(0, 10, 10, 20))  # adjacent, no gap
    assert instance_score(true.copy(), true).ap == 1.0
    assert instance_score(lab(id_1=(0, 10, 0, 20)), true).ap == 0.0  # merged: IoU 0.5 with each, never > 0.5


@pytest.mark.parametrize("pred,true,expected", [
    (lab(id_1=(0, 10, 0, 10), id_2=(0, 10, 10, 20)), lab(id_1=(0, 10, 0, 20)), 0.0),  # split in halves: IoU 0.5
    (lab(id_1=(0, 10, 0, 14), id_2=(0, 10, 14, 20)), lab(id_1=(0, 10, 0, 20)), 0.2),  # IoU .7/.3: 4 x TP1 FP1 FN0
    (lab(id_1=(0, 10, 0, 20)), lab(id_1=(0, 10, 0, 14), id_2=(0, 10, 14, 20)), 0.2),  # merge: 4 x TP1 FP0 FN1
])
def test_split_and_merge(pred, true, expected):
    assert instance_score(pred, true).ap == pytest.approx(expected)


def test_empty_cases():
    empty, one = lab(), lab(id_1=(0, 5, 0, 5))
    both = instance_score(empty, empty)
    assert (both.n_pred, both.n_true, both.ap) == (0, 0, 1.0)  # our convention: nothing to find, nothing found
    assert instance_score(one, empty).ap == 0.0 and instance_score(one, empty).fp == (1,) * 10
    assert instance_score(empty, one).ap == 0.0 and instance_score(empty, one).fn == (1,) * 10


def test_dataset_score_and_ap_at_threshold_are_means_over_images():
    a = instance_score(lab(id_1=(0, 6, 0, 10)), lab(id_1=(0, 10, 0, 10)))  # 0.2, p(.5)=1, p(.75)=0
    b = instance_score(lab(id_1=(0, 10, 0, 10)), lab(id_1=(0, 10, 0, 10)))  # 1.0
    assert dataset_score([a, b]) == pytest.approx(0.6)
    assert mean_precision_at([a, b], 0.5) == 1.0 and mean_precision_at([a, b], 0.75) == 0.5
    with pytest.raises(InputError, match="at least one image"):
        dataset_score([])
    with pytest.raises(InputError, match="one of"):
        a.at(0.3)


def test_joint_histogram_counts_pairs():
    pred = np.array([[0, 1, 1], [2, 2, 0]])
    true = np.array([[0, 0, 4], [4, 4, 4]])
    # rows: pred bg, 1, 2; cols: true bg, 4
    assert joint_histogram(pred, true).tolist() == [[1, 1], [1, 1], [0, 2]]


def test_relabel_lookup_and_large_ids():
    out, n = relabel(np.array([[0, 40, 40], [7, 0, 40]], np.uint16))
    assert n == 2 and out.tolist() == [[0, 2, 2], [1, 0, 2]]
    out, n = relabel(np.array([[5_000_000, 3], [3, 9_000_000]], np.int64))  # no background, ids past the table
    assert n == 3 and out.tolist() == [[2, 1], [1, 3]]


@pytest.mark.parametrize("call,match", [
    (lambda: instance_score(lab((4, 4)), lab((4, 5))), r"the same size, found \(4, 4\) and \(4, 5\)"),
    (lambda: instance_score(lab(), lab(), thresholds=(0.3,)), r"values in \[0.5, 1\)"),
    (lambda: relabel(np.zeros((3, 3), np.float32)), "integer instance ids"),
    (lambda: relabel(np.full((2, 2), -1)), "ids >= 0"),
])
def test_bad_inputs_name_expected_and_found(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_pixel_scores_by_hand():
    pred = lab(id_1=(5, 15, 0, 10)) > 0  # 100 px, 50 of them on the truth
    true = lab(id_3=(0, 10, 0, 10))
    iou, dice = pixel_scores(pred, true)
    assert iou == pytest.approx((50 + E) / (150 + E)) and dice == pytest.approx((100 + E) / (200 + E))
    assert pixel_scores(lab() > 0, lab()) == (1.0, 1.0)


def test_phantoms_are_predicted_nuclei_touching_no_true_one():
    true = np.zeros((6, 6), np.int32)
    true[0:2, 0:2] = 1
    pred = np.zeros((6, 6), np.int32)
    pred[0:2, 0:2] = 7  # on a true nucleus
    pred[1:3, 2:4] = 3  # one corner pixel next to it, none on it: a phantom
    pred[4:6, 4:6] = 9  # on empty background: a phantom
    assert phantom_count(pred, true) == 2
    pred[1, 1:3] = 3  # now one of its pixels lies on the true nucleus
    assert phantom_count(pred, true) == 1
    assert phantom_count(np.zeros_like(pred), true) == 0
