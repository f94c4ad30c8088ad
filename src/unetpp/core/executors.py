"""Where the driver's pipeline runs. An executor only decides that; the work, the batching, the bad-input policy
and the records are the driver's, so every executor gives the same outputs and the same summary fields.

- LocalExecutor: this process (the default).
- RayExecutor: a pool of Ray Data actors; the items are cut into chunks (for `infer`, one chunk = one batch, so a
  batch holds the same inputs as in a local run) and each actor runs the local pipeline on its chunk with its own
  runtime, built once per actor. A chunk retried after its worker died skips the items whose outputs that attempt
  already wrote in this run.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unetpp.atomic import ensure_dir, remove_stale_temps
from unetpp.core.driver import BatchWork, DriverResult, DriverSettings, plan, run_pipeline
from unetpp.core.work import FaultSpec, Job, WorkerContext, worker_stats

ENGINES = ("local", "ray")


class LocalExecutor:
    name = "local"

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    def run(self, items: Sequence[Any], work: BatchWork, runtime: Any, settings: DriverSettings) -> DriverResult:
        return run_pipeline(items, work, runtime, settings)


def run_batches(items: Sequence[Any], work: BatchWork, runtime: Any, settings: DriverSettings | None = None,
                executor: Any = None) -> DriverResult:
    """Plan (skip complete items when resuming), then run the rest on `executor` (default: this process)."""
    settings = settings or DriverSettings()
    settings.check()
    todo, skipped = plan(items, work, settings.resume)
    result = (executor or LocalExecutor()).run(todo, work, runtime, settings)
    result.skipped = skipped + result.skipped
    return result


def _same(runtime: Any) -> Any:
    return runtime


def fs_clock_ns(folder: Path) -> int:
    """Now, by the clock that stamps files in `folder` (a network file system's server, not this host)."""
    fd, tmp = tempfile.mkstemp(prefix=".unetpp-stamp.", dir=folder)
    try:
        return os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)
        os.unlink(tmp)


def _run_chunk(ctx: WorkerContext, chunk: list[Any]) -> dict[str, Any]:
    """On a Ray worker: the local pipeline over one chunk with the worker's runtime (warm-up once per worker)."""
    p = ctx.params
    work: BatchWork = copy.copy(p["work"])
    work.after_write = ctx.wrote
    stamp = p["run_stamp_ns"]
    todo, already = [], []
    for item in chunk:
        outs = work.outputs(item)
        if stamp is not None and outs and all(work.output_complete(o) and o.stat().st_mtime_ns > stamp for o in outs):
            already.append({**work.done_record(item), "skipped": False, "retried": True})
        else:
            todo.append(item)
    remove_stale_temps(o for item in todo for o in work.outputs(item))  # a retry after this chunk's worker died
    settings: DriverSettings = p["settings"]
    if ctx.state.get("warm"):
        settings = dataclasses.replace(settings, warmup=0)
    result = run_pipeline(todo, work, ctx.runtime, dataclasses.replace(settings, progress=None))
    ctx.state["warm"] = True
    n_done = len(result.records)
    result.records.extend(already)
    return {"result": result.to_dict(), "n_images": n_done, "n_already": len(already),
            "warmup_s": result.warmup_s}


class RayExecutor:
    """Runs the driver on Ray Data actors. `chunk_size`: items per Ray row (None: the batch size)."""

    name = "ray"

    def __init__(self, options: Any, chunk_size: int | None = None, fault: FaultSpec | None = None) -> None:
        from unetpp.core.ray import import_ray

        import_ray()  # without Ray: say how to install it, before anything else
        options.check()
        self.options, self.chunk_size = options, chunk_size
        self.fault = fault if fault is not None else FaultSpec.from_env()
        self.info: dict[str, Any] = {}

    def run(self, items: Sequence[Any], work: BatchWork, runtime: Any, settings: DriverSettings) -> DriverResult:
        from tqdm import tqdm

        from unetpp.core import ray as ray_engine

        opts = self.options
        if "threads" in getattr(type(runtime), "OPTIONS", ()) and not runtime.options.get("threads"):
            runtime.options["threads"] = opts.threads  # each worker reserves --threads CPUs: use that many
        factory = functools.partial(_same, runtime)
        t0 = time.perf_counter()
        result = DriverResult()
        with ray_engine.ray_session(opts) as cluster:
            n_workers = ray_engine.default_workers(opts, cluster)
            describe = ray_engine.probe(factory, lambda rt: rt.describe(), opts)
            startup_s = time.perf_counter() - t0
            size = self.chunk_size or settings.batch_size
            chunks = [list(items[i:i + size]) for i in range(0, len(items), size)]
            outs = work.outputs(items[0]) if items else []
            if outs:
                ensure_dir(outs[0].parent)
            stamp = fs_clock_ns(outs[0].parent) if outs else None
            job = Job(runtime_factory=factory, work=_run_chunk, keys=lambda c: [work.key(i) for i in c],
                      params={"work": work, "settings": settings, "run_stamp_ns": stamp}, fault=self.fault)
            t_exec = time.perf_counter()
            records = []
            bar = tqdm(total=len(items), desc=f"{work.__class__.__name__} (ray, {n_workers} workers)", unit="item",
                       disable=not opts.progress or not items)
            for rec in ray_engine.run_items(job, chunks, opts, n_workers) if chunks else ():
                records.append(rec)
                if rec["status"] == "ok":
                    result.merge(DriverResult.from_dict(rec["result"]))
                else:
                    result.failures += [{"key": k, "error": rec["error"]} for k in rec["keys"]]
                bar.update(len(rec["keys"]))
            bar.close()
            exec_s = time.perf_counter() - t_exec
        order = {work.key(item): i for i, item in enumerate(items)}
        result.records.sort(key=lambda r: order.get(r.get("key"), -1))
        result.failures.sort(key=lambda f: order.get(f["key"], -1))
        result.wall_s = exec_s
        ok = [r for r in records if r["status"] == "ok"]
        workers = worker_stats(ok)
        steady = [w["images_per_s"] for w in workers if w["images_per_s"]]
        self.info = {
            "cluster": cluster, "runtime": describe, "workers": workers,
            "ray": {"startup_s": startup_s, "execution_s": exec_s, "num_workers": n_workers,
                    "threads_per_worker": opts.threads, "gpus_per_worker": opts.num_gpus, "items_per_chunk": size},
            "n_retried_outputs": sum(int(r.get("n_already", 0)) for r in ok),
            "throughput_steady_state": sum(steady) * settings.loop if steady else None,
            "throughput_with_startup": (len(result.records) * settings.loop / (startup_s + exec_s)
                                        if result.records else None),
        }
        return result
