"""The run summary: ais_bench's filesinfo/args/time statistics, plus the machine, the runtime and both throughputs."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np

THROUGHPUT_DEFINITIONS = {
    "throughput_compute": "network inputs per second of runtime compute: inputs / seconds with a runtime call in "
                          "progress (= ais_bench's 1000 * batch size / mean compute ms when calls run one at a time "
                          "and every batch is full; overlapped asynchronous requests counted once): compute only, "
                          "no reading, pre-processing or writing; warm-up excluded; padding copies not counted",
    "throughput_end_to_end": "items completed / wall-clock seconds of the whole run after warm-up "
                             "(reading, pre-processing, inference, post-processing and writing, overlapped)",
}


def driver_figures(result: Any, loop: int = 1) -> dict[str, Any]:
    """The timing block every command's summary carries, from a core.driver.DriverResult."""
    stats = latency_stats(result.compute_ms)
    total_ms = 1000.0 * result.busy_s if result.busy_s else float(np.sum(result.compute_ms or [0.0]))
    units = sum(result.batch_sizes) * loop
    done = len([r for r in result.records if not r.get("skipped")])
    return {
        "compute_time_ms": stats,
        "call_time_ms": latency_stats(result.call_ms),
        "throughput_compute": 1000.0 * units / total_ms if total_ms else None,
        "throughput_end_to_end": done * loop / result.wall_s if done and result.wall_s > 0 else None,
        "units_per_s_end_to_end": units / result.wall_s if units and result.wall_s > 0 else None,
        "throughput_definitions": THROUGHPUT_DEFINITIONS,
        "n_units": result.n_units,
        "n_padded": result.n_padded,
        "mean_batch": float(np.mean(result.batch_sizes)) if result.batch_sizes else None,
        "warmup_s": round(result.warmup_s, 4),
        "wall_s": round(result.wall_s, 4),
    }


def latency_stats(times_ms: Sequence[float]) -> dict[str, float | int | None]:
    """min, max, mean, median and 99th percentile of per-call times (ms); None when nothing was measured."""
    if not times_ms:
        return {"count": 0, "min": None, "max": None, "mean": None, "median": None, "p99": None}
    a = np.asarray(times_ms, dtype=np.float64)
    return {"count": int(a.size), "min": float(a.min()), "max": float(a.max()), "mean": float(a.mean()),
            "median": float(np.median(a)), "p99": float(np.percentile(a, 99))}


def throughput_compute(batchsize: int, mean_ms: float | None) -> float | None:
    """ais_bench: 1000 * batchsize / mean compute time (ms)."""
    return 1000.0 * batchsize / mean_ms if mean_ms else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "usable_cores": usable, "os": platform.platform(),
            "python": platform.python_version(), "hostname": platform.node()}
