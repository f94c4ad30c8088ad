"""Dynamic batching across requests: one background thread runs the batch driver over a stream of requests.

Each request puts a `PredictItem` on a queue and awaits an asyncio Future; the driver (core/driver.py) batches the
tiles of items that arrive close together into one runtime call (a partial batch runs once nothing more arrived
for `max_wait_ms`) and reports each item through `on_done`, which resolves its Future on the event loop with
`call_soon_threadsafe`. Inference never runs on the event loop. Should the driver stop on an unexpected error, the
items it held fail and a new driver takes the stream over: the server never dies from a request.

Memory stays flat over any number of requests: the driver keeps a small record of every item it ran until its run
ends (its DriverResult), so the stream is handed to a fresh driver every `RECYCLE_EVERY` images; the items it
sees carry no pixels (the image stays with the request and is dropped when it is answered) and the records it
keeps are emptied once their content went to the request.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unetpp.core.driver import DriverSettings, run_pipeline
from unetpp.errors import UnetppError, problem_of
from unetpp.log import logger
from unetpp.predict.image import PredictOptions
from unetpp.predict.work import PredictItem, PredictWork, first_pass_copy, work_kwargs
from unetpp.serve.metrics import Metrics

RECYCLE_EVERY = 256  # images per driver run (bounds what a run retains); the next run takes over at once


class ServeWork(PredictWork):
    """predict's work with every per-image exception failing that image alone (a server answers each request);
    an item's pixels are looked up by its key when it is prepared, not carried by the item."""

    catch = (Exception,)

    def __init__(self, *args: Any, pixels: Callable[[str], np.ndarray | None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pixels = pixels

    def prepare(self, item: PredictItem) -> tuple[dict[str, Any], Iterator[np.ndarray]]:
        image = self._pixels(item.stem)
        if image is None:
            raise UnetppError(f"request {item.stem} was answered before it ran")
        return super().prepare(PredictItem(item.stem, image=image, options=item.options))


@dataclass
class _Job:
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float
    image: np.ndarray | None
    started: float | None = None


class _CountingRuntime:
    """The runtime as the driver sees it, counting the real batch size of each call for /metrics."""

    def __init__(self, runtime: Any, metrics: Metrics) -> None:
        self._rt, self._metrics = runtime, metrics

        self.failed = False  # a runtime call raised: the driver stops, so the stream must end

    def infer_padded(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        try:
            out = self._rt.infer_padded(x)
        except BaseException:
            self.failed = True
            raise
        self._metrics.batch(int(x.shape[0]))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)


@dataclass
class Batcher:
    """The server's inference thread. `submit` is called on the event loop; everything else runs off it."""

    runtime: Any
    metrics: Metrics
    batch_size: int = 16
    max_wait_ms: float = 5.0
    _inbox: queue.Queue = field(default_factory=queue.Queue)
    _jobs: dict[str, _Job] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=itertools.count)
    _thread: threading.Thread | None = None
    _stopping: bool = False
    ready: bool = False

    def start(self) -> None:
        """Activate and warm the runtime (one call of a full batch), then start the driver thread."""
        self.runtime.activate()
        shape = (self.batch_size, *self.runtime.input_shape)
        self.runtime.infer_padded(np.zeros(shape, np.float32))
        self._thread = threading.Thread(target=self._run, name="unetpp-serve-driver", daemon=True)
        self._thread.start()
        self.ready = True

    def stop(self) -> None:
        self.ready = False
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(30)

    def depth(self) -> int:
        """Requests submitted and not yet answered."""
        with self._lock:
            return len(self._jobs)

    def submit(self, image: np.ndarray, options: PredictOptions) -> asyncio.Future:
        """Queue one image; the Future resolves to (record, timings) or to an exception."""
        loop = asyncio.get_running_loop()
        key = f"r{next(self._ids)}"
        job = _Job(loop.create_future(), loop, time.perf_counter(), image)
        with self._lock:
            self._jobs[key] = job
        self.metrics.queue_depth(self.depth())
        self._inbox.put(PredictItem(key, options=options))
        return job.future

    # -- the driver thread ---------------------------------------------------------------------
    def _pixels(self, key: str) -> np.ndarray | None:
        with self._lock:
            job = self._jobs.get(key)
        return None if job is None else job.image

    def _stream(self, held: set[str], rt: _CountingRuntime) -> Iterator[PredictItem]:
        n = 0
        while not rt.failed and n < RECYCLE_EVERY:
            try:
                item = self._inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                self._stopping = True
                return
            with self._lock:
                job = self._jobs.get(item.stem)
            if job is None or job.future.done():  # timed out (or its client left) while queued: skip it
                self._forget(item.stem)
                continue
            job.started = time.perf_counter()
            held.add(item.stem)
            n += 1
            yield item

    def _run(self) -> None:
        opts = PredictOptions(mode="tile")
        while True:
            held: set[str] = set()
            rt = _CountingRuntime(self.runtime, self.metrics)
            settings = DriverSettings(batch_size=self.batch_size, warmup=0, resume=False,
                                      max_wait_ms=self.max_wait_ms, finish_threads=2,
                                      on_done=lambda item, rec, err, held=held: self._done(item, rec, err, held))
            try:
                kwargs = work_kwargs(self.runtime, opts)
                kwargs["first_pass_runtime"] = first_pass_copy(self.runtime, PredictOptions(mode="tile",
                                                                                            scale="nuclei"))
                work = ServeWork(opts, pixels=self._pixels, **kwargs)
                run_pipeline(self._stream(held, rt), work, rt, settings)
                if self._stopping:
                    return
            except BaseException as exc:  # noqa: BLE001 - fail the held items, keep serving
                logger("serve").error(f"serve: the batch driver stopped ({type(exc).__name__}: {exc}); "
                                      "restarting it")
                self.metrics.error("driver")
                for key in list(held):
                    self._resolve(key, None, f"internal error: {type(exc).__name__}", internal=True)
                time.sleep(0.2)  # a fault that repeats must not spin the thread

    def _done(self, item: PredictItem, record: dict[str, Any] | None, error: str | None, held: set[str]) -> None:
        held.discard(item.stem)
        content = None
        if record is not None:  # the request takes the content; the driver keeps an empty record until its run ends
            content = dict(record)
            record.clear()
        self._resolve(item.stem, content, error)

    def _resolve(self, key: str, record: dict[str, Any] | None, error: str | None, internal: bool = False) -> None:
        job = self._forget(key)
        if job is None:
            return
        now = time.perf_counter()
        started = job.started or now
        timings = {"queue_ms": round((started - job.enqueued) * 1000, 2),
                   "compute_ms": round((now - started) * 1000, 2)}

        def settle() -> None:
            if job.future.done():
                return
            if record is not None:
                job.future.set_result((record, timings))
            else:
                job.future.set_exception(ItemFailed(error or "failed", internal))

        job.loop.call_soon_threadsafe(settle)

    def _forget(self, key: str) -> _Job | None:
        with self._lock:
            job = self._jobs.pop(key, None)
            depth = len(self._jobs)
        self.metrics.queue_depth(depth)
        return job


class ItemFailed(Exception):
    """An image the driver could not segment; `internal` when the server, not the image, is at fault."""

    def __init__(self, message: str, internal: bool = False) -> None:
        super().__init__(message)
        self.internal = internal
        self.problem = problem_of(message)  # the parts of a structured message (errors.Problem), if it is one
