"""The dock widget in a real viewer: opened from the plugin's manifest, run on a real DSB2018 image in a thread
worker, compared with `unetpp predict` on the same file; a stack, a cancel, a second Run and bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari", reason="napari (and Qt) not installed: pip install 'unetpp[napari]'")
pytest.importorskip("pytestqt", reason="pytest-qt not installed")

from napari.utils.notifications import notification_manager  # noqa: E402

from unetpp.napari.samples import FLUORESCENCE  # noqa: E402

TIMEOUT_MS = 120_000


def _dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("unetpp", "Segment nuclei")
    return widget


def _wait(qtbot, widget) -> None:
    qtbot.waitUntil(lambda: not widget.running, timeout=TIMEOUT_MS)


def _messages(start: int) -> list[str]:
    return [str(n.message) for n in notification_manager.records[start:]]


def test_plugins_menu_lists_the_widget(make_napari_viewer) -> None:
    viewer = make_napari_viewer()
    texts = [a.text() for a in viewer.window.plugins_menu.actions()]
    assert "Segment nuclei (unetpp)" in texts


def test_widget_matches_predict_on_a_real_image(make_napari_viewer, qtbot, predicted: Path, cli_labels,
                                                tmp_path: Path) -> None:
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("unetpp", "fluorescence")  # File > Open Sample > unetpp
    image = viewer.layers[FLUORESCENCE.stem]
    image.scale, image.translate = (0.5, 0.25), (10.0, -4.0)  # a calibrated image: the labels must follow
    widget = _dock(viewer)
    assert widget.image.value is image  # the layer list feeds the widget's choice
    seen: list[int] = []
    widget.progress.changed.connect(seen.append)
    widget.run_button.clicked.emit()  # a click on Run
    assert widget.running and not widget.run_button.enabled and widget.cancel_button.enabled
    _wait(qtbot, widget)

    labels = viewer.layers[f"{FLUORESCENCE.stem} nuclei"]
    expected = cli_labels(FLUORESCENCE.stem)
    assert labels.data.shape == expected.shape == image.data.shape
    assert labels.data.astype(np.uint16).tobytes() == expected.tobytes()  # byte-identical to `unetpp predict`
    n = int(expected.max())
    assert n > 10 and widget.status.value.startswith(f"{n} in ")
    np.testing.assert_allclose(labels.scale, image.scale)
    np.testing.assert_allclose(labels.translate, image.translate)
    assert seen[-1] == 100 and 0 < seen[0] < 100  # the bar moved during the run, not only at its end

    # features: predict's table plus the mean intensity of the image under each nucleus
    with open(predicted / f"{FLUORESCENCE.stem}_nuclei.csv") as f:
        rows = list(csv.DictReader(f))
    feats = labels.features
    assert len(feats) == len(rows) == n and list(feats["index"]) == list(range(1, n + 1))
    assert [int(r["area_px"]) for r in rows] == list(feats["area_px"])
    np.testing.assert_allclose([float(r["centroid_x"]) for r in rows], feats["centroid_x"], atol=1e-3)
    for k in (1, n // 2, n):
        assert feats["mean_intensity"][k - 1] == pytest.approx(image.data[expected == k].mean())

    # the table widget shows the same rows; export writes them
    assert widget.table.shape == (n, len(feats.columns) - 1)
    out = widget.export_csv(tmp_path / "table.csv")
    with open(out) as f:
        exported = list(csv.DictReader(f))
    assert [int(r["label"]) for r in exported] == list(range(1, n + 1))
    assert exported[0]["area_px"] == rows[0]["area_px"]

    # the rendered viewer shows the labels: hiding them changes the screenshot
    with_labels = viewer.screenshot(canvas_only=False, flash=False)
    labels.visible = False
    without = viewer.screenshot(canvas_only=False, flash=False)
    assert with_labels.shape == without.shape and (with_labels != without).any(axis=-1).sum() > 500


def test_stack_ids_unique_and_probability(make_napari_viewer, qtbot, cli_labels) -> None:
    from unetpp.napari.models import get_model

    plane0 = _sample()
    plane1 = np.ascontiguousarray(plane0[::-1])
    viewer = make_napari_viewer()
    viewer.add_image(np.stack([plane0, plane1]), name="stack")
    widget = _dock(viewer)
    widget.keep_prob.value = True
    assert widget.segment(viewer.layers["stack"])
    _wait(qtbot, widget)
    labels = viewer.layers["stack nuclei"].data
    first = cli_labels(FLUORESCENCE.stem).astype(np.int32)
    n0 = int(first.max())
    np.testing.assert_array_equal(labels[0], first)
    model, lock = get_model("instance")  # the widget's own, already open
    with lock:
        flipped, info = model.predict(plane1)
    np.testing.assert_array_equal(labels[1], np.where(flipped > 0, flipped + n0, 0))  # ids go on in plane 1
    feats = viewer.layers["stack nuclei"].features
    assert len(feats) == n0 + info["nuclei"] and set(feats["axis0"]) == {0, 1}
    prob = viewer.layers["stack probability"].data
    assert prob.shape == labels.shape and prob.dtype == np.float32
    np.testing.assert_allclose(prob[1], info["prob"], atol=1e-6)


def test_second_run_refused_then_cancel_adds_nothing(make_napari_viewer, qtbot) -> None:
    viewer = make_napari_viewer()
    viewer.add_image(np.stack([_sample()] * 6), name="long")
    widget = _dock(viewer)
    start = len(notification_manager.records)
    assert widget.segment(viewer.layers["long"])
    assert not widget.segment(viewer.layers["long"])  # a second Run while one is going
    assert any("already running" in m for m in _messages(start))
    widget.cancel_button.clicked.emit()  # a click on Cancel (mid-run cancels: tests/api/test_progress_cancel.py)
    _wait(qtbot, widget)
    assert "long nuclei" not in viewer.layers and widget.status.value == "cancelled"
    assert any("cancelled" in m and "no layer was added" in m for m in _messages(start))
    assert widget.run_button.enabled and not widget.cancel_button.enabled


def test_bad_input_is_a_notification_and_no_layer(make_napari_viewer, qtbot, tmp_path: Path) -> None:
    viewer = make_napari_viewer()
    widget = _dock(viewer)
    start = len(notification_manager.records)
    assert not widget.segment(None)  # Run with no image layer
    viewer.add_image(np.zeros((0, 64, 64), np.uint8), name="empty")  # a stack of no planes
    assert not widget.segment(viewer.layers["empty"])
    viewer.add_points(np.array([[1.0, 2.0]]), name="spots")
    assert not widget.segment(viewer.layers["spots"])
    msgs = _messages(start)
    assert "no image layer" in msgs[0]
    assert "'empty'" in msgs[1] and "empty array of shape (0, 64, 64)" in msgs[1]
    assert "'spots'" in msgs[2] and "found a Points layer" in msgs[2]

    viewer.add_image(_sample(), name="cells")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not an ONNX model")
    widget.model.value = "a file..."
    widget.model_file.value = broken
    assert widget.segment(viewer.layers["cells"])  # opening the model happens in the worker
    _wait(qtbot, widget)
    msgs = _messages(start)
    assert "cannot open model" in msgs[-1] and "broken.onnx" in msgs[-1]
    assert "\n" not in msgs[-1] and "Traceback" not in msgs[-1]
    assert [layer.name for layer in viewer.layers] == ["empty", "spots", "cells"]  # no half-made layer
    assert widget.status.value == "failed"


def _sample() -> np.ndarray:
    from unetpp.napari.imagefiles import read_as_layer

    return read_as_layer(FLUORESCENCE)
