"""TNBC beside DSB2018: the tile reader, the patient split, the annotation gaps, the v3 H&E augmentation's
invariants, and a tiny training run that reads both."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.model.checkpoint import load_checkpoint
from unetpp.train.he_augment import AppearanceV3, augment_crop_v3, he_appearance, nucleus_regions
from unetpp.train.instance_loop import train_instance
from unetpp.train.instance_model import InstanceTrainConfig
from unetpp.train.modality_augment import rgb_to_hed
from unetpp.train.tnbc import (
    ATTRIBUTION,
    build_tnbc_data,
    close_annotation_gaps,
    read_label_map,
    split_patients,
    tnbc_tiles,
)

REPO = Path(__file__).resolve().parents[2]
# the TNBC copy: $UNETPP_TNBC, ./data/tnbc (a link .ci/run makes), or ../shared/data/tnbc beside the checkout
SHARED_TNBC = next((Path(p) for p in (os.environ.get("UNETPP_TNBC"), REPO / "data" / "tnbc",
                                      REPO.parent / "shared" / "data" / "tnbc",
                                      REPO.parents[1] / "shared" / "data" / "tnbc") if p and Path(p).is_dir()),
                   REPO / "data" / "tnbc")
PINK, PURPLE = (200, 170, 235), (150, 60, 90)  # BGR: eosin background, haematoxylin nuclei


def he_tile(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(BGR H&E-like tile, uint16 labels): discs of ids 300.. (above 8 bits) on pink, two of them touching
    across a one-pixel gap of background as the TNBC annotators left it."""
    rng = np.random.default_rng(seed)
    img = np.empty((size, size, 3), np.uint8)
    img[:] = PINK
    img = np.clip(img.astype(int) + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)
    lab = np.zeros((size, size), np.uint16)
    lab[10:20, 10:20] = 300
    lab[10:20, 21:31] = 301  # column 20 is the gap
    cv2.circle(lab, (45, 45), 6, 302, -1)
    img[lab > 0] = PURPLE
    return img, lab


def write_tnbc(root: Path, names: list[str], size: int = 64) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for k, name in enumerate(names):
        img, lab = he_tile(size, k)
        cv2.imwrite(str(root / "images" / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(root / "labels" / f"{name}_label.png"), lab)
    return root


def test_split_is_by_patient_and_covers_the_eleven():
    train, heldout = split_patients("train"), split_patients("heldout")
    assert train == ["01", "03", "05", "07", "09", "11"]
    assert heldout == ["02", "04", "06", "08", "10"]
    assert not set(train) & set(heldout)
    with pytest.raises(InputError, match="train or heldout"):
        split_patients("val")


@pytest.mark.skipif(not (SHARED_TNBC / "images").is_dir(),
                    reason="no TNBC copy: set UNETPP_TNBC to its folder (.ci/run links ./data/tnbc)")
def test_split_matches_the_shared_copy():
    tiles = tnbc_tiles(SHARED_TNBC)
    assert len(tiles) == 50
    patients = {name[:2] for name, _, _ in tiles}
    assert patients == set(split_patients("train")) | set(split_patients("heldout"))
    assert len(tnbc_tiles(SHARED_TNBC, split_patients("train"))) == 7 + 5 + 4 + 3 + 6 + 3


def test_reader_filters_patients_sorts_and_refuses_a_missing_label(tmp_path):
    root = write_tnbc(tmp_path / "tnbc", ["02_1", "01_10", "01_2"])
    assert [n for n, _, _ in tnbc_tiles(root)] == ["01_2", "01_10", "02_1"]
    assert [n for n, _, _ in tnbc_tiles(root, ["01"])] == ["01_2", "01_10"]
    lab = read_label_map(root / "labels" / "02_1_label.png")
    assert lab.dtype == np.int32 and set(np.unique(lab)) == {0, 300, 301, 302}
    (root / "labels" / "01_2_label.png").unlink()
    with pytest.raises(InputError, match="01_2_label.png"):
        tnbc_tiles(root, ["01"])
    with pytest.raises(InputError, match="patients"):
        tnbc_tiles(root, ["07"])
    with pytest.raises(InputError, match="images/NN_k.jpg"):
        tnbc_tiles(tmp_path / "nowhere")
    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="one channel"):
        read_label_map(tmp_path / "rgb.png")


def test_one_pixel_gaps_close_and_wider_ones_stay():
    lab = np.zeros((6, 12), np.int32)
    lab[1:5, 0:3] = 5
    lab[1:5, 4:7] = 9  # one-pixel gap at column 3
    lab[1:5, 9:12] = 4  # two-pixel gap at columns 7-8
    out = close_annotation_gaps(lab)
    expected = lab.copy()
    expected[0:6, 3] = 9  # the larger id of the two; the column's ends touch both nuclei diagonally
    assert np.array_equal(out, expected)


