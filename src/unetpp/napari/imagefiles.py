"""Image files as napari shows them: the file's own values and channels, colour as RGB(A)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from unetpp.errors import InputError, expected_found
from unetpp.predict.imageio import TIFF_SUFFIXES, tiff_samples_problem


def read_as_layer(path: str | Path) -> np.ndarray:
    """(H, W) grey or (H, W, 3|4) RGB(A), the file's own dtype (OpenCV's BGR(A) turned around)."""
    problem = tiff_samples_problem(path) if Path(path).suffix.lower() in TIFF_SUFFIXES else None
    if problem:  # OpenCV would show the first sample only
        raise InputError(expected_found(f"image {path}", "grey, grey+alpha, RGB or RGBA samples", problem))
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise InputError(expected_found(f"image {path}", "a readable image file", "nothing OpenCV can decode"))
    if img.ndim == 3 and img.shape[2] == 3:
        return np.ascontiguousarray(img[:, :, ::-1])
    if img.ndim == 3 and img.shape[2] == 4:
        return np.ascontiguousarray(img[:, :, [2, 1, 0, 3]])
    return img
