"""`predict_one` as an engine work item: one image per item, the worker's runtime built once, outputs atomic.

    job = predict_job(runtime_factory, out_dir, options)
    for record in ray_engine.run_items(job, [(path, stem), ...], ray_options, num_workers): ...

Each record carries predict_one's own record under "record" (or status "error" with the message), so a driver can
build predict's summary and counts.csv from them exactly as the single-process runner does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2

from unetpp.core.work import Job, WorkerContext
from unetpp.errors import UnetppError


def predict_item(ctx: WorkerContext, item: tuple[str, str]) -> dict[str, Any]:
    """Segment one image with the worker's runtime; report each output written (the fault hook counts them)."""
    from unetpp.predict.image import output_paths, predict_one

    path, stem = item
    p = ctx.params
    record = predict_one(path, p["out_dir"], ctx.runtime, p["options"], stem=stem)
    for out in output_paths(Path(p["out_dir"]), stem, p["options"]).values():
        ctx.wrote(out)
    return {"n_images": 1, "record": record}


def image_keys(item: tuple[str, str]) -> list[str]:
    return [str(item[0])]


def predict_job(runtime_factory: Callable[[], Any], out_dir: str | Path, options: Any) -> Job:
    """The Job for `unetpp predict`: bad images (unreadable, wrong kind) fail alone, as in the local runner."""
    return Job(runtime_factory=runtime_factory, work=predict_item, keys=image_keys,
               params={"out_dir": str(out_dir), "options": options}, catch=(UnetppError, cv2.error, OSError))


def ray_execute(runtime_factory: Callable[[], Any], out_dir: str | Path, options: Any, opts: Any,
                info: dict[str, Any] | None = None) -> Callable[[list[tuple[Path, str]]], Iterator[tuple]]:
    """The `execute` hook of segment.runner.predict_paths on Ray: the items run on a pool of workers; results are
    yielded in the items' order. `info`, when given, receives the cluster and per-worker figures."""
    from tqdm import tqdm

    from unetpp.core import ray as ray_engine
    from unetpp.core.work import worker_stats

    def execute(todo: list[tuple[Path, str]]) -> Iterator[tuple]:
        job = predict_job(runtime_factory, out_dir, options)
        records: dict[int, dict[str, Any]] = {}
        with ray_engine.ray_session(opts) as cluster:
            n = ray_engine.default_workers(opts, cluster)
            bar = tqdm(total=len(todo), desc=f"predict (ray, {n} workers)", unit="img", disable=not opts.progress)
            for rec in ray_engine.run_items(job, [(str(p), s) for p, s in todo], opts, n):
                records[rec["seq"]] = rec
                bar.update(1)
            bar.close()
        if info is not None:
            info.update(cluster=cluster, num_workers=n,
                        workers=worker_stats([r for r in records.values() if r["status"] == "ok"]))
        for i, (path, stem) in enumerate(todo):
            r = records[i]
            yield (path, stem, r["record"], None) if r["status"] == "ok" else (path, stem, None, r["error"])

    return execute