def test_tiles_load_at_the_nucleus_normalised_scale(tmp_path):
    root = write_tnbc(tmp_path / "tnbc", ["01_1", "03_1", "02_1"], size=64)
    data = build_tnbc_data(root, split_patients("train"), target_area=60.0)
    assert data.ids == ["tnbc/01_1", "tnbc/03_1"]
    closed = close_annotation_gaps(he_tile(64, 0)[1].astype(np.int32))
    areas = np.bincount(closed.ravel())[[300, 301, 302]]
    median = float(np.median(areas))
    assert data.median_areas[0] == median
    assert data.scales[0] == pytest.approx(math.sqrt(60.0 / median))
    side = round(64 * data.scales[0])
    assert data.images[0].shape == (side, side, 3) and data.targets[0].shape == (2, side, side)
    assert len(np.unique(data.labels[0])) == 4  # three nuclei survive the nearest-neighbour shrink


def _crop_and_targets(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    img, lab = he_tile(size, 1)
    from unetpp.train.instance_targets import instance_targets

    return img, instance_targets(close_annotation_gaps(lab.astype(np.int32))).astype(np.float32)


def test_nucleus_regions_keep_touching_nuclei_apart():
    _, tgt = _crop_and_targets()
    regions, n = nucleus_regions(tgt)
    assert n == 3
    assert np.array_equal(regions > 0, tgt[0] > 0.5)


def test_pale_nuclei_fade_haematoxylin_and_leave_the_background_alone():
    img, tgt = _crop_and_targets()
    rgb = img[..., ::-1].astype(np.float32) / 255.0
    p = AppearanceV3(p_pale=1.0, pale_fraction=1.0, pale_factor=(0.3, 0.3), p_stain_gradient=0.0)
    out = he_appearance(rgb, tgt, np.random.default_rng(0), p)
    inside = tgt[0] > 0.5
    far = cv2.dilate(inside.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    assert np.array_equal(out[far], rgb[far])
    h_before, h_after = rgb_to_hed(rgb)[..., 0][inside].mean(), rgb_to_hed(out)[..., 0][inside].mean()
    assert h_after < 0.5 * h_before
    # a dark (fluorescence) crop is not touched, and the draws are the same whether a change applies or not
    dark = 1.0 - rgb
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    assert np.array_equal(he_appearance(dark, tgt, r1, p), dark)
    he_appearance(rgb, tgt, r2, AppearanceV3(p_pale=0.0, p_stain_gradient=0.0))
    assert r1.random() == r2.random()


def test_v3_crop_is_seeded_and_moves_targets_with_the_geometry_only():
    img, tgt = _crop_and_targets()
    a = augment_crop_v3(img, tgt, np.random.default_rng(7))
    b = augment_crop_v3(img, tgt, np.random.default_rng(7))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].shape == img.shape and a[0].dtype == np.uint8
    rotations = [np.rot90(tgt, k, axes=(1, 2)) for k in range(4)]
    assert any(np.array_equal(a[1], r) or np.array_equal(a[1], r[:, :, ::-1]) for r in rotations)


def test_training_reads_tnbc_training_patients_beside_dsb(tiny_stage1, tmp_path):
    root, ids = tiny_stage1
    tnbc = write_tnbc(tmp_path / "tnbc", ["01_1", "03_1", "02_1"], size=64)
    cfg = InstanceTrainConfig(epochs=1, batch_size=2, crop=32, view_size=32, holdout=2, init="none",
                              target_area=60.0, seed=3, augment_preset="v3", extra_data="tnbc", extra_weight=2.0)
    out = tmp_path / "run"
    result = train_instance(cfg, root, out, ids[:6], progress=False, verbose=False, extra_root=tnbc)
    assert result["n_fit"] == 4 and result["crops_per_epoch"] == 4 + 2 * 2  # one crop each, x2 per TNBC tile
    meta = load_checkpoint(out / "latest.pt").meta
    assert meta["extra_ids"] == ["tnbc/01_1", "tnbc/03_1"] and meta["data_credit"] == ATTRIBUTION
    assert "CC BY 4.0" in ATTRIBUTION and "Naylor" in ATTRIBUTION
    assert meta["train_config"]["extra_data"] == "tnbc"
    with pytest.raises(InputError, match="extra training data"):
        train_instance(cfg, root, tmp_path / "run2", ids[:6], progress=False, verbose=False)


def test_steps_per_epoch_takes_the_head_of_each_epochs_permutation():
    from unetpp.train.sampling import EpochBatchSampler, epoch_permutation

    full, short = EpochBatchSampler(50, 4, seed=2), EpochBatchSampler(50, 4, seed=2, max_batches=3)
    assert len(full) == 12 and len(short) == 3 and len(EpochBatchSampler(10, 4, 2, max_batches=9)) == 2
    seen = []
    for epoch in (0, 1):
        full.set_epoch(epoch), short.set_epoch(epoch)
        got = [k for batch in short for _, k in batch]
        assert got == [k for batch in list(full)[:3] for _, k in batch]
        assert got == epoch_permutation(50, 2, epoch)[:12].tolist()
        seen.append(set(got))
    assert seen[0] != seen[1]  # a fresh subset each epoch
    with pytest.raises(InputError, match="batches per epoch"):
        EpochBatchSampler(50, 4, seed=2, max_batches=0)
