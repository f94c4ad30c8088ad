"""labels_from_body_border on hand-made probability maps."""

from __future__ import annotations

import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.predict.seeds import SeedParams, labels_from_body_border


def _disc(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _touching_discs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    a, b = _disc((64, 64), 32, 22, 10), _disc((64, 64), 32, 41, 10)
    fg = (a | b).astype(np.float32) * 0.95
    border = np.zeros_like(fg)
    border[:, 30:34] = 0.9  # the band where the two discs meet
    border[~(a | b)] = 0.0
    return fg, border, a, b


@pytest.mark.parametrize("flood", ["border", "distance"])
def test_two_touching_discs_with_a_border_band_give_two_nuclei(flood):
    fg, border, a, b = _touching_discs()
    labels = labels_from_body_border(fg, border, SeedParams(flood=flood))
    assert labels.dtype == np.int32 and labels.max() == 2
    assert np.array_equal(labels > 0, a | b)  # the watershed regrows the band: the union is covered exactly
    left, right = labels[32, 15], labels[32, 48]
    assert left != right and (labels[a & ~b & (np.arange(64)[None, :] < 28)] == left).all()


def test_without_the_band_touching_discs_are_one_nucleus():
    fg, border, _, _ = _touching_discs()
    assert labels_from_body_border(fg, np.zeros_like(border)).max() == 1


def test_one_disc_is_one_nucleus_and_empty_is_none():
    d = _disc((40, 40), 20, 20, 8).astype(np.float32)
    ring = d - _disc((40, 40), 20, 20, 6)
    assert labels_from_body_border(d, ring).max() == 1
    empty = np.zeros((40, 40), np.float32)
    out = labels_from_body_border(empty, empty)
    assert out.shape == (40, 40) and out.max() == 0


def test_small_objects_are_removed_holes_filled_unseeded_kept():
    fg = np.zeros((40, 40), np.float32)
    fg[2:4, 2:4] = 1  # 4 px speck
    fg[10:30, 10:30] = 1
    fg[19:21, 19:21] = 0  # a hole
    border = np.zeros_like(fg)
    labels = labels_from_body_border(fg, border, SeedParams(min_area=8))
    assert labels.max() == 1 and labels[20, 20] == 1 and labels[2, 2] == 0
    all_border = np.where(fg > 0, 1.0, 0.0).astype(np.float32)  # no seed at all: the component stays one nucleus
    assert labels_from_body_border(fg, all_border).max() == 1
    assert labels_from_body_border(fg, all_border, SeedParams(keep_unseeded=False)).max() == 0


def test_faint_objects_are_dropped_by_mean_foreground():
    """Two separate discs, one confident (p 0.95) and one faint (p 0.75, above t_fg): min_mean_fg 0.8 (and the
    default 0.9) keeps only the confident one; 0 (off) keeps both."""
    fg = np.zeros((64, 64), np.float32)
    yy, xx = np.mgrid[:64, :64]
    fg[(yy - 16) ** 2 + (xx - 16) ** 2 <= 49] = 0.95
    fg[(yy - 44) ** 2 + (xx - 44) ** 2 <= 49] = 0.75
    border = np.zeros_like(fg)
    assert labels_from_body_border(fg, border, SeedParams(min_mean_fg=0.0)).max() == 2
    for params in (SeedParams(min_mean_fg=0.8), SeedParams()):
        kept = labels_from_body_border(fg, border, params)
        assert kept.max() == 1 and kept[16, 16] == 1 and kept[44, 44] == 0


def test_bad_inputs_are_refused():
    with pytest.raises(InputError, match="one size"):
        labels_from_body_border(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(InputError, match="flood"):
        SeedParams(flood="sideways")
    with pytest.raises(InputError, match="t_fg"):
        SeedParams(t_fg=1.5)
