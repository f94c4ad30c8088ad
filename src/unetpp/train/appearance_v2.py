"""The v2 appearance augmentation: what images from other sources do to nuclei that the v1 set did not cover.

Aimed at the misses seen off the training distribution (shared/reference/ACCURACY.md):
- **dim nuclei among bright ones**: a smooth random *contrast field* pulls parts of the crop towards the
  background level (a nucleus there keeps its shape but loses most of its contrast; its target is unchanged);
- **uneven illumination**: a smooth multiplicative field (vignetting, a gradient across the field of view);
- **defocus**: a Gaussian blur up to sigma 2.5 px, on the whole crop or blended in through a smooth mask (part of
  the field out of focus);
- **stained tissue**: stain-vector perturbation (each of the haematoxylin/eosin/DAB optical-density directions is
  turned a little before the amounts are jittered) and *synthetic H&E*: a dark-background (fluorescence-like) crop
  re-rendered as haematoxylin where the nuclei are bright, on an eosin background with texture, so the many
  fluorescence crops also teach the stained look.
All draws come from the generator passed in (derived from (seed, epoch, index)), always in the same number and
order whether or not a change applies, so a sample depends on its key only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from unetpp.train.modality_augment import RGB_FROM_HED, geometric, hed_to_rgb, rgb_to_hed

GREY = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class AppearanceV2:
    """Probabilities and ranges of each v2 change (a probability of 0 turns a change off)."""

    p_fake_he: float = 0.15
    p_contrast_field: float = 0.4
    contrast_floor: tuple[float, float] = (0.2, 0.7)  # the field's lowest value: nuclei there keep this contrast
    p_grey: float = 0.2
    p_invert: float = 0.15
    p_hed: float = 0.5
    hed_scale: float = 0.35
    hed_shift: float = 0.05
    stain_angle: float = 0.08  # each stain direction perturbed by N(0, angle) per component, then renormalised
    p_tint: float = 0.3
    tint: float = 0.2
    p_bcg: float = 0.8
    contrast: tuple[float, float] = (0.45, 1.3)
    brightness: float = 0.1
    gamma: float = 1.5
    p_illumination: float = 0.3
    illumination: float = 0.35  # multiplicative field in [1 - a, 1 + a]
    p_defocus: float = 0.3
    defocus_sigma: tuple[float, float] = (0.6, 2.5)
    p_noise: float = 0.25
    noise_sigma: tuple[float, float] = (0.005, 0.05)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], lo: float, hi: float) -> np.ndarray:
    """A smooth random field (H, W) in [lo, hi]: a g x g grid of uniform values (g from 2 to 6) resized cubically."""
    g = int(rng.integers(2, 7))
    grid = rng.uniform(0.0, 1.0, (g, g)).astype(np.float32)
    f = cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return lo + (hi - lo) * np.clip(f, 0.0, 1.0)


def fake_he(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark-background crop as H&E: haematoxylin where the crop is bright (nuclei), eosin with texture elsewhere."""
    grey = rgb @ GREY
    top = float(np.percentile(grey, 99.5))
    t = np.clip(grey / max(top, 1e-3), 0.0, 1.0) ** rng.uniform(0.7, 1.4)
    h_amp, e_base, e_amp = rng.uniform(0.5, 1.3), rng.uniform(0.1, 0.35), rng.uniform(0.05, 0.3)
    eosin = e_base + e_amp * smooth_field(rng, grey.shape, 0.0, 1.0)
    eosin = eosin * (1.0 - 0.6 * t) + rng.normal(0.0, 0.03, grey.shape).astype(np.float32)
    hed = np.stack([h_amp * t + 0.05, eosin, np.zeros_like(t)], axis=-1).astype(np.float32)
    return hed_to_rgb(hed).astype(np.float32)


def perturbed_stains(rng: np.random.Generator, angle: float) -> np.ndarray:
    """rgb_from_hed with each stain's optical-density direction turned a little (rows stay unit, non-negative)."""
    m = RGB_FROM_HED + rng.normal(0.0, angle, RGB_FROM_HED.shape).astype(np.float32)
    return (np.abs(m) / np.linalg.norm(np.abs(m), axis=1, keepdims=True)).astype(np.float32)


