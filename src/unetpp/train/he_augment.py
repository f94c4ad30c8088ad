"""The v3 appearance augmentation: v2 plus what H&E tissue does to nuclei that v2 does not cover.

Seen on stained tissue (issue 26): whole rows of pale, elongated epithelial nuclei are missed next to dark round
ones that are found. Two changes, both on crops with a light background (bright-field and stained; a dark
fluorescence crop has no haematoxylin to fade) and both in haematoxylin/eosin optical-density space (Ruifrok and
Johnston's colour deconvolution, unetpp.train.modality_augment):
- **pale nuclei**: each nucleus of the crop (a core of the targets, foreground minus border, grown back over its
  foreground) is chosen with probability `pale_fraction` and its haematoxylin amount multiplied by a factor drawn
  in `pale_factor` (a softened mask, so the nucleus keeps its shape but loses most of its stain); pixels away from
  the chosen nuclei keep their exact values;
- **local stain gradients**: smooth random fields multiply the haematoxylin and eosin amounts separately
  (uneven staining across the section).
Then the v2 changes (unetpp.train.appearance_v2). Targets only move with the geometry. All draws come from the
generator passed in, in the same number and order whether or not a change applies (per-nucleus draws depend on
the crop, itself a function of the sample's key), so a sample depends on its key only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi

from unetpp.train.appearance_v2 import GREY, AppearanceV2, appearance_v2, smooth_field
from unetpp.train.modality_augment import geometric, hed_to_rgb, rgb_to_hed

LIGHT_BACKGROUND = 0.5  # mean grey above which a crop is bright-field / stained


@dataclass(frozen=True)
class AppearanceV3(AppearanceV2):
    """v2's fields plus the H&E changes (a probability of 0 turns a change off)."""

    p_pale: float = 0.5  # per light crop: fade some of its nuclei
    pale_fraction: float = 0.5  # share of the nuclei faded
    pale_factor: tuple[float, float] = (0.2, 0.7)  # haematoxylin kept in a faded nucleus
    p_stain_gradient: float = 0.4
    stain_gradient: float = 0.4  # haematoxylin and eosin each x a smooth field in [1 - g, 1 + g]


def nucleus_regions(targets: np.ndarray) -> tuple[np.ndarray, int]:
    """(int32 label image, count): cores (foreground > 0.5 and border < 0.5) labelled, then grown over the rest of
    the foreground by nearest core, so touching nuclei stay apart."""
    fg = targets[0] > 0.5
    cores, n = ndi.label(fg & (targets[1] < 0.5))
    if n == 0:
        return np.zeros(fg.shape, np.int32), 0
    _, (iy, ix) = ndi.distance_transform_edt(cores == 0, return_indices=True)
    regions = np.where(fg, cores[iy, ix], 0).astype(np.int32)
    return regions, int(n)


def pale_nuclei(rgb: np.ndarray, targets: np.ndarray, rng: np.random.Generator, p: AppearanceV3,
                apply: bool) -> np.ndarray:
    """Fade the haematoxylin of about `pale_fraction` of the crop's nuclei (see the module docstring)."""
    regions, n = nucleus_regions(targets)
    chosen = rng.random(n) < p.pale_fraction
    factors = rng.uniform(*p.pale_factor, n).astype(np.float32)
    if not apply or not chosen.any():
        return rgb
    keep = np.ones(n + 1, np.float32)
    keep[1:][chosen] = factors[chosen]
    fmap = cv2.GaussianBlur(keep[regions], (0, 0), 1.0)
    touched = fmap < 1.0 - 1e-4
    hed = rgb_to_hed(rgb)
    hed[..., 0] *= fmap
    return np.where(touched[..., None], hed_to_rgb(hed), rgb).astype(np.float32)


def stain_gradient(rgb: np.ndarray, rng: np.random.Generator, p: AppearanceV3, apply: bool) -> np.ndarray:
    """Haematoxylin and eosin amounts each times its own smooth field in [1 - g, 1 + g]."""
    shape = rgb.shape[:2]
    h_field = smooth_field(rng, shape, 1 - p.stain_gradient, 1 + p.stain_gradient)
    e_field = smooth_field(rng, shape, 1 - p.stain_gradient, 1 + p.stain_gradient)
    if not apply:
        return rgb
    hed = rgb_to_hed(rgb)
    hed[..., 0] *= h_field
    hed[..., 1] *= e_field
    return hed_to_rgb(hed).astype(np.float32)


def he_appearance(rgb: np.ndarray, targets: np.ndarray, rng: np.random.Generator, p: AppearanceV3) -> np.ndarray:
    """The two H&E changes on float32 RGB in [0, 1] (only where the crop's background is light)."""
    u = rng.random(2)
    light = float((rgb @ GREY).mean()) > LIGHT_BACKGROUND
    rgb = pale_nuclei(rgb, targets, rng, p, light and u[0] < p.p_pale)
    return stain_gradient(rgb, rng, p, light and u[1] < p.p_stain_gradient)


def augment_crop_v3(img_bgr: np.ndarray, targets: np.ndarray, rng: np.random.Generator,
                    params: AppearanceV3 | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(BGR uint8 (H, W, 3), targets (C, H, W)) -> the same augmented: rot90/flip on both, the H&E changes and
    then v2's appearance on the image."""
    p = params or AppearanceV3()
    k, flip = int(rng.integers(0, 4)), bool(rng.random() < 0.5)
    img_bgr, targets = geometric(img_bgr, targets, k, flip)
    rgb = img_bgr[..., ::-1].astype(np.float32) / np.float32(255.0)
    rgb = he_appearance(rgb, targets, rng, p)
    rgb = appearance_v2(rgb, rng, p)
    return np.ascontiguousarray(np.rint(rgb[..., ::-1] * 255.0).astype(np.uint8)), targets
