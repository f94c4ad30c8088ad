"""`unetpp.segment_nuclei`, found through npe2's plugin manager as a workflow plugin finds it: the same labels as
`unetpp predict` for the same image, whatever layout the array has (grey, RGB, RGBA, 16-bit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

npe2 = pytest.importorskip("npe2", reason="napari (npe2) not installed: pip install 'unetpp[napari]'")

from unetpp.errors import InputError  # noqa: E402
from unetpp.napari.imagefiles import read_as_layer  # noqa: E402
from unetpp.napari.models import ModelOpenError  # noqa: E402
from unetpp.napari.samples import FLUORESCENCE, STAINED  # noqa: E402


@pytest.fixture(scope="module")
def command():
    pm = npe2.PluginManager.instance()
    pm.discover()
    assert pm.get_manifest("unetpp").package_metadata.name == "unetpp"  # found through the installed entry point
    contribution = pm.get_command("unetpp.segment_nuclei")
    return lambda *args, **kwargs: contribution.exec(args=args, kwargs=kwargs)


def test_rgb_and_rgba_give_predicts_labels(command, cli_labels) -> None:
    rgb = read_as_layer(STAINED)
    expected = cli_labels(STAINED.stem)
    labels = command(rgb)
    assert labels.dtype == np.int32 and labels.shape == rgb.shape[:2]
    assert labels.astype(np.uint16).tobytes() == expected.tobytes()
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(command(rgba), labels)


def test_grey_8_and_16_bit(command, cli_labels, predict_inputs: Path) -> None:
    import cv2

    grey = read_as_layer(FLUORESCENCE)
    assert grey.ndim == 2
    assert command(grey).astype(np.uint16).tobytes() == cli_labels(FLUORESCENCE.stem).tobytes()
    grey16 = cv2.imread(str(predict_inputs / "fluorescence16.png"), cv2.IMREAD_UNCHANGED)
    assert grey16.dtype == np.uint16
    assert command(grey16).astype(np.uint16).tobytes() == cli_labels("fluorescence16").tobytes()


def test_refusals_name_the_problem(command, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="at least 2 dimensions"):
        command(np.zeros(100, np.uint8))
    with pytest.raises(InputError, match="integer or float samples"):
        command(np.zeros((32, 32), bool))
    with pytest.raises(ModelOpenError, match="cannot open model .*nothing.onnx"):
        command(np.zeros((32, 32), np.uint8), model=str(tmp_path / "nothing.onnx"))


def test_a_4d_int64_stack_plane_by_plane(command) -> None:
    from unetpp.napari.models import get_model

    grey = read_as_layer(FLUORESCENCE)
    stack = np.stack([grey, grey]).astype(np.int64)[:, None]  # (t, z, y, x), a sample type the reader lacks
    labels = command(stack)
    assert labels.shape == stack.shape and labels.dtype == np.int32
    model, lock = get_model("instance")
    with lock:
        expected, info = model.predict(grey.astype(np.float32))  # what int64 stands for: stretched like 16-bit
    np.testing.assert_array_equal(labels[0, 0], expected)
    np.testing.assert_array_equal(labels[1, 0], np.where(expected > 0, expected + info["nuclei"], 0))
