"""Instance targets: foreground is the union, the border band follows each nucleus and widens with its size."""

from __future__ import annotations

import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.train.instance_targets import (
    BorderParams,
    border_band,
    gap_band,
    instance_targets,
    median_nucleus_area,
)


def _disc(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_two_touching_squares_have_border_on_their_shared_edge():
    lab = np.zeros((20, 30), np.int32)
    lab[5:15, 5:15], lab[5:15, 15:25] = 1, 2
    t = instance_targets(lab, BorderParams(ratio=0.0, w_min=1, w_max=1, gap=0))
    assert t.shape == (2, 20, 30) and t.dtype == np.uint8
    assert np.array_equal(t[0], (lab > 0).astype(np.uint8))
    assert t[1][5:15, 14].all() and t[1][5:15, 15].all()  # both sides of the contact line
    assert not t[1][7:13, 7:13].any() and not t[1][7:13, 17:23].any()  # interiors stay body
    assert t[1][lab == 0].sum() == 0  # no gap band asked for


def test_gap_band_marks_background_between_two_close_nuclei_only():
    lab = np.zeros((20, 40), np.int32)
    lab[5:15, 5:15], lab[5:15, 17:27] = 1, 2  # a 2-px gap at columns 15, 16
    gap = gap_band(lab, 2)
    assert gap[5:15, 15:17].all()
    assert not gap[:, 30:].any() and not gap[lab > 0].any()
    one = np.zeros((20, 20), np.int32)
    one[5:15, 5:15] = 1
    assert not gap_band(one, 2).any()


def test_border_width_grows_with_nucleus_size():
    params = BorderParams(ratio=0.25, w_min=1, w_max=4, gap=0)
    assert [params.width(a) for a in (10, 150, 600, 5000)] == [1, 2, 3, 4]
    small = _disc((80, 80), 20, 20, 4).astype(np.int32)
    big = 2 * _disc((80, 80), 50, 50, 20).astype(np.int32)
    band = border_band(small + big, params)
    from scipy import ndimage as ndi

    depth_small = ndi.distance_transform_edt(small > 0)[band & (small > 0)].max()
    depth_big = ndi.distance_transform_edt(big > 0)[band & (big > 0)].max()
    assert depth_small <= 1 < 3 <= depth_big <= 4


def test_image_edge_is_not_an_outline_and_empty_labels_give_zeros():
    lab = np.zeros((10, 10), np.int32)
    lab[:, :5] = 1  # touches three image edges
    band = border_band(lab, BorderParams(ratio=0.0, w_min=1, w_max=1))
    assert band[:, 4].all() and not band[2:8, 0:4].any()
    assert not instance_targets(np.zeros((6, 7), np.int32)).any()


def test_median_area_and_bad_input():
    lab = np.zeros((10, 10), np.int32)
    lab[0, :2], lab[1, :4], lab[2, :9] = 1, 2, 3
    assert median_nucleus_area(lab) == 4.0
    assert median_nucleus_area(np.zeros((3, 3), np.int32)) is None
    with pytest.raises(InputError, match="2-D"):
        instance_targets(np.zeros((2, 3, 3), np.int32))
