"""A tiny prepared dataset (dsb2018_96 layout) written with cv2: dark background, bright nuclei discs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch


def write_prepared(root: Path, n: int, size: int = 32, seed: int = 0) -> list[str]:
    """images/<id>.png (BGR uint8) and masks/0/<id>.png (0/255, soft edges after a blur) for n samples."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks" / "0").mkdir(parents=True, exist_ok=True)
    ids = []
    for k in range(n):
        mask = np.zeros((size, size), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            c = (int(rng.integers(3, size - 3)), int(rng.integers(3, size - 3)))
            cv2.circle(mask, c, int(rng.integers(2, max(3, size // 6))), 255, -1)
        noise = rng.integers(0, 40, (size, size, 3))
        img = np.clip(noise + (mask[..., None] > 0) * np.array([150, 170, 190]), 0, 255).astype(np.uint8)
        id_ = f"{k:04d}" + "abcdef"[k % 6] * 8
        cv2.imwrite(str(root / "images" / f"{id_}.png"), img)
        cv2.imwrite(str(root / "masks" / "0" / f"{id_}.png"), mask)
        ids.append(id_)
    return ids


@pytest.fixture
def tiny_prepared(tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    """(root, train_ids (8), val_ids (4)) of 16x16 samples: the network takes any multiple of 16, and CPU
    training at 96x96 costs seconds per step."""
    root = tmp_path / "dsb2018_96"
    ids = write_prepared(root, 12, size=16)
    return root, ids[:8], ids[8:]


@pytest.fixture(autouse=True)
def _plain_cpu_kernels():
    """oneDNN JIT-compiles a primitive per new conv shape: ~1 s per step for the first steps at 16x16, while the
    native kernels take ~0.08 s. These tests check logic, not speed, so they use the native kernels."""
    saved = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = saved


def write_stage1(root: Path, n: int, size: int = 48, seed: int = 0) -> list[str]:
    """A tiny stage1_train: <id>/images/<id>.png (dark, bright discs) and <id>/masks/<k>.png, one per disc.

    Discs have radius 3..5 and may touch; a later disc does not overwrite an earlier one.
    """
    rng = np.random.default_rng(seed)
    ids = []
    for k in range(n):
        id_ = f"s{k:03d}" + "abcdef"[k % 6] * 6
        (root / id_ / "images").mkdir(parents=True)
        (root / id_ / "masks").mkdir()
        taken = np.zeros((size, size), bool)
        img = rng.integers(0, 30, (size, size, 3)).astype(np.uint8)
        for j in range(int(rng.integers(2, 6))):
            m = np.zeros((size, size), np.uint8)
            c = (int(rng.integers(6, size - 6)), int(rng.integers(6, size - 6)))
            cv2.circle(m, c, int(rng.integers(3, 6)), 255, -1)
            m[taken] = 0
            if not m.any():
                continue
            taken |= m > 0
            img[m > 0] = (150 + 20 * j, 170, 190)
            cv2.imwrite(str(root / id_ / "masks" / f"m{j}.png"), m)
        cv2.imwrite(str(root / id_ / "images" / f"{id_}.png"), img)
        ids.append(id_)
    return ids


@pytest.fixture
def tiny_stage1(tmp_path: Path) -> tuple[Path, list[str]]:
    """(stage1_train folder, 10 ids) of 48x48 samples with 2-5 disc nuclei each."""
    root = tmp_path / "stage1_train"
    return root, write_stage1(root, 10)
