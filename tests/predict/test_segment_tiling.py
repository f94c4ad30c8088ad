"""The tiling arithmetic with deterministic per-tile functions (pure numpy), and its bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from tile_harness import blend_tiles

from unetpp.errors import InputError
from unetpp.predict.tiling import blend_window, count_windows, iter_windows, window_starts


def test_window_starts_cover_evenly_with_the_overlap():
    assert window_starts(96, 96, 0.25) == [0]
    assert window_starts(50, 96, 0.25) == [0]
    assert window_starts(168, 96, 0.25) == [0, 72]  # stride 72 fits exactly
    s = window_starts(1000, 96, 0.25)
    assert s[0] == 0 and s[-1] == 1000 - 96
    gaps = np.diff(s)
    assert gaps.max() <= 72 and gaps.max() - gaps.min() <= 1  # evenly spread, overlap >= 24 px
    assert count_windows(1000, 500, 96, 0.5) == len(window_starts(1000, 96, 0.5)) * len(window_starts(500, 96, 0.5))
    assert next(iter(iter_windows(300, 300, 96, 0.25))) == (0, 0)
    with pytest.raises(InputError):
        window_starts(100, 96, 1.0)


def test_window_is_positive_symmetric_and_peaks_in_the_middle():
    w = blend_window(96, 0.05)
    assert w.shape == (96, 96) and w.min() > 0.05 ** 2 * 0.99 and w.max() <= 1.0
    np.testing.assert_allclose(w, w[::-1, ::-1])
    assert w[47, 47] > 0.99 and w[0, 0] < 0.01


@pytest.mark.parametrize("shape", [(250, 333), (96, 96), (40, 130), (1, 1), (7, 300)])
@pytest.mark.parametrize("overlap,batch", [(0.25, 16), (0.5, 3), (0.0, 1)])
def test_a_per_pixel_function_is_reproduced_exactly(shape, overlap, batch):
    """fn returns each tile's own pixel values: any weighted blend of identical values gives them back, so the
    output equals the input only if every tile is taken from and put back at the right place (and padding cut)."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    out = blend_tiles(img, lambda t: t[..., 1].astype(np.float32) / 255.0, tile=96, overlap=overlap, batch=batch)
    assert out.shape == shape and out.dtype == np.float32
    np.testing.assert_allclose(out, img[..., 1] / 255.0, atol=1e-6)


def test_blend_of_per_tile_constants_matches_brute_force():
    """fn returns a constant per tile (its top-left pixel's value): the output must be sum(c w) / sum(w)."""
    h, w, t = 200, 170, 96
    img = np.random.default_rng(2).integers(0, 256, (h, w, 1), dtype=np.uint8)
    got = blend_tiles(img, lambda tiles: np.broadcast_to(tiles[:, :1, :1, 0].astype(np.float32), tiles.shape[:3]),
                      tile=t, overlap=0.3, batch=4)
    win = blend_window(t)
    num, den = np.zeros((h, w)), np.zeros((h, w))
    for y in window_starts(h, t, 0.3):
        for x in window_starts(w, t, 0.3):
            num[y:y + t, x:x + t] += float(img[y, x, 0]) * win
            den[y:y + t, x:x + t] += win
    np.testing.assert_allclose(got, num / den, rtol=1e-5)


def _peak_bytes(h: int, w: int, batch: int) -> tuple[int, int]:
    img = np.zeros((h, w, 3), np.uint8)
    stats: dict = {}
    tracemalloc.start()
    blend_tiles(img, lambda t: t[..., 0].astype(np.float32), tile=96, overlap=0.25, batch=batch, stats=stats)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, stats["n_tiles"]


def test_tile_loop_memory_does_not_grow_with_the_number_of_tiles():
    """Peak traced memory minus the two O(H*W) float32 accumulators stays the same for 4x the tiles."""
    batch = 8
    small, n_small = _peak_bytes(520, 700, batch)
    large, n_large = _peak_bytes(1040, 1400, batch)
    assert n_large > 3.5 * n_small
    work_small = small - 2 * 4 * 520 * 700
    work_large = large - 2 * 4 * 1040 * 1400
    per_batch = batch * 96 * 96 * (3 + 4)  # the uint8 tile buffer + the function's float32 output
    assert 0 < work_small < 3 * per_batch and 0 < work_large < 3 * per_batch
    assert abs(work_large - work_small) < 64 * 1024
    # a list of all tiles would be 3 * 96 * 96 bytes per tile: far above the measured working set
    assert work_large < n_large * 3 * 96 * 96 / 8


def test_bad_arguments():
    with pytest.raises(InputError):
        blend_tiles(np.zeros((10, 10), np.uint8), lambda t: t)
    with pytest.raises(InputError):
        blend_tiles(np.zeros((10, 10, 3), np.uint8), lambda t: t[..., 0], batch=0)
    with pytest.raises(InputError, match="per-tile output"):
        blend_tiles(np.zeros((10, 10, 3), np.uint8), lambda t: t[:, :5, :5, 0])
