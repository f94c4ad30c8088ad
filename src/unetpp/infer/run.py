"""Offline batched inference, ais_bench's equivalent: inputs -> `<name>_0.bin|.npy` + a JSON summary, on the driver.

An input of the wrong size fails alone (listed in the summary, the others complete), on every executor.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.atomic import file_sha256, write_json_atomic
from unetpp.core.driver import DriverResult, DriverSettings
from unetpp.core.executors import LocalExecutor, run_batches
from unetpp.core.outputs import folder_problem, refuse_inputs_inside, refuse_same_file
from unetpp.core.runfolder import RunFolder, refuse_overlap
from unetpp.core.summary import THROUGHPUT_DEFINITIONS, driver_figures, latency_stats, machine_info
from unetpp.data.paths import plain_name_problem
from unetpp.errors import InputError, expected_found
from unetpp.infer.inputs import gather_inputs, screen_sizes
from unetpp.infer.work import OUTFMTS, InferWork, output_path
from unetpp.runtimes import get_runtime, resolve_model

PURE_DATA_TYPES = ("zero", "random")
PROGRESS_MIN_ITEMS = 64


def check_args(outfmt: str, batch_size: int, loop: int, warmup: int, pure_data_type: str) -> str:
    outfmt = str(outfmt).upper()
    if outfmt not in OUTFMTS:
        raise InputError(expected_found("--outfmt", " | ".join(OUTFMTS), repr(outfmt)))
    DriverSettings(batch_size=batch_size, loop=loop, warmup=warmup).check()
    if pure_data_type not in PURE_DATA_TYPES:
        raise InputError(expected_found("--pure-data-type", " | ".join(PURE_DATA_TYPES), repr(pure_data_type)))
    return outfmt


def files_info(files: Sequence[Path], out_dir: Path, outfmt: str) -> dict[str, dict[str, list[str]]]:
    """ais_bench's filesinfo: {index: {infiles: [...], outfiles: [...]}}."""
    return {str(i): {"infiles": [str(f)], "outfiles": [str(output_path(out_dir, f, outfmt))]}
            for i, f in enumerate(files)}


