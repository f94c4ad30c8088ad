"""Run a Job's items on Ray Data: one row per item, `map_batches` over a fixed pool of actors.

Each actor builds its runtime once (lazily, on its first item) and runs items one at a time; the work function
writes the outputs from the worker (atomically) and the actor returns one small JSON record per item. Ray restarts
a dead actor and retries its in-flight items (`max_restarts`, `max_task_retries`); the work function is expected
to make a retried item idempotent (see core/executors.py).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from unetpp.core.work import Job, WorkerContext, run_item
from unetpp.errors import InputError, RuntimeUnavailable, UnetppError, expected_found

INSTALL_HINT = "pip install 'unetpp[ray]'"
BLOCKS_PER_WORKER = 64  # rows (items) are spread over at most this many blocks per worker


@dataclass(frozen=True)
class RayOptions:
    """address None: start an embedded local Ray; "auto", "host:6379" or "ray://host:10001": join a cluster."""

    address: str | None = None
    num_workers: int | None = None  # default: the cluster's CPUs // threads
    threads: int = 1  # CPUs reserved per worker (and the runtime's intra-op threads)
    num_gpus: float = 0.0  # GPUs per worker
    max_restarts: int = 3  # a worker process that dies is restarted this many times ...
    max_task_retries: int = 3  # ... and its in-flight items retried
    progress: bool = True

    def check(self) -> None:
        if self.num_workers is not None and self.num_workers < 1:
            raise InputError(expected_found("--num-workers", "an integer >= 1", self.num_workers))
        if self.threads < 1:
            raise InputError(expected_found("--threads", "an integer >= 1", self.threads))
        if self.num_gpus < 0:
            raise InputError(expected_found("--num-gpus", "a number >= 0", self.num_gpus))


def import_ray() -> Any:
    """Ray, or RuntimeUnavailable saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the [data] extra
    except ImportError as exc:
        raise RuntimeUnavailable(
            f"--engine ray needs Ray Data ({exc.name or 'ray'} is not installed): {INSTALL_HINT}") from None
    return ray


@contextmanager
def ray_session(opts: RayOptions) -> Iterator[dict[str, Any]]:
    """Connect (or start an embedded Ray) and yield the cluster's description; an embedded Ray is shut down after.

    An already initialised Ray (a test fixture, a notebook) is used as it is and left running.
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                  "configure_logging": True}
        if opts.address is None:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            kwargs["num_cpus"] = max(cores, (opts.num_workers or 1) * opts.threads)  # GPUs: Ray detects them
        try:
            ray.init(address=opts.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError, SystemExit) as exc:  # Ray exits when no GCS answers
            first = (str(exc) or repr(exc)).splitlines()[0][:300].rstrip(".")
            raise RuntimeUnavailable(expected_found("Ray cluster", f"one at --address {opts.address}",
                                                    f"an error: {first}", "start one with `ray start --head`")
                                     ) from None
        started = True
    try:
        yield cluster_info(ray, "embedded" if opts.address is None and started else "joined")
    finally:
        if started:
            ray.shutdown()


def cluster_info(ray: Any, mode: str) -> dict[str, Any]:
    """Nodes, CPUs, GPUs, the Ray version and the address, for the summary."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    res = ray.cluster_resources()
    try:
        address = ray.get_runtime_context().gcs_address
    except AttributeError:
        address = None
    return {
        "mode": mode, "address": address, "ray_version": ray.__version__, "n_nodes": len(nodes),
        "cpus": res.get("CPU", 0.0), "gpus": res.get("GPU", 0.0),
        "nodes": [{"node_id": n["NodeID"][:12], "ip": n.get("NodeManagerAddress"),
                   "hostname": n.get("NodeManagerHostname"), "cpus": n.get("Resources", {}).get("CPU", 0.0),
                   "gpus": n.get("Resources", {}).get("GPU", 0.0)}
                  for n in nodes],
    }


