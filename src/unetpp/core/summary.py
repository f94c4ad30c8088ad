"""The run summary: ais_bench's filesinfo/args/time statistics, plus the machine, the runtime and both throughputs."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np

THROUGHPUT_DEFINITIONS = {
    "throughput_compute": "1000 * batchsize / mean compute ms per batch call (ais_bench's definition: "
                          "compute only, no reading, pre-processing or writing; warm-up excluded)",
    "throughput_end_to_end": "images inferred / wall-clock seconds of the whole run after warm-up "
                             "(reading inputs, inference, writing outputs; padding copies not counted)",
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


def format_summary(summary: dict[str, Any], summary_path: str | None = None) -> str:
    """The few lines `unetpp infer` prints."""
    t = summary["compute_time_ms"]
    rt = summary["runtime"]
    lines = [f"runtime: {rt['backend']} {rt['version']}  batchsize {summary['args']['batchsize']}  "
             f"inputs {summary['n_inputs']}  outputs written {summary['n_outputs']}"
             + (f"  skipped (resume) {summary['n_skipped']}" if summary.get("n_skipped") else "")]
    if t["count"]:
        lines.append(f"compute time per batch (ms): mean {t['mean']:.2f}  median {t['median']:.2f}  "
                     f"min {t['min']:.2f}  max {t['max']:.2f}  p99 {t['p99']:.2f}  ({t['count']} calls)")
        lines.append(f"throughput, compute only (ais_bench definition): {summary['throughput_compute']:.2f} images/s")
    if summary.get("throughput_end_to_end"):
        lines.append(f"throughput, end to end (read + infer + write, wall clock): "
                     f"{summary['throughput_end_to_end']:.2f} images/s")
    if summary.get("engine") == "ray":
        lines.extend(_ray_lines(summary))
    if summary.get("output_dir"):
        lines.append(f"outputs: {summary['output_dir']}")
    if summary_path:
        lines.append(f"summary: {summary_path}")
    return "\n".join(lines)


def _ray_lines(summary: dict[str, Any]) -> list[str]:
    ray, cl = summary["ray"], summary["cluster"]
    lines = [f"ray {cl['ray_version']} ({cl['mode']}, {cl['address']}): {cl['n_nodes']} node(s), {cl['cpus']:g} CPUs, "
             f"{cl['gpus']:g} GPUs; {ray['num_workers']} workers x {ray['threads_per_worker']} threads; "
             f"start-up {ray['startup_s']:.1f} s, execution {ray['execution_s']:.1f} s"]
    if summary.get("throughput_steady_state"):
        lines.append(f"throughput, steady state (sum over workers after warm-up): "
                     f"{summary['throughput_steady_state']:.2f} images/s")
    for w in summary["workers"]:
        rate = f"{w['images_per_s']:.2f} images/s" if w["images_per_s"] else "-"
        lines.append(f"  worker {w['worker']}: {w['n_images']} images in {w['n_items']} batches, {rate}")
    if summary.get("n_failed"):
        lines.append(f"failed inputs: {summary['n_failed']}")
    return lines
