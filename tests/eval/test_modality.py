"""The modality rule on hand-made images: dark grey = fluorescence, bright grey = bright field, colour = stained."""

from __future__ import annotations

import numpy as np

from unetpp.eval.modality import modality


def test_the_three_kinds() -> None:
    dark = np.full((20, 20, 3), 12, np.uint8)
    dark[5:9, 5:9] = 200  # a bright nucleus: still grey, mean well below 100
    assert modality(dark) == "fluorescence"
    bright = np.full((20, 20, 3), 210, np.uint8)
    bright[5:9, 5:9] = 60
    assert modality(bright) == "brightfield"
    he = np.zeros((20, 20, 3), np.uint8)
    he[:] = (200, 120, 220)  # BGR pinkish purple: the channels differ
    assert modality(he) == "stained"
    assert modality(dark[:, :, 0]) == "fluorescence"  # a grey 2-D array too
