"""The fast default runtime's first pass: the shipped guide model in int8, built once and cached.

The instance model's scale rule (`nuclei@150`) measures each image's nuclei with the guide model first
(predict/first_pass.py): one 96x96 call per image (more for an image above 1400 px). In fp32 that call costs about
as much as the instance model's own pass at depth 3 in int8 on a 2-core CPU, so the default runtime (compile/fast.py)
runs it in int8 too, on the same backend. It is calibrated on the check images (weights/guard, train ids), squeezed
as the first pass squeezes them, in their 8 flips and rotations; the estimates of int8 and fp32 on those images are
recorded, and the instance model's accuracy check runs the whole int8 pipeline, first pass included. The shipped
guide model's build ships with the package (weights/builds/, `make builds`); a cached one is checked against the
SHA-256 of its files and built again when they do not match.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from unetpp.atomic import ensure_dir, file_sha256
from unetpp.model.cache_entries import (
    artefact_files,
    build_lock,
    damage,
    file_hashes,
    read_signed_json,
    write_signed_json,
)
from unetpp.model.shipped_builds import find_shipped
from unetpp.model.sources import fast_build_dir, model_source

FIRST_PASS_MODEL = "guide"
RECORD_VERSION = 2  # 2: the files' SHA-256 and the record's own (model/cache_entries.py)


def calibration_inputs(images: list[np.ndarray], size: int = 96) -> list[np.ndarray]:
    """The first pass's inputs for these BGR images (each squeezed whole to size x size, the guide's
    normalisation), in their 8 views."""
    from unetpp.data.preprocess import normalize
    from unetpp.predict.work import TTA_VIEWS, _view

    return [np.ascontiguousarray(_view(normalize(cv2.resize(img, (size, size))), v), np.float32)
            for img in images for v in range(TTA_VIEWS)]


def shipped_first_pass(backend: str, ids: list[str], say: Any) -> tuple[Path, dict[str, Any]] | None:
    """The shipped int8 first pass (weights/builds) of the installed guide model for these check ids, or None."""
    source = model_source(FIRST_PASS_MODEL)
    found, why = find_shipped("first-pass", file_sha256(source), backend,
                              lambda e: e.get("ids") == ids and e.get("record_version") == RECORD_VERSION)
    if why:
        say(f"{why}: building it in the model cache instead")
    return found


def first_pass_int8(backend: str, images: list[tuple[str, np.ndarray]] | Callable[[], list[tuple[str, np.ndarray]]],
                    say: Any, threads: int | None = None, shipped: bool = True,
                    ids: list[str] | None = None) -> tuple[Path, dict[str, Any]]:
    """The guide model's int8 `backend` file for the first pass and its record: shipped (`shipped`), cached (its
    files and record intact), or built now from `images` (id, BGR image: the check images; a callable is called
    only for a build, and then `ids` names them). A damaged cache entry is built again, with one line saying why."""
    ids = [i for i, _ in images] if ids is None and not callable(images) else list(ids or [])
    if shipped:
        found = shipped_first_pass(backend, ids, say)
        if found is not None:
            return found
    from unetpp.compile.api import BACKENDS

    source = model_source(FIRST_PASS_MODEL)
    sha = file_sha256(source)
    shared = fast_build_dir(source, None, sha)  # the guide model's own fast builds sit beside it
    folder = shared.with_name(f"{shared.name}-first-pass")
    artefact = folder / f"{backend}-int8{BACKENDS[backend]}"
    record_path = folder / f"{backend}-int8.json"
    with build_lock(folder, say):
        cached, why = read_signed_json(record_path)
        if (cached is not None and cached.get("version") == RECORD_VERSION and cached.get("source_sha256") == sha
                and cached.get("ids") == ids and cached.get("backend") == backend):
            why = damage(folder, cached.get("files"))
            if why is None:
                return artefact, cached
        say(f"the cached int8 first pass ({source.name}, {backend}) is damaged ({why}): building it again" if why
            else f"building the int8 first pass ({source.name}, {backend}) once")
        record = _build(source, sha, backend, artefact, images() if callable(images) else images, ids, threads)
        return artefact, write_signed_json(record_path, record)


def _build(source: Path, sha: str, backend: str, artefact: Path, images: list[tuple[str, np.ndarray]],
           ids: list[str], threads: int | None) -> dict[str, Any]:
    """Calibrate and build the guide model's int8 file, then record its estimates against fp32's."""
    from unetpp.compile.api import compile_model
    from unetpp.predict.first_pass import estimate_nucleus_area
    from unetpp.runtimes import get_runtime, open_runtime

    t0 = time.perf_counter()
    ensure_dir(artefact.parent)
    samples = calibration_inputs([img for _, img in images])
    compile_model(source, backend, artefact, int8=True, samples=samples)
    flags = {"threads": threads} if threads else {}
    estimates: dict[str, list[float | None]] = {}
    with open_runtime(source, "onnxruntime", **flags) as fp32, get_runtime(backend, artefact, **flags) as int8:
        for id_, img in images:
            estimates[id_] = [estimate_nucleus_area(img, rt).median_area for rt in (fp32, int8)]
    ratios = [abs(np.log(b / a)) for a, b in estimates.values() if a and b]
    return {"version": RECORD_VERSION, "source": str(source), "source_sha256": sha, "backend": backend,
            "artefact": artefact.name, "files": file_hashes(artefact_files(artefact)), "ids": ids,
            "n_calibration_inputs": len(samples), "median_area_fp32_int8": estimates,
            "median_abs_log_ratio": round(float(np.median(ratios)), 4) if ratios else None,
            "max_abs_log_ratio": round(float(np.max(ratios)), 4) if ratios else None,
            "build_seconds": round(time.perf_counter() - t0, 1), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