def run_inference(
    model: str | Path,
    inputs: Sequence[str | Path] | None,
    output: str | Path,
    output_dirname: str | None = None,
    outfmt: str = "BIN",
    batch_size: int = 1,
    loop: int = 1,
    warmup: int = 1,
    backend: str | None = None,
    backend_options: dict[str, Any] | None = None,
    pure_data_type: str = "zero",
    resume: bool = True,
    progress: bool = True,
    executor: Any = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run `model` over the inputs (folders/files of .bin/.npy), one output per input plus a summary.

    `inputs=None` is pure-inference mode: one generated batch run `loop` times, no outputs written.
    The model is opened (and checked) before anything is written; `executor` (default: this process) decides
    where the batches run (core.executors.RayExecutor: a Ray cluster). The result folder is a run folder
    (core.runfolder): same settings resume, different ones are refused unless `overwrite`; one run at a time.
    """
    args = {k: (str(v) if isinstance(v, Path) else v) for k, v in locals().items() if k not in ("executor",
                                                                                               "overwrite")}
    args["inputs"] = None if inputs is None else [str(p) for p in inputs]
    outfmt = check_args(outfmt, batch_size, loop, warmup, pure_data_type)
    output = Path(output)
    if inputs is not None and not inputs:
        raise InputError(expected_found("--input", "at least one folder or file", "an empty list"))
    files = gather_inputs(inputs) if inputs is not None else None
    if files is None and executor is not None and executor.name != "local":
        raise InputError(expected_found(f"--input with --engine {executor.name}", "at least one folder or file",
                                        "none (pure-inference mode runs with --engine local)"))
    bad_name = plain_name_problem(output_dirname) if output_dirname is not None else None
    if bad_name:  # `..` or a path would put the results (and the summary beside them) outside the output folder
        raise InputError(expected_found("--output-dirname", "a plain folder name (inside -o)", bad_name))
    backend, model = resolve_model(model, backend, checkpoint_backend="torch")  # ais_bench: .pt runs as it is
    if files is not None and output_dirname:  # the overlap (the more telling refusal) first
        refuse_overlap(output / output_dirname, list(inputs or []))
    problem = folder_problem(output / output_dirname, "infer") if files is not None and output_dirname else None
    if problem:  # also checked by the run folder; here before the model loads
        raise InputError(problem)
    executor = executor or LocalExecutor()
    runtime = get_runtime(backend, model, **(backend_options or {}))
    with runtime:
        cfg = runtime.preprocess
        describe = runtime.describe()
        out_shape = (runtime.output_channels or 1, *runtime.input_shape[1:])
        dirname = output_dirname or datetime.now().strftime("%Y_%m_%d-%H_%M_%S")
        out_dir = output / dirname
        summary_path = output / f"{dirname}_summary.json"
        if files is None:
            result = _pure_inference(runtime, batch_size, loop, warmup, pure_data_type)
            bad: dict[Path, str] = {}
            return _write_summary(result, args, files, out_dir, describe, model, loop, executor, bad,
                                  summary_path)
        refuse_overlap(out_dir, list(inputs or []))
        refuse_inputs_inside(out_dir, files)
        refuse_same_file(summary_path, files, what="summary")
        good, bad = screen_sizes(files, cfg)
        planned = [output_path(out_dir, f, outfmt) for f in files] + [summary_path]
        folder = RunFolder(out_dir, run_settings(args, model, backend, out_shape), overwrite=overwrite,
                           command="infer", files=planned, legacy_patterns=("*_0.bin", "*_0.npy"))
        with folder:
            work = InferWork(out_dir, outfmt, cfg, out_shape)
            bar = _progress(progress and not isinstance(executor, _ray_types()), len(good))
            settings = DriverSettings(batch_size=batch_size, warmup=warmup, loop=loop, resume=resume,
                                      progress=bar.update if bar else None)
            try:
                result = run_batches(good, work, runtime if isinstance(executor, LocalExecutor) else
                                     runtime.inactive_copy(), settings, executor)
            finally:
                if bar:
                    bar.close()
            summary = _write_summary(result, args, files, out_dir, describe, model, loop, executor, bad,
                                     summary_path)
            folder.finish({"inputs": len(files), "written": summary["n_outputs"], "skipped": summary["n_skipped"],
                           "failed": summary["n_failed"]}, failed=summary["n_failed"])
    return summary


def run_settings(args: dict[str, Any], model: Path, backend: str, out_shape: tuple[int, ...]) -> dict[str, Any]:
    """What decides the outputs of a run (a rerun with other values would mix results): thread counts and the
    engine do not."""
    options = {k: v for k, v in (args.get("backend_options") or {}).items() if "thread" not in k}
    return {"model": str(model), "model_sha256": file_sha256(model), "backend": backend, "backend_options": options,
            "outfmt": str(args["outfmt"]).upper(), "batch_size": args["batch_size"], "inputs": args["inputs"],
            "output_shape": list(out_shape)}


def _write_summary(result: DriverResult, args: dict[str, Any], files: list[Path] | None, out_dir: Path,
                   describe: dict[str, Any], model: Path, loop: int, executor: Any, bad: dict[Path, str],
                   summary_path: Path) -> dict[str, Any]:
    summary = build_summary(result, args, files, out_dir, describe, model, loop, executor.name)
    failed = [{"file": str(f), "error": msg} for f, msg in bad.items()]
    failed += [{"file": f["key"], "error": f["error"]} for f in result.failures]
    summary.update(n_failed=len(failed), failed=sorted(failed, key=lambda f: f["file"]))
    if executor.name != "local":
        summary["throughput_definitions"] = {**summary["throughput_definitions"], **RAY_THROUGHPUT_DEFINITIONS}
        summary.update(executor.info)
    write_json_atomic(summary_path, summary)
    summary["summary_path"] = str(summary_path)
    return summary


RAY_THROUGHPUT_DEFINITIONS = {
    "throughput_end_to_end": "images inferred / wall-clock seconds of the Ray Data execution (worker start-up, "
                             "session creation and warm-up included; Ray start-up excluded, see ray.startup_s)",
    "throughput_steady_state": "sum over workers of images / that worker's active seconds after its warm-up",
    "throughput_with_startup": "images inferred / (Ray start-up + execution) seconds",
}


def _ray_types() -> tuple[type, ...]:
    from unetpp.core.executors import RayExecutor

    return (RayExecutor,)


def _progress(enabled: bool, total: int) -> Any:
    if not enabled or total < PROGRESS_MIN_ITEMS:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="infer", unit="img")


def _pure_inference(runtime: Any, batch_size: int, loop: int, warmup: int, pure_data_type: str) -> DriverResult:
    """ais_bench without --input: one generated batch, `loop` timed calls."""
    shape = (batch_size, *runtime.input_shape)
    if pure_data_type == "zero":
        data = np.zeros(shape, np.float32)
    else:
        data = np.random.default_rng(0).standard_normal(shape, dtype=np.float32) * np.float32(0.01)
    result = DriverResult()
    t0 = time.perf_counter()
    for _ in range(warmup):
        runtime.infer_padded(data)
    result.warmup_s = time.perf_counter() - t0
    for _ in range(loop):
        _, pad = runtime.infer_padded(data)
        result.compute_ms.append(float(runtime.last_compute_ms))
        result.call_ms.append(float(runtime.last_call_ms))
        result.n_padded += pad
    result.batch_sizes = [batch_size]
    result.wall_s = time.perf_counter() - t0 - result.warmup_s
    return result


def build_summary(result: DriverResult, args: dict[str, Any], files: list[Path] | None, out_dir: Path,
                  describe: dict[str, Any], model: Path, loop: int, engine: str) -> dict[str, Any]:
    """The summary fields every executor writes (an executor adds its own after them)."""
    figures = driver_figures(result, loop=1 if files is None else loop)
    if files is None:  # pure inference: batch_sizes holds the one batch, timed `loop` times
        total = float(np.sum(result.compute_ms))
        figures["throughput_compute"] = 1000.0 * args["batch_size"] * loop / total if total else None
        figures["throughput_end_to_end"] = args["batch_size"] * loop / result.wall_s if result.wall_s else None
    written = [r for r in result.records if not r.get("skipped")]
    return {
        "engine": engine,
        "filesinfo": files_info(files, out_dir, args["outfmt"].upper()) if files is not None else {},
        "args": args,
        **figures,
        "n_inputs": 0 if files is None else len(files),
        "n_outputs": len(written),
        "n_skipped": len(result.skipped),
        "output_dir": str(out_dir) if files is not None else None,
        "pure_inference": files is None,
        "machine": machine_info(),
        "runtime": describe,
        "model_sha256": file_sha256(model),
        "date": datetime.now().isoformat(timespec="seconds"),
    }


def format_summary(summary: dict[str, Any], summary_path: str | None = None) -> str:
    """The few lines `unetpp infer` prints."""
    t = summary["compute_time_ms"]
    rt = summary["runtime"]
    lines = [f"runtime: {rt['backend']} {rt['version']}  batch size {summary['args']['batch_size']}  "
             f"inputs {summary['n_inputs']}  outputs written {summary['n_outputs']}"
             + (f"  skipped (complete) {summary['n_skipped']}" if summary.get("n_skipped") else "")]
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
    return lines


__all__ = ["run_inference", "build_summary", "check_args", "format_summary", "THROUGHPUT_DEFINITIONS",
           "latency_stats"]
