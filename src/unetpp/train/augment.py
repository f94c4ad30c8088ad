"""Upstream's training augmentation (albumentations), made reproducible per (seed, epoch, sample).

Upstream train.py: RandomRotate90, Flip, OneOf([HueSaturationValue, RandomBrightness, RandomContrast], p=1),
Resize, Normalize. Resize is a no-op on prepared 96x96 data and Normalize is applied afterwards with the same
function as inference (unetpp.data.preprocess.normalize), so it is not part of the Compose here.

albumentations 2.x gives every Compose its own generators (numpy Generator + random.Random) and never reads the
global RNGs. `Compose.set_random_seed(s)` seeds each child transform with the *same* seed (correlated draws), so
instead we hand one pair of generators, derived from (seed, epoch, index), to the whole tree with
`Compose.set_random_state` before each sample. A sample's augmentation then depends only on that key: not on the
worker that runs it, on the order of samples, or on anything run before (which makes --resume exact).
"""

from __future__ import annotations

import random

import albumentations as A
import numpy as np

from unetpp.train.sampling import STREAM_AUGMENT, epoch_permutation, seed_sequence

__all__ = ["augment_pair", "build_augment", "epoch_permutation", "seed_sequence", "upstream_flip"]


def upstream_flip(p: float = 0.5) -> A.BasicTransform | A.BaseCompose:
    """Old albumentations' Flip: with probability p, one of horizontal, vertical, or both (cv2.flip code 1/0/-1)."""
    return A.OneOf(
        [
            A.HorizontalFlip(p=1.0),
            A.VerticalFlip(p=1.0),
            A.Sequential([A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0)], p=1.0),
        ],
        p=p,
    )


def build_augment() -> A.Compose:
    """Upstream's geometric + colour augmentation, jointly on `image` (BGR uint8) and `mask` (uint8)."""
    return A.Compose(
        [
            A.RandomRotate90(p=0.5),
            upstream_flip(p=0.5),
            A.OneOf(
                [
                    A.HueSaturationValue(p=1.0),
                    A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.0, p=1.0),  # RandomBrightness
                    A.RandomBrightnessContrast(brightness_limit=0.0, contrast_limit=0.2, p=1.0),  # RandomContrast
                ],
                p=1.0,
            ),
        ],
        p=1.0,
        seed=0,  # replaced per sample by set_random_state; fixed so construction never touches entropy sources
    )


def augment_pair(
    compose: A.Compose, image: np.ndarray, mask: np.ndarray, seed: int, epoch: int, index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Apply `compose` to (image, mask) with generators derived from (seed, epoch, index) only."""
    ss = seed_sequence(seed, epoch, STREAM_AUGMENT, index)
    py_seed = int(ss.generate_state(2, dtype=np.uint64)[1])
    compose.set_random_state(np.random.default_rng(ss), random.Random(py_seed))
    out = compose(image=image, mask=mask)
    return out["image"], out["mask"]
