"""Arrays in, nuclei out, through the driver and predict's work: `predict_arrays(images, runtime, options)` (the
one place; `unetpp.load().predict_many` and `predict_image` call it) and `predict_one(path, out_dir, runtime,
options)` (files written). Above predict/work.py, which builds on image.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.core.driver import DriverSettings, run_pipeline
from unetpp.errors import InputError
from unetpp.predict.image import PredictOptions
from unetpp.predict.work import PredictItem, work_for
from unetpp.runtimes import Runtime


def _run_one(item: Any, runtime: Runtime, options: PredictOptions, out_dir: Path | None) -> dict[str, Any]:
    work = work_for(runtime.activate(), options, out_dir)
    result = run_pipeline([item], work, runtime, DriverSettings(batch_size=options.batch, warmup=0, resume=False))
    if result.failures:
        raise InputError(result.failures[0]["error"])
    return result.records[0]


def predict_arrays(images: Sequence[np.ndarray], runtime: Runtime, options: PredictOptions,
                   cancel: Any = None, unit_progress: Callable[[str, int, int], None] | None = None,
                   item_progress: Callable[..., None] | None = None) -> list[dict[str, Any]]:
    """BGR uint8 images through the same driver and work as `unetpp predict`, nothing written: one record per
    image, in order (its "result": prob, mask, labels, table, maps, meta, protocol); the images' tiles share the
    runtime's batches. The first image that fails raises its InputError; `cancel` (a threading.Event) stops the
    run before its next runtime call; `unit_progress` / `item_progress` report tiles and images as they finish."""
    items = [PredictItem(f"image{i}", image=img) for i, img in enumerate(images)]
    work = work_for(runtime.activate(), options)
    work.unit_progress = unit_progress
    result = run_pipeline(items, work, runtime, DriverSettings(batch_size=options.batch, warmup=0, resume=False,
                                                               cancel=cancel, progress=item_progress))
    if result.failures:
        raise InputError(result.failures[0]["error"])
    return result.records


def predict_image(img: np.ndarray, runtime: Runtime, options: PredictOptions | None = None) -> dict[str, Any]:
    """prob (float32 HxW), mask (bool), labels (int32), the nucleus table and meta for one BGR uint8 image."""
    return predict_arrays([img], runtime, options or PredictOptions())[0]["result"]


def predict_one(path: str | Path, out_dir: str | Path, runtime: Runtime, options: PredictOptions | None = None,
                stem: str | None = None) -> dict[str, Any]:
    """Read, predict, write `<stem>_mask.png`, `_labels.png`, `_nuclei.csv` (+ `_prob.png`); return the record."""
    path = Path(path)
    return _run_one(PredictItem(stem or path.stem, path=path), runtime, options or PredictOptions(), Path(out_dir))
