"""A synchronous harness around predict.tiling.TileBlender for the tiling tests: a function over the windows of an
image, blended (the driver does the same across threads in `unetpp predict`), and one runtime call on 96x96
tiles. Test code only: `unetpp predict` runs its windows on the driver (predict/work.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from unetpp.data.preprocess import normalize
from unetpp.errors import InputError, expected_found
from unetpp.eval.metrics import sigmoid
from unetpp.predict.tiling import DEFAULT_FLOOR, DEFAULT_OVERLAP, TileBlender, pad_to_tile

TileFn = Callable[[np.ndarray], np.ndarray]  # (N, tile, tile, C) -> (N, tile, tile) float


def tile_probs(runtime, tiles: np.ndarray) -> np.ndarray:
    """(n, S, S, 3) BGR uint8 tiles -> (n, S, S) foreground probabilities, in one runtime call."""
    x = np.stack([normalize(t) for t in tiles])
    return sigmoid(np.asarray(runtime.infer_padded(x)[0], np.float32)[:, 0])


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
