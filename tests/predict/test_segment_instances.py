"""Nuclei from a mask: counts, areas, centroids and boxes against hand-computed discs."""

from __future__ import annotations

import math

import cv2
import numpy as np

from unetpp.predict.instances import CSV_HEADER, label_nuclei, nucleus_table


def _disc(mask: np.ndarray, cy: int, cx: int, r: int) -> None:
    cv2.circle(mask, (cx, cy), r, 1, -1)


def test_separate_discs_counts_areas_centroids_boxes():
    m = np.zeros((120, 200), np.uint8)
    discs = [(30, 30, 12), (30, 150, 20), (90, 60, 8), (85, 160, 15)]  # (cy, cx, r)
    for cy, cx, r in discs:
        _disc(m, cy, cx, r)
    labels = label_nuclei(m > 0)
    rows = nucleus_table(labels)
    assert len(rows) == 4 and labels.max() == 4
    assert len(CSV_HEADER) == len(rows[0])
    # rows come in raster order of first pixel: (30,150,r20) starts at y=10, (30,30,r12) at y=18, then 70, 82
    expected = sorted(discs, key=lambda d: d[0] - d[2])
    for row, (cy, cx, r) in zip(rows, expected):
        label, area, y, x, y0, x0, y1, x1 = row
        # a rasterised disc of radius r: pi r^2 within half a pixel ring (pi r)
        assert abs(area - math.pi * r * r) <= math.pi * r, (r, area)
        assert abs(y - cy) < 0.01 and abs(x - cx) < 0.01  # symmetric about its centre
        assert (y0, x0, y1, x1) == (cy - r, cx - r, cy + r + 1, cx + r + 1)
        assert area == int((labels == label).sum())


def test_touching_discs_are_split_in_two_halves():
    m = np.zeros((100, 120), np.uint8)
    _disc(m, 50, 40, 20)
    _disc(m, 50, 76, 20)  # centres 36 apart, radius 20: they overlap by a 4-pixel lens
    labels = label_nuclei(m > 0)
    rows = nucleus_table(labels)
    assert len(rows) == 2
    union = int(m.sum())
    # lens area of two r=20 discs 36 apart: 2 r^2 acos(d/2r) - (d/2) sqrt(4r^2 - d^2) = 47.0 px
    assert abs(union - (2 * math.pi * 400 - 47.0)) < 2 * math.pi * 20
    for row, cx in zip(rows, (40, 76)):
        assert abs(row[1] - union / 2) < 0.03 * union  # each half
        assert abs(row[2] - 50) < 0.5 and abs(row[3] - cx) < 2.0
    assert labels[50, 40] != labels[50, 76]
    assert (labels > 0).sum() == union  # the split keeps every foreground pixel


def test_no_split_keeps_components_and_elongated_nucleus_stays_whole():
    m = np.zeros((100, 120), np.uint8)
    _disc(m, 50, 40, 20)
    _disc(m, 50, 76, 20)
    assert label_nuclei(m > 0, split=False).max() == 1
    e = np.zeros((60, 120), np.uint8)
    cv2.ellipse(e, (60, 30), (40, 10), 0, 0, 360, 1, -1)
    assert label_nuclei(e > 0).max() == 1


def test_specks_removed_and_empty_mask():
    m = np.zeros((50, 50), bool)
    m[5:7, 5:7] = True  # 4 px
    m[20:30, 20:30] = True  # 100 px
    labels = label_nuclei(m, min_area=10)
    assert labels.max() == 1 and (labels > 0).sum() == 100
    assert label_nuclei(m, min_area=0).max() == 2
    assert label_nuclei(np.zeros((8, 8), bool)).max() == 0
    assert nucleus_table(np.zeros((8, 8), np.int32)) == []
