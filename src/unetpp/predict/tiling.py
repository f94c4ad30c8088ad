"""Sliding-window prediction with blended seams and bounded memory.

Windows of `tile` x `tile` pixels are generated lazily (a generator of corners), copied `batch` at a time into one
reused buffer, passed to a per-tile function, and accumulated as `sum(p * w)` and `sum(w)` into two float32 arrays
of the image's size; the result is their ratio. `w` is a separable raised-cosine (Hann) window with a floor, so a
pixel near a tile's border (where the network sees zero padding) counts less than one at a tile's centre, and
every pixel keeps a positive weight. Working memory beyond the O(H*W) image/accumulators is O(batch * tile^2),
whatever the number of tiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from unetpp.errors import InputError, expected_found

TileFn = Callable[[np.ndarray], np.ndarray]  # (N, tile, tile, C) -> (N, tile, tile) float
DEFAULT_OVERLAP = 0.25
DEFAULT_FLOOR = 0.05


def window_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets covering [0, length): evenly spread, consecutive windows overlapping by >= `overlap` * tile."""
    if not 0.0 <= overlap < 1.0:
        raise InputError(expected_found("tile overlap", "a fraction in [0, 1)", overlap))
    if length <= tile:
        return [0]
    stride = max(1, int(math.floor(tile * (1.0 - overlap))))
    n = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def iter_windows(height: int, width: int, tile: int, overlap: float) -> Iterator[tuple[int, int]]:
    """(y, x) corners, row by row; lazily, never a list of tiles."""
    xs = window_starts(width, tile, overlap)
    for y in window_starts(height, tile, overlap):
        for x in xs:
            yield y, x


def count_windows(height: int, width: int, tile: int, overlap: float) -> int:
    return len(window_starts(height, tile, overlap)) * len(window_starts(width, tile, overlap))


def blend_window(tile: int, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """Separable raised cosine: floor + (1 - floor) * sin^2(pi (i + 0.5) / tile), outer product; float32."""
    if not 0.0 < floor <= 1.0:
        raise InputError(expected_found("window floor", "a number in (0, 1]", floor))
    i = np.arange(tile, dtype=np.float64)
    w1 = floor + (1.0 - floor) * np.sin(np.pi * (i + 0.5) / tile) ** 2
    return np.outer(w1, w1).astype(np.float32)


def pad_to_tile(image: np.ndarray, tile: int) -> np.ndarray:
    """Mirror-pad the bottom/right so both sides are at least `tile` (a 1-pixel side is replicated)."""
    h, w = image.shape[:2]
    ph, pw = max(0, tile - h), max(0, tile - w)
    if not ph and not pw:
        return image
    border = cv2.BORDER_REFLECT_101 if min(h, w) > 1 else cv2.BORDER_REPLICATE
    out = cv2.copyMakeBorder(image, 0, ph, 0, pw, border)
    return out if out.ndim == image.ndim else out[:, :, None]


class TileBlender:
    """Accumulates per-tile maps of one (padded) image: `sum(p * w)` and `sum(w)`, then their ratio.

    `corners` are the windows in generation order; `add(start, maps)` takes the maps (k, [C,] tile, tile) of
    windows start..start+k-1, in any grouping but in order (the sums are float32: the same order gives the same
    bits).
    """

    def __init__(self, height: int, width: int, tile: int, overlap: float = DEFAULT_OVERLAP,
                 floor: float = DEFAULT_FLOOR, channels: int | None = None) -> None:
        self.height, self.width, self.tile = height, width, tile
        self.ys, self.xs = window_starts(height, tile, overlap), window_starts(width, tile, overlap)
        self.n_tiles = len(self.ys) * len(self.xs)
        self.window = blend_window(tile, floor)
        shape = (height, width) if channels is None else (channels, height, width)
        self.acc = np.zeros(shape, np.float32)
        self.wsum = np.zeros((height, width), np.float32)

    def corner(self, i: int) -> tuple[int, int]:
        """(y, x) of window i, row by row (no list of all windows is kept)."""
        return self.ys[i // len(self.xs)], self.xs[i % len(self.xs)]

    def add(self, start: int, maps: np.ndarray) -> None:
        t, win = self.tile, self.window
        for i, p in enumerate(maps, start):
            y, x = self.corner(i)
            self.acc[..., y:y + t, x:x + t] += p * win
            self.wsum[y:y + t, x:x + t] += win

    def result(self, height: int, width: int) -> np.ndarray:
        """The blended map cropped to (height, width) (the size before padding)."""
        np.divide(self.acc, self.wsum, out=self.acc)
        return self.acc[..., :height, :width]


def blend_tiles(image: np.ndarray, fn: TileFn, tile: int = 96, overlap: float = DEFAULT_OVERLAP, batch: int = 16,
                floor: float = DEFAULT_FLOOR, stats: dict | None = None) -> np.ndarray:
    """Run `fn` over overlapping windows of `image` (H, W, C) and blend: float32 (H, W).

    `fn` gets a (n, tile, tile, C) view of a reused buffer (n <= batch) and returns (n, tile, tile) values.
    `stats`, if given, receives n_tiles and n_batches.
    """
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(expected_found("image to tile", "an (H, W, C) array with H, W >= 1", image.shape))
    if batch < 1:
        raise InputError(expected_found("tile batch", "an integer >= 1", batch))
    h0, w0 = image.shape[:2]
    img = pad_to_tile(image, tile)
    blender = TileBlender(img.shape[0], img.shape[1], tile, overlap, floor)
    buf = np.empty((batch, tile, tile, img.shape[2]), img.dtype)
    n_batches = 0
    for start in range(0, blender.n_tiles, batch):
        k = min(batch, blender.n_tiles - start)
        for i in range(k):
            y, x = blender.corner(start + i)
            buf[i] = img[y:y + tile, x:x + tile]
        out = np.asarray(fn(buf[:k]), dtype=np.float32)
        if out.shape != (k, tile, tile):
            raise InputError(expected_found("per-tile output", (k, tile, tile), out.shape))
        blender.add(start, out)
        n_batches += 1
    if stats is not None:
        stats.update(n_tiles=blender.n_tiles, n_batches=n_batches)
    return blender.result(h0, w0)
