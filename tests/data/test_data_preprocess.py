"""The guide's input: ((img/255 - mean)/std)/255 in BGR order, raw float32 .bin of 110,592 bytes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from unetpp.config import PreprocessConfig
from unetpp.data.preprocess import (
    list_inputs,
    normalize,
    preprocess_folder,
    read_bgr,
    read_input,
    read_logits,
)
from unetpp.errors import InputError

# A constant image with B=255, G=0, R=128, worked out by hand; channel 0 is B and gets mean 0.485 / std 0.229:
B_VAL = (1.0 - 0.485) / 0.229 / 255  # 2.2489083 / 255 = 0.0088192482
G_VAL = (0.0 - 0.456) / 0.224 / 255  # -2.0357143 / 255 = -0.0079831933
R_VAL = (128 / 255 - 0.406) / 0.225 / 255  # 0.4264924 / 255 = 0.0016725191


def _const_bgr(size: int = 96) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 255, 0, 128
    return img


def test_normalize_constant_image_by_hand():
    x = normalize(_const_bgr())
    assert x.dtype == np.float32 and x.shape == (3, 96, 96)
    np.testing.assert_allclose(x[0], 0.0088192482, rtol=1e-6)
    np.testing.assert_allclose(x[1], -0.0079831933, rtol=1e-6)
    np.testing.assert_allclose(x[2], 0.0016725191, rtol=1e-5)
    np.testing.assert_allclose([x[0, 0, 0], x[1, 5, 7], x[2, 95, 95]], [B_VAL, G_VAL, R_VAL], rtol=1e-5)


def test_normalize_equals_albumentations_then_divide():
    A = pytest.importorskip("albumentations")
    img = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    ref = (A.Normalize()(image=img)["image"].astype("float32") / 255).transpose(2, 0, 1)
    np.testing.assert_allclose(normalize(img), ref, rtol=1e-6, atol=1e-9)


def test_normalize_rejects_non_uint8_bgr():
    with pytest.raises(InputError, match="uint8 HxWx3"):
        normalize(np.zeros((96, 96), np.uint8))
    with pytest.raises(InputError, match="uint8 HxWx3"):
        normalize(np.zeros((96, 96, 3), np.float32))


@pytest.fixture()
def images_dir(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    cv2.imwrite(str(d / "b.png"), _const_bgr())
    cv2.imwrite(str(d / "a.png"), np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8))
    return d


def test_preprocess_folder_bin(images_dir, tmp_path):
    out = tmp_path / "bin"
    assert preprocess_folder(images_dir, out, ["b", "a"], progress=False) == 2
    assert sorted(p.name for p in out.iterdir()) == ["a.bin", "b.bin"]
    assert (out / "b.bin").stat().st_size == 110_592
    raw = np.fromfile(out / "b.bin", dtype="<f4").reshape(3, 96, 96)
    np.testing.assert_allclose(raw[:, 10, 20], [B_VAL, G_VAL, R_VAL], rtol=1e-5)
    np.testing.assert_array_equal(read_input(out / "b.bin"), raw)
    np.testing.assert_array_equal(read_input(out / "a.bin"), normalize(cv2.imread(str(images_dir / "a.png"))))
    assert list_inputs(out) == [out / "a.bin", out / "b.bin"]


def test_preprocess_folder_npy(images_dir, tmp_path):
    out = tmp_path / "npy"
    preprocess_folder(images_dir, out, ["b"], fmt="npy", progress=False)
    arr = np.load(out / "b.npy")
    assert arr.shape == (3, 96, 96) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[:, 0, 0], [B_VAL, G_VAL, R_VAL], rtol=1e-5)
    np.testing.assert_array_equal(read_input(out / "b.npy"), arr)


def test_preprocess_folder_errors(images_dir, tmp_path):
    with pytest.raises(InputError, match=r"none for x1, x2"):
        preprocess_folder(images_dir, tmp_path / "o", ["a", "x1", "x2"], progress=False)
    cv2.imwrite(str(images_dir / "small.png"), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(InputError, match=r"expected 96x96, found 64x64"):
        preprocess_folder(images_dir, tmp_path / "o", ["small"], progress=False)
    with pytest.raises(InputError, match="bin or npy"):
        preprocess_folder(images_dir, tmp_path / "o", ["a"], fmt="txt", progress=False)


def test_read_input_wrong_size_names_both(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(np.zeros(3 * 64 * 64, "<f4").tobytes())
    with pytest.raises(InputError, match=r"expected 110592 bytes .*found 49152 bytes"):
        read_input(p)
    np.save(tmp_path / "y.npy", np.zeros((3, 64, 64), np.float32))
    with pytest.raises(InputError, match=r"shape \(3, 96, 96\).*found shape \(3, 64, 64\)"):
        read_input(tmp_path / "y.npy")
    assert read_input(p, PreprocessConfig(size=64)).shape == (3, 64, 64)


def test_read_logits(tmp_path):
    logits = np.arange(96 * 96, dtype=np.float32).reshape(96, 96)
    logits.astype("<f4").tofile(tmp_path / "a_0.bin")
    assert (tmp_path / "a_0.bin").stat().st_size == 36_864
    np.testing.assert_array_equal(read_logits(tmp_path / "a_0.bin", 96), logits)
    np.save(tmp_path / "b_0.npy", logits[None, None])
    np.testing.assert_array_equal(read_logits(tmp_path / "b_0.npy", 96), logits)
    with pytest.raises(InputError, match=r"expected 16384 bytes .*found 36864 bytes"):
        read_logits(tmp_path / "a_0.bin", 64)


def test_list_inputs_and_read_bgr_errors(tmp_path):
    with pytest.raises(InputError, match="at least one .bin or .npy"):
        list_inputs(tmp_path)
    with pytest.raises(InputError, match="nothing at"):
        list_inputs(tmp_path / "absent")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        read_bgr(bad)
    with pytest.raises(InputError, match="no such file"):
        read_bgr(tmp_path / "absent.png")
