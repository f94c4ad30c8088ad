"""Reading any image to 3-channel BGR uint8: bit depths, channel layouts, formats, and bad files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from unetpp.errors import InputError
from unetpp.predict.imageio import read_image, to_uint8


@pytest.fixture()
def bgr() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)


def test_rgb_png_and_tiff_are_bgr_as_written(tmp_path: Path, bgr: np.ndarray):
    for name in ("a.png", "a.tif", "a.tiff"):
        cv2.imwrite(str(tmp_path / name), bgr)
        img, info = read_image(tmp_path / name)
        assert img.dtype == np.uint8 and img.shape == (40, 56, 3)
        np.testing.assert_array_equal(img, bgr)
        assert (info.height, info.width, info.channels, info.dtype) == (40, 56, 3, "uint8")


def test_grey_is_replicated_and_rgba_drops_alpha(tmp_path: Path, bgr: np.ndarray):
    grey = bgr[:, :, 1].copy()
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    img, info = read_image(tmp_path / "g.png")
    assert info.channels == 1
    for c in range(3):
        np.testing.assert_array_equal(img[:, :, c], grey)
    bgra = np.dstack([bgr, np.full(grey.shape, 7, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    img, info = read_image(tmp_path / "rgba.png")
    assert info.channels == 4
    np.testing.assert_array_equal(img, bgr)


def test_grey_alpha_png(tmp_path: Path, bgr: np.ndarray):
    image = pytest.importorskip("PIL.Image")
    grey = bgr[:, :, 0]
    image.fromarray(np.dstack([grey, np.full(grey.shape, 9, np.uint8)]), mode="LA").save(tmp_path / "la.png")
    img, _ = read_image(tmp_path / "la.png")
    assert img.shape == (40, 56, 3)
    for c in range(3):
        np.testing.assert_array_equal(img[:, :, c], grey)


def test_16bit_grey_png_and_tiff(tmp_path: Path, bgr: np.ndarray):
    grey = bgr[:, :, 2]
    g16 = grey.astype(np.uint16) * 257  # the 16-bit copy of an 8-bit image
    for name in ("g16.png", "g16.tif"):
        cv2.imwrite(str(tmp_path / name), g16)
        img, info = read_image(tmp_path / name, bit16="257")
        assert info.dtype == "uint16" and img.dtype == np.uint8
        np.testing.assert_array_equal(img[:, :, 0], grey)  # v / 257 gives the 8-bit values back exactly
    # a 12-bit camera in a 16-bit container: stretch maps the 0.1..99.9th percentiles to 0..255
    ramp = np.tile(np.linspace(100, 4095, 1001).round().astype(np.uint16), (4, 1))
    cv2.imwrite(str(tmp_path / "cam.tif"), ramp)
    img, _ = read_image(tmp_path / "cam.tif")
    lo, hi = np.percentile(ramp.astype(np.float32), (0.1, 99.9))
    expect = np.clip(np.rint((ramp.astype(np.float32) - lo) * (255.0 / (hi - lo))), 0, 255)
    np.testing.assert_array_equal(img[:, :, 0], expect.astype(np.uint8))
    assert img[:, 0, 0].max() == 0 and img[:, -1, 0].min() == 255 and abs(int(img[0, 500, 0]) - 128) <= 1
    assert read_image(tmp_path / "cam.tif", bit16="257")[0].max() == 16  # why /257 is not the default
    # 16-bit RGB keeps the channel order
    cv2.imwrite(str(tmp_path / "c16.png"), bgr.astype(np.uint16) * 257)
    np.testing.assert_array_equal(read_image(tmp_path / "c16.png", bit16="257")[0], bgr)


def test_flat_16bit_and_jpeg(tmp_path: Path, bgr: np.ndarray):
    assert to_uint8(np.full((3, 3), 257 * 40, np.uint16)).max() == 40
    yy, xx = np.mgrid[0:40, 0:56]
    smooth = np.dstack([yy * 5, xx * 4, 200 - yy * 2]).astype(np.uint8)  # JPEG is lossy: a smooth image
    cv2.imwrite(str(tmp_path / "a.jpg"), smooth, [cv2.IMWRITE_JPEG_QUALITY, 100])
    img, _ = read_image(tmp_path / "a.jpg")
    assert img.shape == smooth.shape and np.abs(img.astype(int) - smooth).mean() < 3


def _msg(path: Path) -> str:
    with pytest.raises(InputError) as exc:
        read_image(path)
    return str(exc.value)


def test_bad_files_say_expected_and_found(tmp_path: Path, bgr: np.ndarray):
    cv2.imwrite(str(tmp_path / "ok.png"), bgr)
    cv2.imwrite(str(tmp_path / "ok.jpg"), bgr)
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "anim.gif").write_bytes(b"GIF89a" + bytes(30))
    (tmp_path / "fake.png").write_text("not a png")
    cases = {
        "trunc.png": "cannot decode (truncated or corrupt)",
        "trunc.jpg": "truncated",
        "empty.png": "empty file (0 bytes)",
        "notes.txt": "suffix '.txt'",
        "anim.gif": "suffix '.gif'",
        "fake.png": "PNG signature",
        "missing.png": "no such file",
    }
    for name, found in cases.items():
        msg = _msg(tmp_path / name)
        assert "expected" in msg and found in msg, (name, msg)
        assert name in msg
