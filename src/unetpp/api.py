"""The Python API: the same models, runtimes and driver as the command line, for notebooks and other tools.

    import unetpp
    model = unetpp.load()                      # the shipped model on ONNX Runtime
    labels, info = model.predict(image)        # any 2-D image array -> uint16-able int32 labels + details
    print(info["nuclei"], info["table"][:3])
    summary = model.predict_folder("images/", "out/", mode="tile")
    scores = unetpp.evaluate("runs/main/results/val", "runs/main/dsb2018_96/masks/0")

Arrays follow the Python imaging convention: grey (H, W), RGB (H, W, 3) or RGBA (H, W, 4), 8- or 16-bit or float
(pass `channel_order="bgr"` for arrays read with OpenCV). Files are read as `unetpp predict` reads them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.errors import InputError, expected_found
from unetpp.predict.image import PredictOptions
from unetpp.predict.imageio import check_finite, to_bgr, to_uint8
from unetpp.predict.protocol import applied_line
from unetpp.predict.single import predict_arrays
from unetpp.predict.work import model_protocol
from unetpp.runtimes import Runtime

CHANNEL_ORDERS = ("rgb", "bgr")
_OPTION_NAMES = {f.name for f in fields(PredictOptions)}


def _options(base: PredictOptions, overrides: dict[str, Any]) -> PredictOptions:
    unknown = set(overrides) - _OPTION_NAMES
    if unknown:
        raise InputError(expected_found("predict options", ", ".join(sorted(_OPTION_NAMES)),
                                        ", ".join(sorted(unknown))))
    return PredictOptions(**{**base.to_dict(), **overrides}) if overrides else base


def as_bgr(image: np.ndarray, channel_order: str = "rgb", bit16: str = "stretch") -> np.ndarray:
    """An image array as the model's input image: 3-channel BGR uint8 (grey replicated, alpha dropped)."""
    if channel_order not in CHANNEL_ORDERS:
        raise InputError(expected_found("channel_order", " or ".join(CHANNEL_ORDERS), repr(channel_order)))
    if isinstance(image, (str, Path)):
        raise InputError(expected_found("image", "an image array (H, W), (H, W, 3) or (H, W, 4)",
                                        f"the path {str(image)!r}", "For files, use model.predict_folder(path, "
                                        "out) or read the image first (unetpp.predict.read_image)"))
    arr = np.asarray(image)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(expected_found("image", "a numeric image array", f"an array of {arr.dtype}"))
    if arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(expected_found("image", "a 2-D image array (H, W), (H, W, 3) or (H, W, 4)",
                                        f"an array of shape {arr.shape}"))
    bgr = to_bgr(to_uint8(arr, bit16))
    if channel_order == "rgb" and arr.ndim == 3 and arr.shape[2] >= 3:
        bgr = np.ascontiguousarray(bgr[:, :, ::-1])
    return bgr


