"""A synchronous tiled prediction for the scale and memory studies (bench/tile_scale.py, bench/tile_memory.py): the
same blending (predict.tiling.blend_tiles) and runtime call (predict.image.tile_probs) as `unetpp predict`, one image
at a time, so a study can probe one stage in isolation."""

from __future__ import annotations

import cv2
import numpy as np

from unetpp.predict.image import PredictOptions, tile_probs
from unetpp.predict.tiling import blend_tiles


def predict_tiled(img: np.ndarray, rt, factor: float, opts: PredictOptions, stats: dict | None = None) -> np.ndarray:
    """Rescale by `factor` (INTER_LINEAR), blend 96x96 windows, bilinear back to the image's size."""
    h, w = img.shape[:2]
    sh, sw = max(1, round(h * factor)), max(1, round(w * factor))
    small = img if (sh, sw) == (h, w) else cv2.resize(img, (sw, sh), interpolation=cv2.INTER_LINEAR)
    prob = blend_tiles(small, lambda t: tile_probs(rt, t), tile=int(rt.input_shape[-1]), overlap=opts.overlap,
                       batch=opts.batch, floor=opts.floor, stats=stats)
    return np.ascontiguousarray(prob) if (sh, sw) == (h, w) else cv2.resize(prob, (w, h),
                                                                              interpolation=cv2.INTER_LINEAR)
