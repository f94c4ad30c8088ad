"""Offline batched inference, ais_bench's equivalent: inputs -> `<name>_0.bin|.npy` + a JSON summary."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from unetpp.atomic import ensure_dir, file_sha256, write_bytes_atomic, write_json_atomic
from unetpp.config import PreprocessConfig
from unetpp.core.summary import (
    THROUGHPUT_DEFINITIONS,
    format_summary,
    latency_stats,
    machine_info,
    throughput_compute,
)
from unetpp.errors import InputError, ModelFileError, expected_found
from unetpp.infer.batching import Batch, check_sizes, gather_inputs, make_batches, output_stem
from unetpp.runtimes import get_runtime

OUTFMTS = ("BIN", "NPY")
PURE_DATA_TYPES = ("zero", "random")
SUFFIX_BACKEND = {".onnx": "onnxruntime", ".pt": "torch", ".pth": "torch", ".xml": "openvino"}
PROGRESS_MIN_BATCHES = 8


def pick_backend(model: Path, backend: str | None) -> str:
    """An explicit backend wins; otherwise the model file's suffix decides."""
    if backend:
        return backend
    try:
        return SUFFIX_BACKEND[model.suffix.lower()]
    except KeyError:
        raise InputError(expected_found(f"model {model}", "a .onnx, .pt/.pth or .xml file (or pass --backend)",
                                        f"suffix {model.suffix!r}")) from None


def output_path(out_dir: Path, infile: Path, outfmt: str) -> Path:
    return out_dir / f"{output_stem(infile)}_0.{outfmt.lower()}"


def encode_output(arr: np.ndarray, outfmt: str) -> bytes:
    if outfmt == "BIN":
        return arr.astype("<f4").tobytes()
    buf = io.BytesIO()
    np.save(buf, arr.astype(np.float32))
    return buf.getvalue()


def output_complete(path: Path, outfmt: str, cfg: PreprocessConfig) -> bool:
    """For --resume: the output exists and has the size of one 1xSxS float32 map."""
    if not path.is_file():
        return False
    if outfmt == "BIN":
        return path.stat().st_size == cfg.output_nbytes
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return False
    return arr.dtype == np.float32 and tuple(arr.shape) == (1, cfg.size, cfg.size)


def files_info(files: Sequence[Path], out_dir: Path, outfmt: str) -> dict[str, dict[str, list[str]]]:
    """ais_bench's filesinfo: {index: {infiles: [...], outfiles: [...]}}."""
    return {str(i): {"infiles": [str(f)], "outfiles": [str(output_path(out_dir, f, outfmt))]}
            for i, f in enumerate(files)}


def plan_batches(files: Sequence[Path], out_dir: Path, outfmt: str, cfg: PreprocessConfig, batchsize: int,
                 resume: bool) -> tuple[list[Path], list[Batch]]:
    """The inputs still to do (with --resume: those without a complete output) and their batches.

    Every engine batches through here, so a batch holds the same files (and padding) whichever engine runs it.
    """
    todo = [f for f in files if not (resume and output_complete(output_path(out_dir, f, outfmt), outfmt, cfg))]
    return todo, make_batches(todo, batchsize)


def write_batch_outputs(runtime_name: str, batch: Batch, y: np.ndarray, out_dir: Path, outfmt: str,
                        cfg: PreprocessConfig, skip: Callable[[Path], bool] | None = None,
                        after_write: Callable[[Path], None] | None = None) -> list[Path]:
    """Write one output per real input of the batch (padded rows never), atomically; returns the paths written.

    `skip(path)` -> True leaves that output alone (the Ray engine: already written earlier in the same run);
    `after_write(path)` is called once each output is in place.
    """
    if y.shape[0] != batch.size:
        raise ModelFileError(expected_found(f"{runtime_name} output batch", batch.size, y.shape[0]))
    written = []
    for f, logits in zip(batch.files, y[: len(batch.files)]):
        path = output_path(out_dir, f, outfmt)
        if skip is not None and skip(path):
            continue
        write_bytes_atomic(path, encode_output(logits.reshape(1, cfg.size, cfg.size), outfmt))
        written.append(path)
        if after_write is not None:
            after_write(path)
    return written


def check_args(outfmt: str, batchsize: int, loop: int, warmup_count: int, pure_data_type: str) -> str:
    outfmt = str(outfmt).upper()
    if outfmt not in OUTFMTS:
        raise InputError(expected_found("--outfmt", " | ".join(OUTFMTS), repr(outfmt)))
    for name, value, low in (("--batchsize", batchsize, 1), ("--loop", loop, 1), ("--warmup-count", warmup_count, 0)):
        if not isinstance(value, int) or value < low:
            raise InputError(expected_found(name, f"an integer >= {low}", repr(value)))
    if pure_data_type not in PURE_DATA_TYPES:
        raise InputError(expected_found("--pure-data-type", " | ".join(PURE_DATA_TYPES), repr(pure_data_type)))
    return outfmt


