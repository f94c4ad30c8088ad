"""The Python API as a notebook uses it: the README's examples run here, against the shipped model and against
the command line's own outputs for the same image."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import unetpp
from unetpp.cli.main import main

DISCS = [(40, 50, 11), (40, 200, 14), (120, 120, 12), (190, 60, 10), (200, 210, 13)]  # (cy, cx, r)


def _discs_rgb() -> np.ndarray:
    img = np.full((256, 256, 3), 8, np.uint8)
    for cy, cx, r in DISCS:
        cv2.circle(img, (cx, cy), r, (190, 170, 150), -1)
    return img  # RGB by construction (the colour is not symmetric: channel order matters)


@pytest.fixture(scope="module", autouse=True)
def default_runtime():
    """This module runs what a user gets: the default runtime (the shipped int8 build where OpenVINO is installed,
    cheap), not the suite's fp32 override; unetpp.load() and the CLI calls below both see it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("UNETPP_DEFAULT_RUNTIME", raising=False)
        yield


@pytest.fixture(scope="module")
def model():
    with unetpp.load() as m:  # the shipped instance model; --mode auto = tile for it
        yield m


def test_readme_example_finds_each_disc(model) -> None:
    labels, info = model.predict(_discs_rgb())
    assert labels.shape == (256, 256) and labels.dtype == np.int32
    assert info["nuclei"] == len(DISCS) == int(labels.max())
    centres = sorted((round(r["centroid_y"]), round(r["centroid_x"])) for r in info["table"])
    for (cy, cx, _), (y, x) in zip(sorted(DISCS), centres):
        assert abs(cy - y) <= 2 and abs(cx - x) <= 2
    # the instance model's own scale rule: the median disc (r = 12, area 452 px) scaled to cover 150 px
    assert info["meta"]["scale_rule"] == "nuclei@150"
    assert info["prob"].shape == (256, 256) and info["meta"]["scale"] == pytest.approx((150 / (np.pi * 144)) ** 0.5,
                                                                                        rel=0.05)


def test_same_labels_as_the_command_line(model, tmp_path: Path) -> None:
    rgb = _discs_rgb()
    cv2.imwrite(str(tmp_path / "discs.png"), rgb[:, :, ::-1])  # cv2 writes BGR
    assert main(["predict", str(tmp_path / "discs.png"), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    cli = cv2.imread(str(tmp_path / "out" / "discs_labels.png"), cv2.IMREAD_UNCHANGED)
    labels, _ = model.predict(rgb)
    np.testing.assert_array_equal(labels, cli.astype(np.int32))
    bgr_labels, _ = model.predict(rgb[:, :, ::-1], channel_order="bgr")
    np.testing.assert_array_equal(bgr_labels, labels)


def test_grey_16bit_and_many_images(model) -> None:
    grey16 = (_discs_rgb()[:, :, 0].astype(np.uint16) * 257)
    (l16, i16), (l8, i8) = model.predict_many([grey16, _discs_rgb()[:, :, 0]])
    assert i16["nuclei"] == i8["nuclei"] == len(DISCS) and l16.shape == l8.shape == (256, 256)


def test_predict_folder_and_model_info(model, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), _discs_rgb())
    summary = model.predict_folder(tmp_path / "a.png", tmp_path / "out", mode="resize")
    assert summary["n_predicted"] == 1 and (tmp_path / "out" / "a_labels.png").is_file()
    assert json.loads((tmp_path / "out" / "predict_summary.json").read_text())["settings"]["options"]["mode"] == \
        "resize"
    info = model.info
    from unetpp.compile.fast import openvino_available

    assert info["backend"] == ("openvino" if openvino_available() else "onnxruntime")  # what this install has
    assert info["outputs"] == ["foreground", "border"]
    assert info["preprocess"]["channel_order"] == "BGR" and info["preprocess_from"] == "model metadata"


def test_bad_arguments_are_clear(model) -> None:
    with pytest.raises(unetpp.UnetppError, match="expected a 2-D image array"):
        model.predict(np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(unetpp.UnetppError, match="predict options"):
        model.predict(_discs_rgb(), colour="blue")
    with pytest.raises(unetpp.UnetppError, match="channel_order"):
        model.predict(_discs_rgb(), channel_order="gbr")


def test_the_guide_model_by_name_keeps_the_guide_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--model guide`: the 1-output model, and --mode auto resolves to the guide's resize protocol."""
    monkeypatch.setenv("UNETPP_DEFAULT_RUNTIME", "fp32")  # the guide model ships no int8 build: no build here
    cv2.imwrite(str(tmp_path / "a.png"), _discs_rgb())
    with unetpp.load("guide") as guide:
        assert guide.info["outputs"] == ["foreground"]
        _, info = guide.predict(_discs_rgb())
        assert info["meta"].get("scale_rule") is None and info["nuclei"] == len(DISCS)
    assert main(["predict", str(tmp_path / "a.png"), "-o", str(tmp_path / "g"), "--model", "guide",
                 "--no-progress"]) == 0
    settings = json.loads((tmp_path / "g" / "predict_summary.json").read_text())["settings"]
    assert settings["options"]["mode"] == "resize"
