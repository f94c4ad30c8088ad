"""The API's progress and cancel hooks (what a GUI needs): progress rises tile by tile to 1.0 without changing the
labels; a cancel stops a run between runtime calls with Cancelled and leaves the model usable."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

import unetpp
from unetpp.errors import Cancelled


def _discs_rgb() -> np.ndarray:
    img = np.full((256, 256, 3), 8, np.uint8)
    for cy, cx, r in [(40, 50, 11), (40, 200, 14), (120, 120, 12), (190, 60, 10), (200, 210, 13)]:
        cv2.circle(img, (cx, cy), r, (190, 170, 150), -1)
    return img


@pytest.fixture(scope="module")
def model(instance_size):
    # the model's own fixed windows in small batches: several runtime calls per image (by default a small image
    # is one window)
    with unetpp.load(batch=2, window=instance_size) as m:
        yield m


def test_progress_rises_to_one_and_changes_nothing(model) -> None:
    images = [_discs_rgb(), _discs_rgb()[:, ::-1].copy()]
    seen: list[float] = []
    with_progress = model.predict_many(images, progress=seen.append)
    plain = model.predict_many(images)
    for (a, _), (b, _) in zip(with_progress, plain):
        np.testing.assert_array_equal(a, b)
    assert seen[-1] == 1.0 and seen.count(1.0) == 1
    assert all(x <= y for x, y in zip(seen, seen[1:])) and all(0.0 < x <= 1.0 for x in seen)
    n_tiles = sum(info["meta"]["n_tiles"] for _, info in plain)
    assert n_tiles >= 4
    assert len(seen) >= n_tiles // 2  # one report per runtime call of 2 tiles at least: tile by tile, not per image


def test_cancel_before_and_during_a_run(model) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        model.predict(_discs_rgb(), cancel=stop)

    stop = threading.Event()
    seen: list[float] = []

    def cancel_after_first(fraction: float) -> None:
        seen.append(fraction)
        stop.set()

    with pytest.raises(Cancelled):
        model.predict_many([_discs_rgb()] * 4, progress=cancel_after_first, cancel=stop)
    assert seen and seen[-1] < 1.0  # it stopped part-way
    labels, info = model.predict(_discs_rgb())  # the model is still usable, with the same result as before
    assert info["nuclei"] == 5 and labels.max() == 5
