"""One cell of the sweep: one activated runtime at one batch size, measured two ways, scored if masks exist."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.core.driver import DriverSettings
from unetpp.core.executors import run_batches
from unetpp.data.preprocess import read_gray, read_input, read_logits
from unetpp.errors import InputError
from unetpp.eval.metrics import guide_iou
from unetpp.infer.inputs import output_stem
from unetpp.infer.work import InferWork
from unetpp.runtimes import Runtime


def stats_ms(times: list[float]) -> dict[str, float | int]:
    a = np.asarray(times, dtype=np.float64)
    return {"count": int(a.size), "mean": float(a.mean()), "median": float(np.median(a)),
            "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)),
            "min": float(a.min()), "max": float(a.max())}


def _timed_loop(step: Any, min_seconds: float, min_iters: int) -> tuple[int, float]:
    """Call step(i) until both floors are met; returns (iterations, wall seconds)."""
    i, t0 = 0, time.perf_counter()
    while i < min_iters or time.perf_counter() - t0 < min_seconds:
        step(i)
        i += 1
    return i, time.perf_counter() - t0


def measure_compute(rt: Runtime, files: list[Path], bs: int, warmup: int, min_seconds: float,
                    min_iters: int) -> dict[str, Any]:
    """Compute only (ais_bench's definition): batches preloaded in memory, time inside the runtime call."""
    arrays = np.stack([read_input(f, rt.preprocess) for f in files])
    batches = [arrays[i:i + bs] for i in range(0, len(arrays), bs)]
    for i in range(warmup):
        rt.infer_padded(batches[i % len(batches)])
    times: list[float] = []
    call_times: list[float] = []

    def step(i: int) -> None:
        rt.infer_padded(batches[i % len(batches)])
        times.append(float(rt.last_compute_ms))
        call_times.append(float(rt.last_call_ms))

    iters, wall = _timed_loop(step, min_seconds, min_iters)
    s, c = stats_ms(times), stats_ms(call_times)
    # Three definitions: compute only (device time where the runtime measures it apart from transfers),
    # host wall per call (transfers included; trtexec's qps), and end to end (measure_end_to_end).
    return {"warmup_iters": warmup, "iters": iters, "wall_s": wall, "latency_ms": s, "call_latency_ms": c,
            "throughput_compute": 1000.0 * bs / s["mean"], "throughput_call": 1000.0 * bs / c["mean"]}


def measure_end_to_end(rt: Runtime, files: list[Path], bs: int, min_seconds: float, out_dir: Path) -> dict[str, Any]:
    """Wall clock of whole passes of `unetpp infer`'s own driver and work: read, infer, write <id>_0.bin."""
    work = InferWork(out_dir, "BIN", rt.preprocess, (rt.output_channels or 1, *rt.input_shape[1:]))
    settings = DriverSettings(batch_size=bs, warmup=0, resume=False)

    def one_pass(_: int) -> None:
        result = run_batches(files, work, rt, settings)
        if result.failures:
            raise InputError(result.failures[0]["error"])

    passes, wall = _timed_loop(one_pass, min_seconds, 1)
    images = passes * len(files)
    return {"passes": passes, "images": images, "wall_s": wall, "throughput_end_to_end": images / wall}


def score(out_dir: Path, files: list[Path], masks_dir: Path, threshold: float = 0.5) -> dict[str, Any]:
    """Guide IoU (per image, plain mean) of the written outputs that have a mask <id>.png."""
    ious = []
    for f in files:
        mask_path = masks_dir / f"{output_stem(f)}.png"
        if mask_path.is_file():
            mask = read_gray(mask_path)
            ious.append(guide_iou(read_logits(out_dir / f"{output_stem(f)}_0.bin", mask.shape[0]), mask, threshold))
    return {"iou_guide": float(np.mean(ious)) if ious else None, "n_scored": len(ious)}


def run_cell(rt: Runtime, files: list[Path], bs: int, masks_dir: Path | None, warmup: int, min_seconds: float,
             min_iters: int, tmp_root: Path | None = None) -> dict[str, Any]:
    """Both measurements and the score for one batch size; the runtime is already active."""
    result = measure_compute(rt, files, bs, warmup, min_seconds, min_iters)
    with tempfile.TemporaryDirectory(prefix="unetpp-bench-", dir=tmp_root) as tmp:
        result.update(measure_end_to_end(rt, files, bs, min_seconds, Path(tmp)))
        if masks_dir is not None:
            result.update(score(Path(tmp), files, masks_dir))
    return result