def run_inference(
    model: str | Path,
    inputs: Sequence[str | Path] | None,
    output: str | Path,
    output_dirname: str | None = None,
    outfmt: str = "BIN",
    batchsize: int = 1,
    loop: int = 1,
    warmup_count: int = 1,
    backend: str | None = None,
    backend_options: dict[str, Any] | None = None,
    pure_data_type: str = "zero",
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run `model` over the inputs (folders/files of .bin/.npy) and write one output per input plus a summary.

    `inputs=None` is pure-inference mode: one generated batch run `loop` times, no outputs written.
    Everything is validated (model, input sizes, output folder) before the first file is written.
    """
    args = {k: (str(v) if isinstance(v, Path) else v) for k, v in locals().items()}
    args["inputs"] = None if inputs is None else [str(p) for p in inputs]
    outfmt = check_args(outfmt, batchsize, loop, warmup_count, pure_data_type)
    model, output = Path(model), Path(output)
    if resume and not output_dirname:
        raise InputError(expected_found("--resume", "--output-dirname naming the run to resume", "none given"))
    files = None
    if inputs is not None:
        if not inputs:
            raise InputError(expected_found("--input", "at least one folder or file", "an empty list"))
        files = gather_inputs(inputs)

    runtime = get_runtime(pick_backend(model, backend), model, **(backend_options or {}))
    with runtime:
        cfg = PreprocessConfig(size=int(runtime.input_shape[-1]))
        static = getattr(runtime, "static_batch", None)
        if static is not None and static != batchsize:
            raise InputError(expected_found(f"--batchsize for {model.name} (exported with a fixed batch)", static,
                                            batchsize, f"pass --batchsize {static} or export with a dynamic batch"))
        if files is not None:
            check_sizes(files, cfg)
        dirname = output_dirname or datetime.now().strftime("%Y_%m_%d-%H_%M_%S")
        ensure_dir(output)
        out_dir = output / dirname
        summary_path = output / f"{dirname}_summary.json"
        if files is not None:
            ensure_dir(out_dir)
        result = _run(runtime, files, out_dir, outfmt, cfg, batchsize, loop, warmup_count, pure_data_type,
                      resume, progress)
        describe = runtime.describe()

    summary = build_summary(result, args, batchsize, files, out_dir, describe, model)
    write_json_atomic(summary_path, summary)
    summary["summary_path"] = str(summary_path)
    return summary


def build_summary(result: dict[str, Any], args: dict[str, Any], batchsize: int, files: list[Path] | None,
                  out_dir: Path, describe: dict[str, Any], model: Path, engine: str = "local") -> dict[str, Any]:
    """The summary fields every engine writes (an engine may add its own after them)."""

    stats = latency_stats(result["times"])
    return {
        "engine": engine,
        "filesinfo": result["filesinfo"],
        "args": args,
        "compute_time_ms": stats,
        "throughput_compute": throughput_compute(batchsize, stats["mean"]),
        "throughput_end_to_end": result["e2e"],
        "throughput_definitions": THROUGHPUT_DEFINITIONS,
        "n_inputs": 0 if files is None else len(files),
        "n_outputs": result["n_written"],
        "n_skipped": result["n_skipped"],
        "n_padded": result["n_padded"],
        "output_dir": str(out_dir) if files is not None else None,
        "pure_inference": files is None,
        "machine": machine_info(),
        "runtime": describe,
        "model_sha256": file_sha256(model),
        "date": datetime.now().isoformat(timespec="seconds"),
    }


def _run(runtime: Any, files: list[Path] | None, out_dir: Path, outfmt: str, cfg: PreprocessConfig, batchsize: int,
         loop: int, warmup_count: int, pure_data_type: str, resume: bool, progress: bool) -> dict[str, Any]:
    times: list[float] = []
    if files is None:  # pure inference: one generated batch
        shape = (batchsize, *cfg.input_shape)
        if pure_data_type == "zero":
            data = np.zeros(shape, np.float32)
        else:
            data = np.random.default_rng(0).standard_normal(shape, dtype=np.float32) * np.float32(0.01)
        for _ in range(warmup_count):
            runtime.infer(data)
        t0 = time.perf_counter()
        for _ in tqdm(range(loop), desc="infer", unit="loop", disable=not progress or loop < 10 * PROGRESS_MIN_BATCHES):
            runtime.infer(data)
            times.append(runtime.last_compute_ms)
        wall = time.perf_counter() - t0
        return {"filesinfo": {}, "times": times, "e2e": batchsize * loop / wall, "n_written": 0, "n_skipped": 0,
                "n_padded": 0}

    filesinfo = files_info(files, out_dir, outfmt)
    todo, batches = plan_batches(files, out_dir, outfmt, cfg, batchsize, resume)
    if batches and warmup_count:
        warm = batches[0].load(cfg)
        for _ in range(warmup_count):
            runtime.infer(warm)
    n_written = 0
    t0 = time.perf_counter()
    for batch in tqdm(batches, desc="infer", unit="batch", disable=not progress or len(batches) < PROGRESS_MIN_BATCHES):
        x = batch.load(cfg)
        for _ in range(loop):
            y = runtime.infer(x)
            times.append(runtime.last_compute_ms)
        n_written += len(write_batch_outputs(runtime.name, batch, y, out_dir, outfmt, cfg))
    wall = time.perf_counter() - t0
    return {"filesinfo": filesinfo, "times": times, "e2e": (len(todo) * loop / wall) if todo else None,
            "n_written": n_written, "n_skipped": len(files) - len(todo), "n_padded": sum(b.n_pad for b in batches)}


__all__ = ["run_inference", "pick_backend", "output_path", "output_complete", "plan_batches", "write_batch_outputs",
           "build_summary", "check_args", "format_summary"]
