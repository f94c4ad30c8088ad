"""The prepared dsb2018_96 data held in memory, an augmenting dataset and a seeded epoch batch sampler."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from unetpp.config import PreprocessConfig
from unetpp.data.prepare import load_prepared
from unetpp.data.preprocess import name_few, normalize
from unetpp.errors import InputError, expected_found
from unetpp.train.augment import augment_pair, build_augment
from unetpp.train.sampling import EpochBatchSampler

__all__ = ["AugmentedDataset", "EpochBatchSampler", "load_split", "stack_split"]


class PreparedData:
    """All images (N, H, W, 3 BGR uint8) and masks (N, H, W uint8) of a prepared folder for the given ids."""

    def __init__(self, ids: Sequence[str], images: np.ndarray, masks: np.ndarray) -> None:
        self.ids, self.images, self.masks = list(ids), images, masks

    def __len__(self) -> int:
        return len(self.ids)


def load_split(root: str | Path, ids: Sequence[str]) -> PreparedData:
    """Read every `images/<id>.png` and `masks/0/<id>.png` of a prepared folder once."""
    root = Path(root)
    ids = list(ids)
    if not ids:
        raise InputError(expected_found("ids to load", "at least one id", "an empty list"))
    missing = [i for i in ids if not (root / "images" / f"{i}.png").is_file()
               or not (root / "masks" / "0" / f"{i}.png").is_file()]
    if missing:
        raise InputError(expected_found(
            f"prepared data in {root}", "images/<id>.png and masks/0/<id>.png for every id",
            f"none for {name_few(missing)}", "Run `unetpp prepare` (or pass --data to prepare it)."))
    pairs = [load_prepared(root, i) for i in ids]
    shape = pairs[0][0].shape
    for i, (img, mask) in zip(ids, pairs):
        if img.shape != shape or mask.shape != shape[:2]:
            raise InputError(expected_found(f"prepared sample {i}", f"image {shape} and mask {shape[:2]}",
                                            f"image {img.shape} and mask {mask.shape}"))
    if shape[0] % 16 or shape[1] % 16:
        raise InputError(expected_found(f"image size in {root}", "a multiple of 16 (the network pools 4 times)",
                                        f"{shape[0]}x{shape[1]}"))
    return PreparedData(ids, np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))


def to_tensors(img: np.ndarray, mask: np.ndarray, cfg: PreprocessConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Network input (3, H, W) via the inference normalisation, and target mask/255 (1, H, W), as upstream."""
    x = torch.from_numpy(normalize(np.ascontiguousarray(img), cfg))
    y = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32) / np.float32(255.0))[None]
    return x, y


def stack_split(data: PreparedData, cfg: PreprocessConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole split, un-augmented, as (N, 3, H, W) inputs and (N, 1, H, W) targets."""
    xs, ys = zip(*(to_tensors(img, mask, cfg) for img, mask in zip(data.images, data.masks)))
    return torch.stack(xs), torch.stack(ys)


class AugmentedDataset(Dataset):
    """Indexed by (epoch, i): sample i augmented with generators derived from (seed, epoch, i) only."""

    def __init__(self, data: PreparedData, seed: int, augment: bool = True, cfg: PreprocessConfig | None = None):
        self.data, self.seed, self.cfg = data, int(seed), cfg or PreprocessConfig()
        self.compose = build_augment() if augment else None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = key
        img, mask = self.data.images[i], self.data.masks[i]
        if self.compose is not None:
            img, mask = augment_pair(self.compose, img, mask, self.seed, epoch, i)
        return to_tensors(img, mask, self.cfg)
