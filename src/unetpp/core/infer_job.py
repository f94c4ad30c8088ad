"""`unetpp infer --engine ray`: the local pipeline's batches, run by a pool of Ray workers.

Identity: the driver forms the batches with pipeline.infer.plan_batches, exactly as the local engine does (same
sorted files, same groups, same padding), and one Ray Data row is one such batch; so each output is computed from
the same batch as in a single-process run with the same runtime and batch size.
Exactly once: outputs are written by the workers with an atomic rename; a rerun with --resume skips complete
outputs (the local check); an item retried after its worker died skips the outputs that the dead attempt already
wrote in this run (complete, and modified after the run's start stamp taken from the output folder's own clock).
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from unetpp.atomic import ensure_dir, write_json_atomic
from unetpp.config import PreprocessConfig
from unetpp.core import ray as ray_engine
from unetpp.core.summary import THROUGHPUT_DEFINITIONS
from unetpp.core.work import FaultSpec, Job, WorkerContext, worker_stats
from unetpp.errors import InputError, expected_found
from unetpp.infer.batching import Batch, gather_inputs, screen_sizes
from unetpp.infer.run import (
    build_summary,
    check_args,
    files_info,
    output_complete,
    pick_backend,
    plan_batches,
    write_batch_outputs,
)
from unetpp.runtimes import get_runtime

RAY_THROUGHPUT_DEFINITIONS = {
    "throughput_end_to_end": "images inferred / wall-clock seconds of the Ray Data execution (worker start-up, "
                             "session creation and warm-up included; Ray start-up excluded, see ray.startup_s)",
    "throughput_steady_state": "sum over workers of images / that worker's active seconds after its warm-up",
    "throughput_with_startup": "images inferred / (Ray start-up + execution) seconds",
}


def infer_batch(ctx: WorkerContext, batch: Batch) -> dict[str, Any]:
    """The work function: read the batch, warm up once per worker, infer `loop` times, write the outputs."""
    p = ctx.params
    cfg, out_dir, outfmt = p["cfg"], Path(p["out_dir"]), p["outfmt"]
    rt = ctx.runtime
    t0 = time.perf_counter()
    x = batch.load(cfg)
    load_s = time.perf_counter() - t0
    warmup_s = 0.0
    if not ctx.state.get("warm"):
        t1 = time.perf_counter()
        rt.activate()
        for _ in range(p["warmup_count"]):
            rt.infer(x)
        ctx.state["warm"] = True
        warmup_s = time.perf_counter() - t1
    times = []
    for _ in range(p["loop"]):
        y = rt.infer(x)
        times.append(rt.last_compute_ms)
    already: list[str] = []

    def written_in_this_run(path: Path) -> bool:
        done = output_complete(path, outfmt, cfg) and path.stat().st_mtime_ns > p["run_stamp_ns"]
        if done:
            already.append(str(path))
        return done

    t2 = time.perf_counter()
    written = write_batch_outputs(rt.name, batch, y, out_dir, outfmt, cfg, skip=written_in_this_run,
                                  after_write=ctx.wrote)
    return {"batch": batch.index, "n_images": len(batch.files), "n_pad": batch.n_pad,
            "written": [str(w) for w in written], "already": already, "compute_ms": times,
            "load_s": load_s, "write_s": time.perf_counter() - t2, "warmup_s": warmup_s}


def batch_keys(batch: Batch) -> list[str]:
    return [str(f) for f in batch.files]


def describe_runtime(rt: Any) -> dict[str, Any]:
    """What the driver needs from the model, read on a worker: input shape, fixed batch, the runtime's summary."""
    return {"input_shape": list(rt.input_shape), "static_batch": getattr(rt, "static_batch", None),
            "describe": rt.describe()}


def fs_clock_ns(folder: Path) -> int:
    """Now, by the clock that stamps files in `folder` (a network file system's server, not this host)."""
    fd, tmp = tempfile.mkstemp(prefix=".unetpp-stamp.", dir=folder)
    try:
        return os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)
        os.unlink(tmp)