def appearance_v2(rgb: np.ndarray, rng: np.random.Generator, p: AppearanceV2) -> np.ndarray:
    """The v2 changes on float32 RGB in [0, 1], in the module docstring's order of kinds."""
    u = rng.random(11)
    h, w = rgb.shape[:2]
    dark = float((rgb @ GREY).mean()) < 0.35
    if u[0] < p.p_fake_he and dark:
        rgb = fake_he(rgb, rng)
    floor = rng.uniform(*p.contrast_floor)
    field = smooth_field(rng, (h, w), floor, 1.0)
    if u[1] < p.p_contrast_field:
        bg = np.median(rgb.reshape(-1, 3), axis=0).astype(np.float32)
        rgb = bg + (rgb - bg) * field[..., None]
    if u[2] < p.p_grey:
        rgb = np.repeat((rgb @ GREY)[..., None], 3, axis=2)
    if u[3] < p.p_invert:
        rgb = 1.0 - rgb
    rgb_from_hed = perturbed_stains(rng, p.stain_angle)
    scale = rng.uniform(1 - p.hed_scale, 1 + p.hed_scale, 3).astype(np.float32)
    shift = rng.uniform(-p.hed_shift, p.hed_shift, 3).astype(np.float32)
    if u[4] < p.p_hed:
        amounts = rgb_to_hed(rgb)  # with the standard directions, re-rendered with the turned ones
        rgb = np.clip(np.exp(-((amounts * scale + shift) @ rgb_from_hed)), 0.0, 1.0)
    tint = rng.uniform(1 - p.tint, 1 + p.tint, 3).astype(np.float32)
    if u[5] < p.p_tint:
        rgb = rgb * tint
    c, b = rng.uniform(*p.contrast), rng.uniform(-p.brightness, p.brightness)
    g = float(np.exp(rng.uniform(-np.log(p.gamma), np.log(p.gamma)))) if p.gamma > 1 else 1.0
    if u[6] < p.p_bcg:
        mean = float(rgb.mean())
        rgb = np.clip((rgb - mean) * c + mean + b, 0.0, 1.0) ** g
    light = smooth_field(rng, (h, w), 1 - p.illumination, 1 + p.illumination)
    if u[7] < p.p_illumination:
        rgb = rgb * light[..., None]
    sigma = rng.uniform(*p.defocus_sigma)
    mask = smooth_field(rng, (h, w), -1.0, 2.0)
    if u[8] < p.p_defocus:
        blurred = cv2.GaussianBlur(np.ascontiguousarray(rgb, np.float32), (0, 0), sigma)
        if u[9] < 0.5:  # part of the field out of focus
            m = np.clip(mask, 0.0, 1.0)[..., None]
            blurred = blurred * m + rgb * (1.0 - m)
        rgb = blurred
    nsig = rng.uniform(*p.noise_sigma)
    noise = rng.standard_normal(rgb.shape).astype(np.float32) * np.float32(nsig)
    if u[10] < p.p_noise:
        rgb = rgb + noise
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def augment_crop_v2(img_bgr: np.ndarray, targets: np.ndarray, rng: np.random.Generator,
                    params: AppearanceV2 | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(BGR uint8 (H, W, 3), targets (C, H, W)) -> the same augmented: rot90/flip on both, v2 appearance on the
    image (the v1 contract of unetpp.train.modality_augment.augment_crop)."""
    p = params or AppearanceV2()
    k, flip = int(rng.integers(0, 4)), bool(rng.random() < 0.5)
    img_bgr, targets = geometric(img_bgr, targets, k, flip)
    rgb = img_bgr[..., ::-1].astype(np.float32) / np.float32(255.0)
    rgb = appearance_v2(rgb, rng, p)
    return np.ascontiguousarray(np.rint(rgb[..., ::-1] * 255.0).astype(np.uint8)), targets
