"""The "Segment nuclei" dock widget: an image layer in; a Labels layer (aligned with the image, one id per nucleus,
the nucleus table as its features), the count, a table with CSV export and optionally the probability map out.

The work runs in a napari thread worker (the viewer stays responsive) that reports progress tile by tile and
stops between runtime calls on Cancel. Every problem (no or wrong layer, a model that cannot be opened, a cancel)
becomes one napari notification naming it; layers are added only once a run has succeeded, all together.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    Table,
    create_widget,
)
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info

from unetpp.atomic import write_text_atomic
from unetpp.errors import Cancelled, InputError, UnetppError, expected_found
from unetpp.napari.models import SHIPPED, get_model
from unetpp.napari.planes import ImageStack, Segmentation, image_stack, segment_stack
from unetpp.predict.protocol import applied_line
from unetpp.predict.table import csv_text

TITLE = "Segment nuclei"
MODEL_FILE = "a file..."
BACKENDS = ("auto", "onnxruntime", "openvino", "torch")
MODEL_FILTER = "Models (*.pt *.pth *.onnx *.xml *.zip *.yaml)"


@dataclass(frozen=True)
class Request:
    """One run, read from the widget in the main thread."""

    layer_name: str
    stack: ImageStack
    model: str
    backend: str | None
    scale: str | float
    tta: bool
    keep_prob: bool


@dataclass(frozen=True)
class Outcome:
    """What a run gives back to the main thread: a segmentation, or why there is none."""

    segmentation: Segmentation | None = None
    error: str | None = None
    cancelled: bool = False


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_request(request: Request, progress: Any, cancel: threading.Event) -> Segmentation:
    model, lock = get_model(request.model, request.backend)
    with lock:
        return segment_stack(model, request.stack, keep_prob=request.keep_prob, progress=progress, cancel=cancel,
                             scale=request.scale, tta=request.tta)


def segmentation_job(request: Request, cancel: threading.Event) -> Iterator[float]:
    """The thread worker's generator: yields progress fractions, returns an Outcome; never raises (a worker's
    exception would reach napari as a traceback)."""
    events: queue.Queue = queue.Queue()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["segmentation"] = run_request(request, events.put, cancel)
        except Cancelled:
            box["cancelled"] = True
        except UnetppError as exc:
            box["error"] = _one_line(exc)
        except Exception as exc:  # noqa: BLE001 - one line in a notification, never a traceback dialog
            box["error"] = f"{type(exc).__name__}: {_one_line(exc)}"
        finally:
            events.put(None)

    thread = threading.Thread(target=target, name="unetpp-segment", daemon=True)
    thread.start()
    while (fraction := events.get()) is not None:
        yield fraction
    thread.join()
    return Outcome(box.get("segmentation"), box.get("error"), box.get("cancelled", False))


def table_rows(features: pd.DataFrame) -> dict[str, Any]:
    """The table widget's content: every column but napari's `index`, integers as integers, 2 decimals else."""
    shown = features.drop(columns="index")
    rows = [[round(v, 2) if isinstance(v, float) else v for v in row]
            for row in shown.astype(object).itertuples(index=False, name=None)]
    return {"data": rows, "index": list(range(1, len(rows) + 1)), "columns": list(shown.columns)}


class SegmentNucleiWidget(Container):
    """Plugins > unetpp > Segment nuclei."""

    def __init__(self, napari_viewer: Any) -> None:
        self.viewer = napari_viewer
        self.image = create_widget(annotation=Image, label="image")
        self.model = ComboBox(label="model", choices=[*SHIPPED, MODEL_FILE], value="instance",
                              tooltip="a shipped model, or a checkpoint, ONNX, OpenVINO IR or zoo package file")
        self.model_file = FileEdit(label="model file", mode="r", filter=MODEL_FILTER, visible=False)
        self.auto_scale = CheckBox(text="auto scale (the model's own rule)", value=True)
        self.scale = FloatSpinBox(label="scale", value=1.0, min=0.05, max=10.0, step=0.05, enabled=False,
                                  tooltip="resize factor applied before the model's windows")
        self.tta = CheckBox(text="test-time augmentation (8 views, 8x slower)", value=False)
        self.backend = ComboBox(label="runtime", choices=list(BACKENDS), value="auto")
        self.keep_prob = CheckBox(text="add the probability map", value=False)
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", min=0, max=100, value=0)
        self.status = Label(label="nuclei", value="")
        self.status.native.setWordWrap(True)  # the protocol line wraps instead of widening the dock
        self.table = Table(label="table")
        self.table.read_only = True
        self.export_button = PushButton(text="Export CSV...", enabled=False)
        buttons = Container(widgets=[self.run_button, self.cancel_button], layout="horizontal", labels=False)
        super().__init__(widgets=[self.image, self.model, self.model_file, self.auto_scale, self.scale, self.tta,
                                  self.backend, self.keep_prob, buttons, self.progress, self.status, self.table,
                                  self.export_button])
        self.worker: Any = None
        self.features: pd.DataFrame | None = None
        self.result_name = ""
        self._cancel = threading.Event()
        self.model.changed.connect(lambda v: setattr(self.model_file, "visible", v == MODEL_FILE))
        self.auto_scale.changed.connect(lambda v: setattr(self.scale, "enabled", not v))
        self.run_button.changed.connect(self._on_run)
        self.cancel_button.changed.connect(self.cancel)
        self.export_button.changed.connect(self._on_export)
        self.native.destroyed.connect(lambda *_: self._cancel.set())  # a closed viewer stops its run

    # -- reading the form --------------------------------------------------------------------------
    def request_for(self, layer: Any) -> Request:
        """The run the form describes for `layer`; an InputError names what is wrong with the layer or form."""
        if layer is None:
            raise InputError("no image layer to segment: open an image (File > Open, or File > Open Sample > unetpp)")
        if not isinstance(layer, Image):
            raise InputError(expected_found(f"layer {layer.name!r}", "an image layer",
                                            f"a {type(layer).__name__} layer"))
        if layer.multiscale:
            raise InputError(expected_found(f"layer {layer.name!r}", "a single-resolution image",
                                            f"a multiscale image of {len(layer.data)} levels"))
        stack = image_stack(layer.data, layer.rgb, layer.name)
        model = self.model.value
        if model == MODEL_FILE:
            path = Path(self.model_file.value or "")
            if not path.is_file():
                raise InputError(expected_found("model file", "an existing checkpoint, ONNX, IR or zoo package",
                                                f"nothing at {path}" if str(path) not in ("", ".") else "none chosen"))
            model = str(path)
        backend = None if self.backend.value == "auto" else self.backend.value
        scale: str | float = "auto" if self.auto_scale.value else float(self.scale.value)
        return Request(layer.name, stack, model, backend, scale, bool(self.tta.value), bool(self.keep_prob.value))

    # -- running -----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    def _on_run(self, *_: Any) -> None:
        self.segment(self.image.value)

    def segment(self, layer: Any) -> bool:
        """Start a run on `layer` (what Run does with the chosen layer); False, with a notification, if refused."""
        if self.running:
            show_info(f"{TITLE} is already running on {self.result_name!r}: wait for it, or press Cancel")
            return False
        try:
            request = self.request_for(layer)
        except UnetppError as exc:
            show_error(f"{TITLE}: {_one_line(exc)}")
            return False
        self._cancel = threading.Event()
        self.result_name = request.layer_name
        worker = create_worker(segmentation_job, request, self._cancel, _start_thread=False)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda outcome: self._on_outcome(layer, request, outcome))
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.progress.value = 0
        self.status.value = f"running on {request.layer_name!r} ..."
        self.run_button.enabled, self.cancel_button.enabled = False, True
        worker.start()
        return True

    def cancel(self, *_: Any) -> None:
        """Stop the run before its next runtime call; it adds no layer."""
        if self.running:
            self._cancel.set()
            self.status.value = "cancelling ..."

    def _on_progress(self, fraction: float) -> None:
        self.progress.value = round(100 * fraction)

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.enabled, self.cancel_button.enabled = True, False

    def _on_outcome(self, layer: Image, request: Request, outcome: Outcome) -> None:
        if outcome.cancelled:
            self.status.value = "cancelled"
            self.progress.value = 0
            show_info(f"{TITLE}: the run on {request.layer_name!r} was cancelled; no layer was added")
            return
        if outcome.error is not None or outcome.segmentation is None:
            self.status.value = "failed"
            self.progress.value = 0
            show_error(f"{TITLE}: {outcome.error}")
            return
        self.show_result(layer, request, outcome.segmentation)

    # -- results -----------------------------------------------------------------------------------
    def show_result(self, layer: Image, request: Request, seg: Segmentation) -> Labels:
        """Add (or refresh) the Labels layer `<image> nuclei` on the image's grid, the probability map if asked,
        the count and the table."""
        geometry = {"scale": layer.scale, "translate": layer.translate, "rotate": layer.rotate,
                    "shear": layer.shear, "affine": layer.affine}
        features = pd.DataFrame(seg.columns)
        if request.keep_prob and seg.prob is not None:
            self._put(Image, f"{request.layer_name} probability", seg.prob, geometry,
                      colormap="magma", contrast_limits=(0.0, 1.0), blending="additive", opacity=0.6)
        labels = self._put(Labels, f"{request.layer_name} nuclei", seg.labels, geometry, features=features)
        planes = request.stack.n_planes
        self.status.value = f"{seg.count} in {request.layer_name!r}" + (f", {planes} planes" if planes > 1 else "")
        applied = (seg.meta or [{}])[0].get("protocol")
        if applied:  # the values applied, the model's own included (predict/protocol.py)
            labels.metadata["unetpp_protocol"] = applied
            self.status.value += f" ({applied_line(applied)})"
        self.progress.value = 100
        self.features = features
        self.table.value = table_rows(features)
        self.export_button.enabled = True
        return labels

    def _put(self, kind: type, name: str, data: Any, geometry: dict[str, Any], **kwargs: Any) -> Any:
        """A new layer, or the data of an earlier run's layer of the same name and kind replaced in place."""
        if name in self.viewer.layers and isinstance(self.viewer.layers[name], kind):
            old = self.viewer.layers[name]
            for key, value in geometry.items():
                setattr(old, key, value)
            old.data = data
            if "features" in kwargs:
                old.features = kwargs["features"]
            return old
        add = self.viewer.add_labels if kind is Labels else self.viewer.add_image
        return add(data, name=name, **geometry, **kwargs)

    def export_csv(self, path: str | Path) -> Path:
        """The table shown (one row per nucleus) as CSV, written atomically."""
        if self.features is None:
            raise InputError("no nucleus table yet: run a segmentation first")
        path = Path(path)
        shown = self.features.drop(columns="index")
        write_text_atomic(path, csv_text(list(shown.columns), list(shown.astype(object).itertuples(index=False))))
        return path

    def _on_export(self, *_: Any) -> None:
        from qtpy.QtWidgets import QFileDialog

        default = f"{self.result_name}_nuclei.csv"
        path, _filter = QFileDialog.getSaveFileName(self.native, "Export the nucleus table", default, "CSV (*.csv)")
        if not path:
            return
        try:
            show_info(f"{TITLE}: wrote {self.export_csv(path)}")
        except (UnetppError, OSError) as exc:
            show_error(f"{TITLE}: cannot write {path}: {_one_line(exc)}")