class Model:
    """A loaded segmentation model: a runtime kept open between calls. Use as a context manager or close()."""

    def __init__(self, runtime: Runtime, options: PredictOptions | None = None, choice: Any = None) -> None:
        self.runtime = runtime.activate()
        self.options = options or PredictOptions()
        self.choice = choice  # how the runtime was chosen (compile.fast.RuntimeChoice), where load() chose it

    @property
    def identity(self) -> dict[str, Any]:
        """Which model runs, the one description every caller shows (serve's /v1/model and responses, summaries):
        its name, the file the runtime runs and its SHA-256, the source it came from, the backend, the output
        channels, the preprocessing, why this runtime, and the predict protocol it applies by default."""
        from unetpp.atomic import file_sha256

        if getattr(self, "_identity", None) is None:
            path = Path(self.runtime.model)
            source = Path(self.choice.source) if self.choice is not None else path
            self._identity = {
                "name": source.stem, "file": path.name, "sha256": file_sha256(path),
                "source_sha256": file_sha256(source) if source != path else None,
                "backend": self.runtime.name, "backend_version": self.runtime.version(),
                "outputs": self.runtime.outputs, "preprocessing": self.runtime.preprocess.to_dict(),
                "runtime": self.choice.describe() if self.choice is not None else self.runtime.selection,
                "runtime_line": self.choice.line() if self.choice is not None else self.runtime.name,
                "protocol": model_protocol(self.runtime).apply(self.options).to_dict()}
            self._identity["protocol_line"] = applied_line(self._identity["protocol"])
        return self._identity

    @property
    def info(self) -> dict[str, Any]:
        """What runs: backend, model file, outputs, the preprocessing the model declares."""
        return {**self.runtime.describe(), "runtime": self.runtime.selection, "outputs": self.runtime.outputs,
                "preprocess": self.runtime.preprocess.to_dict(), "input_shape": list(self.runtime.input_shape),
                "protocol": model_protocol(self.runtime).apply(self.options).to_dict()}

    def predict_many(self, images: Sequence[np.ndarray], channel_order: str = "rgb",
                     progress: Callable[[float], None] | None = None, cancel: threading.Event | None = None,
                     **options: Any) -> list[tuple[np.ndarray, dict[str, Any]]]:
        """(labels, info) per image; the images' tiles share the runtime's batches.

        `progress(fraction)` is called from worker threads as tiles come back and images finish (non-decreasing,
        1.0 at the end); setting `cancel` from another thread stops the run before its next runtime call and
        raises unetpp.errors.Cancelled."""
        opts = _options(self.options, options)
        bgr = [as_bgr(img, channel_order, opts.bit16) for img in images]
        tracker = _Progress(len(bgr), progress) if progress is not None else None
        records = predict_arrays(bgr, self.runtime, opts, cancel=cancel,
                                 unit_progress=tracker.units if tracker else None,
                                 item_progress=tracker.items if tracker else None)
        out = []
        for rec in records:
            res = rec.pop("result")
            out.append((res["labels"], {"nuclei": rec["nuclei"], "table": res["table"], "prob": res["prob"],
                                        "maps": res["maps"], "mask": res["mask"], "meta": res["meta"],
                                        "seconds": rec["seconds"],
                                        "protocol": res["protocol"].to_dict()}))
        if tracker is not None:
            tracker.done()
        return out

    def predict(self, image: np.ndarray, channel_order: str = "rgb", progress: Callable[[float], None] | None = None,
                cancel: threading.Event | None = None, **options: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Nuclei of one image: int32 labels (0 background, 1..n) at the image's size, and a dict with the count,
        the per-nucleus table, the foreground probability, all output maps ("maps", (C, H, W): foreground, border),
        the mask and what was done (scale, tiles).
        Keyword options are `unetpp predict`'s (mode, scale, threshold, min_area, overlap, batch ...);
        `progress` and `cancel` as in predict_many. Thread-safe: several threads may call it on one model at once
        and each gets its own answer (OpenVINO: one infer request per call; ONNX Runtime: one session's run)."""
        return self.predict_many([image], channel_order, progress=progress, cancel=cancel, **options)[0]

    def predict_folder(self, inputs: str | Path | Sequence[str | Path], output: str | Path,
                       ids: Sequence[str] | None = None, progress: bool = False, executor: Any = None,
                       overwrite: bool = False, resume: bool = True, **options: Any) -> dict[str, Any]:
        """`unetpp predict` on files or folders: writes masks, labels, tables, counts.csv; returns the summary.
        `executor` (core.executors; default this process), `overwrite` and `resume` as `unetpp predict`'s."""
        from unetpp.predict.folder import predict_paths

        paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
        return predict_paths(paths, output, self.runtime, _options(self.options, options), ids=ids,
                             progress=progress, executor=executor, overwrite=overwrite, resume=resume)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Raw logits (N, C_out, S, S) for a float32 (N, 3, S, S) batch already normalised as the model expects;
        NaN or infinite inputs are refused."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        check_finite(x, "batch")
        return self.runtime.infer_padded(x)[0]

    def close(self) -> None:
        self.runtime.deactivate()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Progress:
    """The fraction of a predict_many call done: 90 % of an image's share for its tiles, 10 % for its nuclei."""

    def __init__(self, n_items: int, callback: Callable[[float], None]) -> None:
        self.n, self.callback = max(1, n_items), callback
        self.tiles: dict[str, float] = {}
        self.finished = 0
        self.last = 0.0
        self.lock = threading.Lock()

    def units(self, key: str, done: int, total: int) -> None:
        with self.lock:
            self.tiles[key] = min(1.0, done / max(1, total))
            self._report()

    def items(self, k: int) -> None:
        with self.lock:
            self.finished += k
            self._report()

    def done(self) -> None:
        with self.lock:
            if self.last < 1.0:
                self.last = 1.0
                self.callback(1.0)

    def _report(self) -> None:
        fraction = min(1.0, (0.9 * sum(self.tiles.values()) + 0.1 * self.finished) / self.n)
        if fraction > self.last:
            self.last = fraction
            self.callback(fraction)


def load(model: str | Path | None = "instance", backend: str | None = None, device: str | None = None,
         threads: int | None = None, precision: str | None = None, depth: int | None = None,
         runtime_options: Callable[[str], dict[str, Any]] | None = None, **options: Any) -> Model:
    """A shipped model by name: "instance" (default: foreground + border, nuclei from seeds and a watershed) or
    "guide" (the guide's 1-output model); or a checkpoint (.pt/.pth), an ONNX file or an OpenVINO IR.

    A checkpoint runs on the fastest runtime whose accuracy was verified (int8 OpenVINO when its mAP on a fixed
    set of train images is within 0.005 of fp32, built once and cached; else fp32), unless `backend` or
    `precision` ("fp32", "int8") say otherwise; `model.info["runtime"]` says what runs. `depth` (1..4) prunes a
    deeply supervised model to X0,depth. Keyword `options` become the model's default predict options (e.g.
    mode="tile"). `runtime_options(backend)`, where given, makes the chosen backend's own options (the command
    line's --backend-option ...); else threads and device are mapped onto them.

    The one door: `unetpp predict`, `unetpp serve` and the napari plugin open their model here."""
    from unetpp.compile.fast import choose_runtime, open_choice
    from unetpp.runtimes import runtime_class

    opts = _options(PredictOptions(), options)  # a bad option is refused before a first-use build of the model
    choice = choose_runtime(model, backend, precision, depth, device=device, threads=threads)
    flags = runtime_options(choice.backend) if runtime_options else runtime_class(choice.backend).map_flags(
        threads, device)
    return Model(open_choice(choice, **flags), opts, choice)


def evaluate(results: str | Path, masks: str | Path, ids: Sequence[str] | None = None) -> dict[str, Any]:
    """The guide's accuracy of `unetpp infer` outputs: guide IoU, upstream IoU, Dice, per image."""
    from unetpp.eval.evaluate import evaluate as _evaluate

    return _evaluate(results, masks, ids=ids)


def evaluate_instances(predictions: str | Path, ground_truth: str | Path,
                       ids: Sequence[str] | None = None) -> dict[str, Any]:
    """DSB2018 instance metrics (mAP over IoU 0.50..0.95, AP@0.5/0.75, pixel IoU, counts) of `predict` outputs."""
    from unetpp.eval.instance_eval import evaluate_instances as _evaluate_instances

    return _evaluate_instances(predictions, ground_truth, ids=ids)
