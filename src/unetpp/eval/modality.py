"""Which kind of microscopy image this is, by a simple documented rule on the image itself (no labels needed):

- fluorescence: the colour channels are equal (within 2 grey levels on average) and the mean is below 100
  (bright nuclei on a dark background);
- brightfield: channels equal (same tolerance) and a mean of 100 or more (dark nuclei on a bright background);
- stained: the channels differ (colour: H&E or other stained tissue).
The rule follows shared/reference/ACCURACY.md's fluorescence/other split and divides "other" by colour.
"""

from __future__ import annotations

import numpy as np

MODALITIES = ("fluorescence", "brightfield", "stained")
GREY_TOLERANCE = 2.0
DARK_MEAN = 100.0


def modality(img: np.ndarray) -> str:
    """The kind of a 3-channel (or grey) uint8 image."""
    a = np.asarray(img, np.float32)
    if a.ndim == 3 and a.shape[2] >= 3:
        a = a[:, :, :3]
        spread = float(np.mean(np.abs(a - a.mean(axis=2, keepdims=True))))
        if spread > GREY_TOLERANCE:
            return "stained"
    return "fluorescence" if float(a.mean()) < DARK_MEAN else "brightfield"
