"""Overlay colours at contour positions; the contour equals what cv2.findContours/drawContours draws."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.report.overlay import PRED_COLOR, TRUE_COLOR, contour_mask, draw_overlay, write_overlay

GREEN, MAGENTA = [0, 255, 0], [255, 0, 255]


def test_colours_are_green_and_magenta_in_bgr():
    assert list(PRED_COLOR) == GREEN and list(TRUE_COLOR) == MAGENTA


def test_contour_is_the_inner_ring_and_touching_instances_keep_their_edge():
    lab = np.zeros((8, 12), np.uint8)
    lab[2:6, 1:5] = 1
    lab[2:6, 5:9] = 2  # touches 1
    lab[5:8, 10:12] = 3  # touches the image border
    c = contour_mask(lab)
    assert c[2, 1:5].all() and c[5, 1:5].all() and c[2:6, 1].all() and c[2:6, 4].all()
    assert not c[3:5, 2:4].any()  # interior
    assert c[3, 5] and c[3, 4]  # both sides of the shared edge
    assert c[7, 10] and c[7, 11] and c[6, 11]  # image border counts as outside
    assert not c[lab == 0].any()


@pytest.mark.parametrize("draw", [
    lambda m: cv2.circle(m, (20, 20), 9, 1, -1),
    lambda m: cv2.ellipse(m, (25, 25), (15, 6), 30, 0, 360, 1, -1),
    lambda m: cv2.rectangle(m, (30, 0), (49, 9), 1, -1),
])
def test_contour_matches_cv2_find_and_draw_contours(draw):
    m = np.zeros((40, 50), np.uint8)
    draw(m)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    ref = np.zeros_like(m)
    cv2.drawContours(ref, contours, -1, 1, 1)
    assert np.array_equal(contour_mask(m), ref.astype(bool))


def test_overlay_pixels_at_contours(tmp_path):
    img = np.full((20, 20, 4), 90, np.uint8)  # RGBA background, alpha dropped
    pred = np.zeros((20, 20), np.uint16)
    pred[5:10, 5:10] = 4
    true = np.zeros((20, 20), np.uint16)
    true[5:12, 5:12] = 1
    out = draw_overlay(img, pred, true)
    assert out.shape == (20, 20, 3)
    assert out[5, 5].tolist() == GREEN and out[9, 7].tolist() == GREEN  # predicted ring, drawn on top
    assert out[11, 11].tolist() == MAGENTA and out[11, 7].tolist() == MAGENTA  # true ring only
    assert out[7, 7].tolist() == [90, 90, 90] and out[0, 0].tolist() == [90, 90, 90]  # interior, background
    assert img[5, 5, 0] == 90  # the input is not modified
    only_pred = draw_overlay(img[..., 0], pred)  # grey input, no ground truth
    assert only_pred[11, 11].tolist() == [90, 90, 90] and only_pred[5, 5].tolist() == GREEN
    thick = draw_overlay(img, pred, thickness=2)
    assert thick[4, 7].tolist() == GREEN and thick[6, 7].tolist() == GREEN and thick[7, 7].tolist() == [90] * 3
    path = write_overlay(tmp_path / "o" / "x.png", img, pred, true)
    assert np.array_equal(cv2.imread(str(path)), out) and not list(path.parent.glob("*.tmp"))


def test_overlay_size_mismatch_names_both():
    with pytest.raises(InputError, match=r"prediction labels: expected the image's size \(4, 4\), found size \(4, 5\)"):
        draw_overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint16))
    with pytest.raises(InputError, match="uint8 image"):
        draw_overlay(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint16))
