"""One image through the driver and predict's work: `predict_image(img, runtime, options)` (arrays back) and
`predict_one(path, out_dir, runtime, options)` (files written). Above predict/work.py, which builds on image.py."""

from __future__ import annotations

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


def predict_image(img: np.ndarray, runtime: Runtime, options: PredictOptions | None = None) -> dict[str, Any]:
    """prob (float32 HxW), mask (bool), labels (int32), rows (nucleus table) and meta for one BGR uint8 image,
    through the same driver and work as `unetpp predict` (nothing is written)."""
    record = _run_one(PredictItem("image", image=img), runtime, options or PredictOptions(), None)
    return record["result"]


def predict_one(path: str | Path, out_dir: str | Path, runtime: Runtime, options: PredictOptions | None = None,
                stem: str | None = None) -> dict[str, Any]:
    """Read, predict, write `<stem>_mask.png`, `_labels.png`, `_nuclei.csv` (+ `_prob.png`); return the record."""
    path = Path(path)
    return _run_one(PredictItem(stem or path.stem, path=path), runtime, options or PredictOptions(), Path(out_dir))
