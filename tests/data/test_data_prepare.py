"""prepare_dsb2018 against a direct cv2 computation of upstream's preprocess_dsb2018.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from unetpp.data.prepare import find_stage1_train, load_prepared, prepare_dsb2018
from unetpp.errors import InputError


def _expected(bgr: np.ndarray, instances: list[np.ndarray], size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Upstream, written out: resize the BGR image; union of instances > 127 as float, resize, *255, truncate."""
    union = np.zeros(bgr.shape[:2])
    for m in instances:
        union[m > 127] = 1
    return cv2.resize(bgr, (size, size)), (cv2.resize(union, (size, size)) * 255).astype(np.uint8)


def _make_sample(root: Path, id_: str, stored: np.ndarray, instances: list[np.ndarray]) -> None:
    (root / id_ / "images").mkdir(parents=True)
    (root / id_ / "masks").mkdir()
    assert cv2.imwrite(str(root / id_ / "images" / f"{id_}.png"), stored)
    for k, m in enumerate(instances):
        assert cv2.imwrite(str(root / id_ / "masks" / f"m{k}.png"), m)


@pytest.fixture()
def small_set(tmp_path: Path) -> tuple[Path, dict[str, tuple[np.ndarray, list[np.ndarray]]]]:
    rng = np.random.default_rng(3)
    h, w = 40, 52
    root = tmp_path / "stage1_train"
    samples = {}
    for kind in ("grey", "rgb", "rgba"):
        a = np.zeros((h, w), np.uint8)
        a[5:15, 4:20] = 255
        b = np.zeros((h, w), np.uint8)
        b[20:33, 30:47] = 255
        b[0:3, 0:3] = 100  # <= 127: not part of the nucleus
        if kind == "grey":
            stored = rng.integers(0, 256, (h, w), dtype=np.uint8)
            bgr = np.repeat(stored[..., None], 3, axis=2)
        elif kind == "rgb":
            stored = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            bgr = stored  # cv2 writes and reads BGR arrays unchanged
        else:
            stored = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
            bgr = stored[..., :3]  # the alpha channel is dropped
        _make_sample(root, f"id_{kind}", stored, [a, b])
        samples[f"id_{kind}"] = (np.ascontiguousarray(bgr), [a, b])
    return root, samples


def test_prepare_matches_upstream_on_grey_rgb_rgba(small_set, tmp_path):
    root, samples = small_set
    dst = tmp_path / "dsb2018_96"
    assert prepare_dsb2018(root, dst, progress=False) == 3
    for id_, (bgr, instances) in samples.items():
        exp_img, exp_mask = _expected(bgr, instances)
        img = cv2.imread(str(dst / "images" / f"{id_}.png"), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(dst / "masks" / "0" / f"{id_}.png"), cv2.IMREAD_UNCHANGED)
        assert img.shape == (96, 96, 3) and img.dtype == np.uint8
        assert mask.shape == (96, 96) and mask.dtype == np.uint8
        np.testing.assert_array_equal(img, exp_img)
        np.testing.assert_array_equal(mask, exp_mask)
        assert mask[0:2, 0:2].max() == 0  # the 100-valued corner is not a nucleus
        assert ((mask > 0) & (mask < 255)).any()  # soft edges from the linear resize
        li, lm = load_prepared(dst, id_)
        np.testing.assert_array_equal(li, exp_img)
        np.testing.assert_array_equal(lm, exp_mask)


def test_rerun_skips_done_ids(small_set, tmp_path):
    root, _ = small_set
    dst = tmp_path / "out"
    prepare_dsb2018(root, dst, progress=False)
    stamp = (dst / "images" / "id_rgb.png").stat().st_mtime_ns
    assert prepare_dsb2018(root, dst, progress=False) == 0
    assert (dst / "images" / "id_rgb.png").stat().st_mtime_ns == stamp
    (dst / "masks" / "0" / "id_grey.png").unlink()
    assert prepare_dsb2018(root, dst, progress=False) == 1
    assert not list(dst.rglob("*.tmp"))


def test_size_and_ids_options(small_set, tmp_path):
    root, samples = small_set
    dst = tmp_path / "o"
    assert prepare_dsb2018(root, dst, size=32, ids=["id_rgba"], progress=False) == 1
    assert [p.name for p in (dst / "images").iterdir()] == ["id_rgba.png"]
    exp_img, exp_mask = _expected(*samples["id_rgba"], size=32)
    np.testing.assert_array_equal(cv2.imread(str(dst / "images" / "id_rgba.png")), exp_img)
    with pytest.raises(InputError, match="nope"):
        prepare_dsb2018(root, dst, ids=["nope"], progress=False)


def test_corrupt_png_is_named(small_set, tmp_path):
    root, _ = small_set
    bad = root / "id_rgb" / "images" / "id_rgb.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(InputError, match=r"id_rgb\.png.*PNG signature"):
        prepare_dsb2018(root, tmp_path / "o", progress=False)
    good = cv2.imencode(".png", np.full((40, 52, 3), 7, np.uint8))[1].tobytes()
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match=r"id_rgb\.png.*cannot decode"):
        prepare_dsb2018(root, tmp_path / "o", progress=False)


def test_missing_image_and_empty_source(small_set, tmp_path):
    root, _ = small_set
    (root / "id_grey" / "images" / "id_grey.png").unlink()
    with pytest.raises(InputError, match="id_grey"):
        prepare_dsb2018(root, tmp_path / "o", progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty folder"):
        prepare_dsb2018(empty, tmp_path / "o2", progress=False)


def test_find_stage1_train(tmp_path):
    (tmp_path / "stage1_train").mkdir()
    assert find_stage1_train(tmp_path) == tmp_path / "stage1_train"
    assert find_stage1_train(tmp_path / "stage1_train") == tmp_path / "stage1_train"
    with pytest.raises(InputError):
        find_stage1_train(tmp_path / "absent")


def test_prepare_real_ids(dsb_root, val_ids, tmp_path):
    ids = val_ids[:3]
    dst = tmp_path / "dsb2018_96"
    assert prepare_dsb2018(dsb_root / "stage1_train", dst, ids=ids, progress=False) == 3
    for id_ in ids:
        sample = dsb_root / "stage1_train" / id_
        bgr = cv2.imread(str(sample / "images" / f"{id_}.png"))
        instances = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in (sample / "masks").glob("*.png")]
        exp_img, exp_mask = _expected(bgr, instances)
        np.testing.assert_array_equal(cv2.imread(str(dst / "images" / f"{id_}.png")), exp_img)
        np.testing.assert_array_equal(cv2.imread(str(dst / "masks" / "0" / f"{id_}.png"), cv2.IMREAD_GRAYSCALE),
                                      exp_mask)
