"""Modality augmentation: seeded, geometry shared by image and targets, HED conversion invertible."""

from __future__ import annotations

import numpy as np

from unetpp.train.modality_augment import ModalityParams, augment_crop, hed_to_rgb, rgb_to_hed

OFF = ModalityParams(p_grey=0, p_invert=0, p_hed=0, p_tint=0, p_bcg=0, p_blur=0, p_noise=0)


def _marked() -> tuple[np.ndarray, np.ndarray]:
    img = np.full((24, 24, 3), 10, np.uint8)
    img[3:12, 4:6] = 200
    img[10:12, 4:14] = 200  # an asymmetric 'L'
    targets = np.zeros((2, 24, 24), np.float32)
    targets[0] = img[..., 0] > 100
    targets[1, 3, 4] = 1
    return img, targets


def test_same_generator_seed_same_output_and_variety():
    img, tgt = _marked()
    a = augment_crop(img, tgt, np.random.default_rng(5))
    b = augment_crop(img, tgt, np.random.default_rng(5))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    outs = {augment_crop(img, tgt, np.random.default_rng(s))[0].tobytes() for s in range(12)}
    assert len(outs) == 12
    assert a[0].dtype == np.uint8 and a[0].shape == img.shape and a[1].shape == tgt.shape


def test_geometry_moves_image_and_targets_together():
    img, tgt = _marked()
    for s in range(16):
        out_img, out_tgt = augment_crop(img, tgt, np.random.default_rng(s), OFF)
        assert np.array_equal(out_img[..., 0] > 100, out_tgt[0] > 0.5)
        assert out_tgt[1].sum() == 1


def test_inversion_and_grey_change_the_image_as_asked():
    img, tgt = _marked()
    inv = augment_crop(img, tgt, np.random.default_rng(0),
                       ModalityParams(**{**OFF.to_dict(), "p_invert": 1.0, "geometric": False}))[0]
    assert np.array_equal(inv.astype(int), 255 - img.astype(int))
    colour = img.copy()
    colour[..., 0] = 0
    grey = augment_crop(colour, tgt, np.random.default_rng(0),
                        ModalityParams(**{**OFF.to_dict(), "p_grey": 1.0, "geometric": False}))[0]
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()


def test_hed_round_trip():
    rgb = np.random.default_rng(1).uniform(0.05, 1.0, (8, 8, 3)).astype(np.float32)
    assert np.allclose(hed_to_rgb(rgb_to_hed(rgb)), rgb, atol=1e-4)