def run_inference_ray(
    model: str | Path,
    inputs: Sequence[str | Path],
    output: str | Path,
    output_dirname: str | None = None,
    outfmt: str = "BIN",
    batchsize: int = 1,
    loop: int = 1,
    warmup_count: int = 1,
    backend: str | None = None,
    backend_options: dict[str, Any] | None = None,
    resume: bool = False,
    progress: bool = True,
    ray_options: ray_engine.RayOptions | None = None,
    fault: FaultSpec | None = None,
) -> dict[str, Any]:
    """run_inference on a Ray cluster: same batches, same outputs, same summary plus workers and cluster.

    An input that cannot be read (wrong size) fails alone: it is listed in the summary's `failed` while the others
    complete. Inputs and outputs must be on a file system every worker sees under the same paths.
    """
    args = {k: (str(v) if isinstance(v, Path) else v) for k, v in locals().items()
            if k not in ("ray_options", "fault")}
    opts = ray_options or ray_engine.RayOptions()
    args["inputs"] = [str(p) for p in inputs or []]
    args["ray_options"] = ray_engine.options_dict(opts)
    outfmt = check_args(outfmt, batchsize, loop, warmup_count, "zero")
    opts.check()
    model, output = Path(model), Path(output)
    if resume and not output_dirname:
        raise InputError(expected_found("--resume", "--output-dirname naming the run to resume", "none given"))
    if not inputs:
        raise InputError(expected_found("--input with --engine ray", "at least one folder or file",
                                        "none (pure-inference mode runs with --engine local)"))
    ray_engine.import_ray()  # without Ray: say how to install it, before anything else
    files = gather_inputs(inputs)
    name = pick_backend(model, backend)
    options = {"threads": opts.threads, **(backend_options or {})}
    get_runtime(name, model, **options)  # an unknown backend or option fails here, before Ray starts
    factory = functools.partial(get_runtime, name, model, **options)
    fault = fault or FaultSpec.from_env()

    t_start = time.perf_counter()
    with ray_engine.ray_session(opts) as cluster:
        num_workers = ray_engine.default_workers(opts, cluster)
        info = ray_engine.probe(factory, describe_runtime, opts)
        startup_s = time.perf_counter() - t_start
        cfg = PreprocessConfig(size=int(info["input_shape"][-1]))
        if info["static_batch"] is not None and info["static_batch"] != batchsize:
            raise InputError(expected_found(f"--batchsize for {model.name} (exported with a fixed batch)",
                                            info["static_batch"], batchsize,
                                            f"pass --batchsize {info['static_batch']} or export with a dynamic batch"))
        good, bad = screen_sizes(files, cfg)
        dirname = output_dirname or datetime.now().strftime("%Y_%m_%d-%H_%M_%S")
        out_dir = ensure_dir(ensure_dir(output) / dirname)
        todo, batches = plan_batches(good, out_dir, outfmt, cfg, batchsize, resume)
        params = {"cfg": cfg, "out_dir": str(out_dir), "outfmt": outfmt, "loop": loop,
                  "warmup_count": warmup_count, "run_stamp_ns": fs_clock_ns(out_dir)}
        job = Job(runtime_factory=factory, work=infer_batch, keys=batch_keys, params=params, fault=fault)
        t_exec = time.perf_counter()
        records = []
        if batches:
            bar = tqdm(total=len(todo), desc=f"infer (ray, {num_workers} workers)", unit="img",
                       disable=not progress)
            for rec in ray_engine.run_items(job, batches, opts, num_workers):
                records.append(rec)
                bar.update(len(rec["keys"]))
            bar.close()
        exec_s = time.perf_counter() - t_exec

    ok = [r for r in records if r["status"] == "ok"]
    failed = [{"file": str(f), "error": msg} for f, msg in bad.items()]
    failed += [{"file": k, "error": r["error"]} for r in records if r["status"] != "ok" for k in r["keys"]]
    n_done = sum(r["n_images"] for r in ok)
    workers = worker_stats(ok)
    steady = [w["images_per_s"] for w in workers if w["images_per_s"]]
    result = {"filesinfo": files_info(files, out_dir, outfmt), "times": [t for r in ok for t in r["compute_ms"]],
              "e2e": n_done * loop / exec_s if n_done else None,
              "n_written": sum(len(r["written"]) + len(r["already"]) for r in ok), "n_skipped": len(good) - len(todo),
              "n_padded": sum(b.n_pad for b in batches)}
    summary = build_summary(result, args, batchsize, files, out_dir, info["describe"], model, engine="ray")
    summary["throughput_definitions"] = {**THROUGHPUT_DEFINITIONS, **RAY_THROUGHPUT_DEFINITIONS}
    summary.update({
        "throughput_steady_state": sum(steady) * loop if steady else None,
        "throughput_with_startup": n_done * loop / (startup_s + exec_s) if n_done else None,
        "n_failed": len(failed), "failed": sorted(failed, key=lambda f: f["file"]),
        "n_retried_outputs": sum(len(r["already"]) for r in ok),
        "ray": {"startup_s": startup_s, "execution_s": exec_s, "num_workers": num_workers,
                "threads_per_worker": opts.threads, "gpus_per_worker": opts.num_gpus},
        "workers": workers, "cluster": cluster,
    })
    summary_path = Path(output) / f"{dirname}_summary.json"
    write_json_atomic(summary_path, summary)
    summary["summary_path"] = str(summary_path)
    return summary
