"""The engine-neutral half of distributed work: a Job (lazy runtime + per-item work function) and the worker side.

A work function `work(ctx, item) -> dict` processes one picklable item (an inference batch, an image to segment)
with `ctx.runtime`, built once per worker on first use from `job.runtime_factory` (the runtime contract: cheap to
construct, the session is created lazily). It reports each output it writes with `ctx.wrote(path)` and returns a
small dict (`written`, `already`, `compute_ms`, `n_images`, ...). Any engine (Ray today) ships the Job to its
workers and calls `run_item` there; nothing here imports the engine.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unetpp.errors import InputError, UnetppError, expected_found

FAULT_ENV = "UNETPP_FAULT_EXIT"  # "K:/path/to/marker": the first worker to write its K-th output dies, once


@dataclass(frozen=True)
class FaultSpec:
    """Fault injection, a real crash for tests and drills: the first worker to reach `exit_after_writes` output
    writes creates `marker` (O_EXCL, so exactly once across workers, restarts and retries), lists there the outputs
    it wrote (path, inode), and leaves with os._exit(1) as a killed process would; the engine must recover."""

    exit_after_writes: int
    marker: str

    @classmethod
    def from_env(cls) -> FaultSpec | None:
        value = os.environ.get(FAULT_ENV)
        if not value:
            return None
        count, sep, marker = value.partition(":")
        if not sep or not count.isdigit() or int(count) < 1 or not marker:
            raise InputError(expected_found(FAULT_ENV, "K:/path/to/marker with K >= 1", repr(value)))
        return cls(int(count), marker)


@dataclass(frozen=True)
class Job:
    """What every worker receives (pickled): how to build its runtime, the work function, constant parameters."""

    runtime_factory: Callable[[], Any]
    work: Callable[[WorkerContext, Any], dict[str, Any]]
    keys: Callable[[Any], list[str]]  # the names an item is reported under (its input files)
    params: dict[str, Any] = field(default_factory=dict)
    fault: FaultSpec | None = None
    catch: tuple[type[BaseException], ...] = (UnetppError,)  # what fails one item only (the rest is a crash)


class WorkerContext:
    """Per-worker state: the lazily built runtime, a scratch `state` dict, the worker's identity, the fault hook."""

    def __init__(self, job: Job, identity: dict[str, Any]) -> None:
        self.job = job
        self.params = job.params
        self.identity = identity
        self.state: dict[str, Any] = {}
        self._runtime: Any = None
        self._written: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    @property
    def runtime(self) -> Any:
        """Built once, on first use; a Runtime creates its session on its own first infer()."""
        if self._runtime is None:
            self._runtime = self.job.runtime_factory()
        return self._runtime

    def wrote(self, path: Path) -> None:
        """Called after each output is in place (from the driver's finish threads); fires the fault hook when one is
        armed: the K-th write dies, and no other thread's write is counted after it."""
        with self._lock:
            self._wrote(path)

    def _wrote(self, path: Path) -> None:
        self._written.append((str(path), path.stat().st_ino))
        fault = self.job.fault
        if fault is None or len(self._written) < fault.exit_after_writes:
            return
        try:
            fd = os.open(fault.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return  # another worker (or this one, before a restart) already died once
        with os.fdopen(fd, "w") as fh:
            json.dump({"identity": self.identity, "written": self._written}, fh)
        os._exit(1)


def host_identity() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": platform.node()}


def run_item(ctx: WorkerContext, seq: int, item: Any) -> dict[str, Any]:
    """Run the work function on one item; an error of `job.catch` fails that item only, with its message."""
    record: dict[str, Any] = {"seq": seq, "keys": ctx.job.keys(item), **ctx.identity, "t_start": time.time()}
    try:
        record.update(ctx.job.work(ctx, item))
        record["status"] = "ok"
    except ctx.job.catch as exc:
        msg = str(exc).strip()
        record.update(status="error", error=msg.splitlines()[0] if msg else type(exc).__name__)
    record["t_end"] = time.time()
    return record


def worker_stats(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per worker process: items, images, busy time and throughput over its own active window (its own clock)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(r["worker"], []).append(r)
    out = []
    for name, recs in sorted(groups.items()):
        n_images = sum(int(r.get("n_images", 0)) for r in recs)
        warmup = sum(float(r.get("warmup_s", 0.0)) for r in recs)  # first item of each worker: not steady state
        window = max(r["t_end"] for r in recs) - min(r["t_start"] for r in recs) - warmup
        busy = sum(r["t_end"] - r["t_start"] for r in recs) - warmup
        first = recs[0]
        out.append({"worker": name, "pid": first.get("pid"), "node": first.get("node_ip") or first.get("host"),
                    "actor_id": first.get("actor_id"), "n_items": len(recs), "n_images": n_images,
                    "warmup_s": round(warmup, 4), "busy_s": round(busy, 4), "window_s": round(window, 4),
                    "images_per_s": n_images / window if window > 0 else None})
    return out
