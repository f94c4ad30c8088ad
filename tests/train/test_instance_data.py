"""The nucleus-normalised instance data: scale rule, cache, seeded crops of fixed shape, held-out views."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.train.instance_data import (
    InstanceCropDataset,
    build_instance_data,
    crop_window,
    crops_per_image,
    heldout_views,
    image_scale,
    random_crop,
)
from unetpp.train.instance_targets import median_nucleus_area


def test_scale_rule_normalises_the_median_nucleus_area(tiny_stage1):
    root, ids = tiny_stage1
    data = build_instance_data(root, ids[:3], target_area=120.0, progress=False)
    for k in range(3):
        s = data.scales[k]
        assert s == pytest.approx(image_scale(data.median_areas[k], 120.0))
        assert s == pytest.approx(math.sqrt(120.0 / data.median_areas[k]))
        assert data.images[k].shape[:2] == data.labels[k].shape == data.targets[k].shape[1:]
        assert data.labels[k].shape == (round(48 * s), round(48 * s))
        # after scaling, the median nucleus covers about the target area (nearest-neighbour rounding aside)
        assert median_nucleus_area(data.labels[k]) == pytest.approx(120.0, rel=0.3)
    assert image_scale(None, 150.0) == 1.0 and image_scale(1e-6, 150.0) == 4.0


def test_cache_round_trip_and_invalidation(tiny_stage1, tmp_path):
    root, ids = tiny_stage1
    cache = tmp_path / "c.npz"
    a = build_instance_data(root, ids[:4], target_area=100.0, cache=cache, progress=False)
    assert cache.is_file()
    b = build_instance_data(root / "nowhere", ids[:4], target_area=100.0, cache=cache, progress=False)  # no reading
    for x, y in zip(a.images + a.labels + a.targets, b.images + b.labels + b.targets):
        assert np.array_equal(x, y)
    assert np.array_equal(a.scales, b.scales)
    c = build_instance_data(root, ids[:4], target_area=200.0, cache=cache, progress=False)  # other A: rebuilt
    assert c.images[0].shape != a.images[0].shape
    with pytest.raises(InputError):
        build_instance_data(root, [], progress=False)


def test_crops_have_fixed_shapes_and_depend_only_on_the_key(tiny_stage1):
    root, ids = tiny_stage1
    data = build_instance_data(root, ids[:4], target_area=60.0, progress=False)
    ds = InstanceCropDataset(data, seed=3, size=32, jitter=(0.8, 1.25))
    x, y = ds[(0, 1)]
    assert x.shape == (3, 32, 32) and y.shape == (2, 32, 32) and x.dtype == y.dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    again = InstanceCropDataset(data, seed=3, size=32)
    assert np.array_equal(ds[(2, 3)][0].numpy(), again[(2, 3)][0].numpy())
    assert not np.array_equal(ds[(2, 3)][0].numpy(), ds[(3, 3)][0].numpy())


def test_small_images_are_padded_by_reflection():
    img = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)
    win = crop_window(img, 0, 0, 8)
    assert win.shape == (8, 8, 3) and np.array_equal(win[:5, :4], img)
    assert np.array_equal(win[5, :4], img[4]) and np.array_equal(win[:5, 4], img[:, 3])  # mirrored
    targets = np.zeros((2, 5, 4), np.uint8)
    targets[0, 1, 1] = 1
    im, tg = random_crop(img, targets, np.random.default_rng(0), 16, (1.0, 1.0))
    assert im.shape == (16, 16, 3) and tg.shape == (2, 16, 16) and tg.dtype == np.float32


def test_heldout_views_are_padded_to_the_view_size(tiny_stage1):
    root, ids = tiny_stage1
    data = build_instance_data(root, ids[:2], target_area=60.0, progress=False)
    views = heldout_views(data, size=32)
    assert views.x.shape == (2, 3, 32, 32) and views.y.shape == (2, 2, 32, 32)
    for lab, (h, w) in zip(views.labels, views.valid):
        assert lab.shape == (h, w) and h <= 32 and w <= 32
    with pytest.raises(InputError, match="multiple of 16"):
        heldout_views(data, size=40)


def test_area_weighted_crops_give_large_images_more_samples(tiny_stage1):
    root, ids = tiny_stage1
    data = build_instance_data(root, ids[:3], target_area=60.0, progress=False)
    assert crops_per_image(data, None).tolist() == [1, 1, 1]
    px = [lab.size for lab in data.labels]
    counts = crops_per_image(data, crop_area=min(px) / 2)
    assert counts.min() == 2
    assert all(counts[a] <= counts[b] for a in range(3) for b in range(3) if px[a] <= px[b])  # more pixels, more crops
    ds = InstanceCropDataset(data, seed=1, size=32, crops=counts)
    assert len(ds) == counts.sum() and ds[(0, len(ds) - 1)][0].shape == (3, 32, 32)
