"""Modality-robustness augmentation of a crop: geometry (rot90/flip) on image and targets, appearance on the image.

DSB2018 mixes dark-background fluorescence, bright-field and H&E-like stained tissue. Appearance changes, each
with its own probability, in this order: greyscale, inverted contrast, stain jitter in HED space (Ruifrok and
Johnston's colour deconvolution: optical density -> haematoxylin/eosin/DAB amounts, each scaled and shifted, and
back), per-channel tint, brightness/contrast/gamma, Gaussian blur, Gaussian noise. All draws come from the
generator passed in, which the dataset derives from (seed, epoch, index), so a sample's augmentation depends on
that key only (the same contract as unetpp.train.augment).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

# Rows: the RGB optical-density direction of haematoxylin, eosin and DAB (Ruifrok & Johnston 2001), unit length.
_RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], np.float64)
RGB_FROM_HED = (_RGB_FROM_HED / np.linalg.norm(_RGB_FROM_HED, axis=1, keepdims=True)).astype(np.float32)
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED).astype(np.float32)
OD_EPS = 1.0 / 255.0


@dataclass(frozen=True)
class ModalityParams:
    """Probabilities and ranges of each change (a probability of 0 turns a change off)."""

    p_grey: float = 0.25
    p_invert: float = 0.2
    p_hed: float = 0.5
    hed_scale: float = 0.3  # each stain amount x U(1 - s, 1 + s)
    hed_shift: float = 0.05  # ... + U(-d, d) optical density
    p_tint: float = 0.3
    tint: float = 0.2  # each channel x U(1 - t, 1 + t)
    p_bcg: float = 0.8
    contrast: float = 0.3
    brightness: float = 0.1
    gamma: float = 1.5  # gamma drawn log-uniformly in [1/g, g]
    p_blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    p_noise: float = 0.2
    noise_sigma: tuple[float, float] = (0.005, 0.04)
    geometric: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rgb_to_hed(rgb: np.ndarray) -> np.ndarray:
    """float RGB in [0, 1] (H, W, 3) -> stain amounts (H, W, 3) via optical density."""
    od = -np.log(np.clip(rgb, OD_EPS, 1.0))
    return od @ HED_FROM_RGB


def hed_to_rgb(hed: np.ndarray) -> np.ndarray:
    """Stain amounts (H, W, 3) -> float RGB in [0, 1]."""
    return np.clip(np.exp(-(hed @ RGB_FROM_HED)), 0.0, 1.0)


def geometric(img: np.ndarray, targets: np.ndarray, k: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """rot90 by k quarter turns, then an optional left-right flip, of (H, W, C) image and (C, H, W) targets."""
    img, targets = np.rot90(img, k, axes=(0, 1)), np.rot90(targets, k, axes=(1, 2))
    if flip:
        img, targets = img[:, ::-1], targets[:, :, ::-1]
    return np.ascontiguousarray(img), np.ascontiguousarray(targets)


def _appearance(rgb: np.ndarray, rng: np.random.Generator, p: ModalityParams) -> np.ndarray:
    """The appearance changes on float32 RGB in [0, 1]; draws are made whether or not a change applies."""
    u = rng.random(7)
    if u[0] < p.p_grey:
        grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        rgb = np.repeat(grey[..., None], 3, axis=2)
    if u[1] < p.p_invert:
        rgb = 1.0 - rgb
    scale = rng.uniform(1 - p.hed_scale, 1 + p.hed_scale, 3).astype(np.float32)
    shift = rng.uniform(-p.hed_shift, p.hed_shift, 3).astype(np.float32)
    if u[2] < p.p_hed:
        rgb = hed_to_rgb(rgb_to_hed(rgb) * scale + shift)
    tint = rng.uniform(1 - p.tint, 1 + p.tint, 3).astype(np.float32)
    if u[3] < p.p_tint:
        rgb = rgb * tint
    c, b = rng.uniform(1 - p.contrast, 1 + p.contrast), rng.uniform(-p.brightness, p.brightness)
    g = float(np.exp(rng.uniform(-np.log(p.gamma), np.log(p.gamma)))) if p.gamma > 1 else 1.0
    if u[4] < p.p_bcg:
        mean = float(rgb.mean())
        rgb = np.clip((rgb - mean) * c + mean + b, 0.0, 1.0) ** g
    sigma = rng.uniform(*p.blur_sigma)
    if u[5] < p.p_blur:
        rgb = cv2.GaussianBlur(np.ascontiguousarray(rgb, np.float32), (0, 0), sigma)
    nsig = rng.uniform(*p.noise_sigma)
    noise = rng.standard_normal(rgb.shape).astype(np.float32) * np.float32(nsig)
    if u[6] < p.p_noise:
        rgb = rgb + noise
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def augment_crop(img_bgr: np.ndarray, targets: np.ndarray, rng: np.random.Generator,
                 params: ModalityParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(BGR uint8 (H, W, 3), targets (C, H, W)) -> the same augmented; targets only move with the geometry."""
    p = params or ModalityParams()
    k, flip = int(rng.integers(0, 4)), bool(rng.random() < 0.5)
    if p.geometric:
        img_bgr, targets = geometric(img_bgr, targets, k, flip)
    rgb = img_bgr[..., ::-1].astype(np.float32) / np.float32(255.0)
    rgb = _appearance(rgb, rng, p)
    bgr = np.rint(rgb[..., ::-1] * 255.0).astype(np.uint8)
    return np.ascontiguousarray(bgr), targets