def default_workers(opts: RayOptions, cluster: dict[str, Any]) -> int:
    """--num-workers, else as many as the cluster's CPUs (and GPUs) allow; a pool that cannot fit is an error
    (Ray would wait for resources forever)."""
    fit = int(cluster["cpus"] // opts.threads)
    if opts.num_gpus:
        fit = min(fit, int(cluster["gpus"] // opts.num_gpus))
    n = opts.num_workers or max(1, fit)
    if n > fit:
        need = f"{n} x {opts.threads} CPUs" + (f" and {n} x {opts.num_gpus:g} GPUs" if opts.num_gpus else "")
        have = f"{cluster['cpus']:g} CPUs and {cluster['gpus']:g} GPUs in the cluster"
        raise InputError(expected_found("--num-workers x (--threads, --num-gpus)", f"resources that fit ({need})",
                                        have, "ask for fewer workers or threads, or add nodes"))
    return n


def _identity() -> dict[str, Any]:
    import ray

    ctx = ray.get_runtime_context()
    ip = ray.util.get_node_ip_address()
    return {"worker": f"{ip}:{os.getpid()}", "pid": os.getpid(), "node_ip": ip, "node_id": ctx.get_node_id()[:12],
            "actor_id": ctx.get_actor_id()}


class JobActor:
    """One Ray Data actor: a WorkerContext for its whole life, so the runtime is built once per process."""

    def __init__(self, job: Job) -> None:
        self.ctx = WorkerContext(job, _identity())

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = [json.dumps(run_item(self.ctx, int(seq), pickle.loads(blob)), default=str)
                   for seq, blob in zip(batch["seq"], batch["item"])]
        return {"record": np.array(records, dtype=object)}


def probe(runtime_factory: Callable[[], Any], fn: Callable[[Any], Any], opts: RayOptions) -> Any:
    """Build and activate one runtime on a worker with the workers' resources and return `fn(runtime)`: a bad
    model or a missing backend fails here, before any output is written, with the runtime's own message."""
    ray = import_ray()

    def _probe(factory: Callable[[], Any], fn: Callable[[Any], Any]) -> Any:
        with factory() as rt:
            return fn(rt)

    remote = ray.remote(num_cpus=opts.threads, num_gpus=opts.num_gpus or None, max_retries=0)(_probe)
    try:
        return ray.get(remote.remote(runtime_factory, fn))
    except Exception as exc:  # noqa: BLE001 - Ray wraps the worker's exception
        cause = getattr(exc, "cause", None)
        if isinstance(cause, UnetppError):
            raise type(cause)(str(cause)) from None
        if isinstance(exc, ray.exceptions.RayError):  # the cluster itself failed (a node died, ...)
            first = (str(exc) or repr(exc)).strip().splitlines()[0][:300]
            raise RuntimeUnavailable(expected_found("Ray cluster", f"live workers (--address {opts.address})",
                                                    f"{type(exc).__name__}: {first}")) from None
        raise


def run_items(job: Job, items: Sequence[Any], opts: RayOptions, num_workers: int) -> Iterator[dict[str, Any]]:
    """Yield one record per item as the workers finish them (in no particular order)."""
    ray = import_ray()
    data_ctx = ray.data.DataContext.get_current()
    data_ctx.enable_progress_bars = False  # the caller shows its own progress
    if not opts.progress:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    rows = [{"seq": i, "item": pickle.dumps(item)} for i, item in enumerate(items)]
    n_blocks = max(1, min(len(rows), BLOCKS_PER_WORKER * num_workers))
    try:
        ds = ray.data.from_items(rows, override_num_blocks=n_blocks)
    except TypeError:  # Ray < 2.10 calls it parallelism
        ds = ray.data.from_items(rows, parallelism=n_blocks)
    with warnings.catch_warnings():  # Ray >= 2.60 flags actor options passed as ray_remote_args; none replaces them
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ds.map_batches(
            JobActor, fn_constructor_args=(job,), batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=num_workers), num_cpus=opts.threads,
            num_gpus=opts.num_gpus or None, max_restarts=opts.max_restarts, max_task_retries=opts.max_task_retries,
        )
    try:
        for row in ds.iter_rows():
            yield json.loads(row["record"])
    except ray.exceptions.RayError as exc:  # e.g. a worker died more than max_restarts times
        first = (str(exc) or repr(exc)).strip().splitlines()[0][:300]
        raise RuntimeUnavailable(f"the Ray workers failed ({type(exc).__name__}: {first}); the outputs completed "
                                 "so far are kept: rerun with --resume and the same --output-dirname") from None


def options_dict(opts: RayOptions) -> dict[str, Any]:
    return asdict(opts)
