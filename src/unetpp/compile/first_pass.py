"""The fast default runtime's first pass: the shipped guide model in int8, built once and cached.

The instance model's scale rule (`nuclei@150`) measures each image's nuclei with the guide model first
(predict/first_pass.py): one 96x96 call per image (more for an image above 1400 px). In fp32 that call costs about
as much as the instance model's own pass at depth 3 in int8 on a 2-core CPU, so the default runtime (compile/fast.py)
runs it in int8 too, on the same backend. It is calibrated on the check images (weights/guard, train ids), squeezed
as the first pass squeezes them, in their 8 flips and rotations; the estimates of int8 and fp32 on those images are
recorded, and the instance model's accuracy check runs the whole int8 pipeline, first pass included.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from unetpp.atomic import ensure_dir, file_sha256, write_json_atomic
from unetpp.model.sources import fast_build_dir, model_source

FIRST_PASS_MODEL = "guide"
RECORD_VERSION = 1


def calibration_inputs(images: list[np.ndarray], size: int = 96) -> list[np.ndarray]:
    """The first pass's inputs for these BGR images (each squeezed whole to size x size, the guide's
    normalisation), in their 8 views."""
    from unetpp.data.preprocess import normalize
    from unetpp.predict.work import TTA_VIEWS, _view

    return [np.ascontiguousarray(_view(normalize(cv2.resize(img, (size, size))), v), np.float32)
            for img in images for v in range(TTA_VIEWS)]


def first_pass_int8(backend: str, images: list[tuple[str, np.ndarray]], say: Any,
                    threads: int | None = None) -> tuple[Path, dict[str, Any]]:
    """The guide model's int8 `backend` file for the first pass and its record, from the cache or built now from
    `images` (id, BGR image): the check images."""
    from unetpp.compile.api import BACKENDS, compile_model
    from unetpp.predict.first_pass import estimate_nucleus_area
    from unetpp.runtimes import get_runtime, open_runtime

    source = model_source(FIRST_PASS_MODEL)
    sha = file_sha256(source)
    shared = fast_build_dir(source, None, sha)  # the guide model's own fast builds sit beside it
    folder = shared.with_name(f"{shared.name}-first-pass")
    artefact = folder / f"{backend}-int8{BACKENDS[backend]}"
    record_path = folder / f"{backend}-int8.json"
    ids = [i for i, _ in images]
    try:
        cached = json.loads(record_path.read_text())
    except (OSError, ValueError):
        cached = None
    if (artefact.is_file() and isinstance(cached, dict) and cached.get("version") == RECORD_VERSION
            and cached.get("source_sha256") == sha and cached.get("ids") == ids):
        return artefact, cached
    say(f"building the int8 first pass ({source.name}, {backend}) once")
    t0 = time.perf_counter()
    ensure_dir(folder)
    samples = calibration_inputs([img for _, img in images])
    compile_model(source, backend, artefact, int8=True, samples=samples)
    flags = {"threads": threads} if threads else {}
    estimates: dict[str, list[float | None]] = {}
    with open_runtime(source, "onnxruntime", **flags) as fp32, get_runtime(backend, artefact, **flags) as int8:
        for id_, img in images:
            estimates[id_] = [estimate_nucleus_area(img, rt).median_area for rt in (fp32, int8)]
    ratios = [abs(np.log(b / a)) for a, b in estimates.values() if a and b]
    record = {"version": RECORD_VERSION, "source": str(source), "source_sha256": sha, "backend": backend,
              "artefact": artefact.name, "ids": ids, "n_calibration_inputs": len(samples),
              "median_area_fp32_int8": estimates,
              "median_abs_log_ratio": round(float(np.median(ratios)), 4) if ratios else None,
              "max_abs_log_ratio": round(float(np.max(ratios)), 4) if ratios else None,
              "build_seconds": round(time.perf_counter() - t0, 1), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_json_atomic(record_path, record)
    return artefact, record
