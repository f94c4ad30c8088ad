"""Training targets of the instance-aware model from a label image (one id per nucleus, 0 = background).

Channel 0 (`foreground`): the union of the nuclei. Channel 1 (`border`): a band along each nucleus' own outline,
computed per nucleus against everything that is not that nucleus, so where two nuclei touch both sides of the
contact line are border. The band's width grows with the nucleus: w = clip(round(ratio * r), w_min, w_max) with
r = sqrt(area / pi) the equivalent radius in pixels of the array given (the model-input scale in training).
A pixel belongs to the band when its Euclidean distance to the nearest pixel outside its nucleus is <= w.
Optionally, background pixels in narrow gaps between two different nuclei (closer than `gap` pixels to both) are
border too, so that the model learns to keep nearly-touching nuclei apart.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from unetpp.errors import InputError, expected_found

OUTPUTS = ("foreground", "border")


@dataclass(frozen=True)
class BorderParams:
    """How wide the border band is: w = clip(round(ratio * sqrt(area / pi)), w_min, w_max) pixels."""

    ratio: float = 0.25
    w_min: int = 1
    w_max: int = 4
    gap: int = 2  # background pixels within `gap` px of two different nuclei are border; 0 turns this off

    def width(self, area: int) -> int:
        """Band width in pixels for a nucleus of `area` pixels."""
        r = math.sqrt(max(area, 0) / math.pi)
        return int(min(max(round(self.ratio * r), self.w_min), self.w_max))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BorderParams:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _check_labels(labels: np.ndarray) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 2 or not (np.issubdtype(lab.dtype, np.integer) or lab.dtype == np.bool_):
        raise InputError(expected_found("label image", "a 2-D array of integer nucleus ids",
                                        f"{lab.dtype} of shape {lab.shape}"))
    return lab.astype(np.int32, copy=False)


def border_band(labels: np.ndarray, params: BorderParams | None = None) -> np.ndarray:
    """Boolean (H, W): each nucleus' inner band of its size-dependent width (touching pixels included)."""
    params = params or BorderParams()
    lab = _check_labels(labels)
    band = np.zeros(lab.shape, bool)
    if lab.size == 0 or lab.max() == 0:
        return band
    areas = np.bincount(lab.ravel())
    for k, box in enumerate(ndi.find_objects(lab), start=1):
        if box is None:
            continue
        w = params.width(int(areas[k]))
        # the box grown by one pixel holds the outline; the array edge is not an outline
        y0, y1 = max(box[0].start - 1, 0), min(box[0].stop + 1, lab.shape[0])
        x0, x1 = max(box[1].start - 1, 0), min(box[1].stop + 1, lab.shape[1])
        inside = lab[y0:y1, x0:x1] == k
        padded = np.pad(inside, 1, mode="edge")  # the image edge continues the nucleus: no band along it
        dist = ndi.distance_transform_edt(padded)[1:-1, 1:-1]
        band[y0:y1, x0:x1] |= inside & (dist <= w)
    return band


def gap_band(labels: np.ndarray, gap: int) -> np.ndarray:
    """Background pixels within `gap` px (chessboard) of at least two different nuclei."""
    lab = _check_labels(labels)
    if gap <= 0 or lab.size == 0 or lab.max() == 0:
        return np.zeros(lab.shape, bool)
    size = 2 * gap + 1
    hi = ndi.maximum_filter(lab, size=size)
    lo_src = np.where(lab > 0, lab, np.iinfo(np.int32).max)
    lo = ndi.minimum_filter(lo_src, size=size)
    return (lab == 0) & (hi > 0) & (lo < np.iinfo(np.int32).max) & (hi != lo)


def instance_targets(labels: np.ndarray, params: BorderParams | None = None) -> np.ndarray:
    """uint8 (2, H, W) of 0/1: channel 0 foreground, channel 1 border (see the module docstring)."""
    params = params or BorderParams()
    lab = _check_labels(labels)
    fg = lab > 0
    border = border_band(lab, params) | gap_band(lab, params.gap)
    return np.stack([fg, border]).astype(np.uint8)


def median_nucleus_area(labels: np.ndarray) -> float | None:
    """Median pixel area of the nuclei of a label image, None when there are none."""
    lab = _check_labels(labels)
    areas = np.bincount(lab.ravel())[1:] if lab.size else np.zeros(0)
    areas = areas[areas > 0]
    return float(np.median(areas)) if areas.size else None
