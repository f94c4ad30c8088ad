"""The one batch driver: items in, a runtime in the middle, records out.

A command describes its work once (a `BatchWork`): how to read an item into network inputs ("units", e.g. one
96x96 tensor per .bin or the tiles of an image), how to take the outputs of its units back, and how to finish the
item (post-process, write atomically). The driver does the rest, the same way for every command:

    prepare thread ──units──▶ this thread: batches of `batch_size` units (across items), padding only what a
    (read, decode, tile)       fixed-batch model needs, warm-up, timing ──outputs──▶ post thread (accept, in
                                                                                       order) ──▶ finish pool

so reading the next items and writing the previous ones overlap the runtime's compute. A batch holds units of
one shape: a unit of another size (a free-size model's per-image windows) runs the pending batch first. Queues
are bounded (memory stays bounded whatever the number of items). An item whose outputs are complete is skipped
(resume); an item that fails with one of the work's `catch` errors fails alone and is listed; an OutputError
(disk full, permission) stops the run. Executors decide where the pipeline runs (core/executors.py).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.atomic import remove_stale_temps
from unetpp.errors import Cancelled, InputError, OutputError, UnetppError, expected_found

_STOP = object()


class BatchWork:
    """What a command does around the runtime call. Subclasses override prepare/accept/finish (and outputs for
    resume). Instances are pickled to workers: keep them to paths and options."""

    catch: tuple[type[BaseException], ...] = (UnetppError,)  # errors that fail one item only

    def key(self, item: Any) -> str:
        """The name an item is reported under (its input file)."""
        return str(item)

    def outputs(self, item: Any) -> list[Path]:
        """The files an item produces; all present and complete = the item is done (resume)."""
        return []

    def output_complete(self, path: Path) -> bool:
        return path.is_file()

    def done_record(self, item: Any) -> dict[str, Any]:
        """The record of an item skipped because its outputs are complete."""
        return {"key": self.key(item), "skipped": True}

    def prepare(self, item: Any) -> tuple[Any, Iterable[np.ndarray]]:
        """(state, chunks of units): each chunk a float32 (k, C, H, W) array. Runs in the prepare thread."""
        raise NotImplementedError

    def accept(self, state: Any, start: int, outputs: np.ndarray) -> None:
        """Outputs (k, C_out, H, W) of the item's units start..start+k-1, in order. Runs in the post thread."""
        raise NotImplementedError

    def finish(self, item: Any, state: Any) -> dict[str, Any]:
        """Post-process and write the item's outputs (atomically); return its record. Runs in the finish pool."""
        raise NotImplementedError

    # set by an executor that must know of each output written (the Ray fault drill); None otherwise
    after_write: Callable[[Path], None] | None = None

    def wrote(self, path: Path) -> None:
        if self.after_write is not None:
            self.after_write(path)


@dataclass(frozen=True)
class DriverSettings:
    """How the driver runs: images per runtime call, warm-up calls, repeats per batch (ais_bench's --loop),
    resume, the prefetch depth (in batches) and the finish pool's threads."""

    batch_size: int = 16
    warmup: int = 1
    loop: int = 1
    resume: bool = True
    prefetch_batches: int = 2
    finish_threads: int = 2
    progress: Callable[[int], None] | None = None  # called with the number of items just completed
    # Streaming (a server): with max_wait_ms a partial batch is run once no new unit arrived for that long, so
    # units of items that arrive close together share a runtime call; on_done(item, record, error) is called as
    # each item completes (record None and error set when it failed).
    max_wait_ms: float | None = None
    on_done: Callable[[Any, dict[str, Any] | None, str | None], None] | None = None
    # Set from another thread (a GUI's Cancel button): the run stops before its next runtime call and
    # run_pipeline raises Cancelled; items already finished keep their (atomically written) outputs.
    cancel: threading.Event | None = None

    def check(self) -> None:
        for name, value, low in (("--batch-size", self.batch_size, 1), ("--warmup", self.warmup, 0),
                                 ("--loop", self.loop, 1), ("prefetch", self.prefetch_batches, 1),
                                 ("finish threads", self.finish_threads, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InputError(expected_found(name, f"an integer >= {low}", repr(value)))


@dataclass
class DriverResult:
    """What a run did: records of finished items (in item order), failures, skipped items and the timings."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    compute_ms: list[float] = field(default_factory=list)  # per timed runtime call (warm-up excluded)
    call_ms: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)  # real units per timed call
    n_units: int = 0
    n_padded: int = 0
    warmup_s: float = 0.0
    wall_s: float = 0.0  # whole run minus warm-up
    busy_s: float = 0.0  # seconds with at least one runtime call in progress (compute, overlapped calls once)

    def merge(self, other: DriverResult) -> None:
        """Fold another part of the same run in (an executor running parts elsewhere)."""
        for name in ("records", "skipped", "failures", "compute_ms", "call_ms", "batch_sizes"):
            getattr(self, name).extend(getattr(other, name))
        self.n_units += other.n_units
        self.n_padded += other.n_padded
        self.busy_s += other.busy_s
        self.warmup_s += other.warmup_s

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriverResult:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def plan(items: Sequence[Any], work: BatchWork, resume: bool) -> tuple[list[Any], list[dict[str, Any]]]:
    """(items to do, records of items skipped because all their outputs are complete)."""
    todo, skipped = [], []
    for item in items:
        outs = work.outputs(item)
        if resume and outs and all(work.output_complete(p) for p in outs):
            skipped.append(work.done_record(item))
        else:
            todo.append(item)
    remove_stale_temps(p for item in todo for p in work.outputs(item))  # left by a killed earlier run
    return todo, skipped


@dataclass
class _Task:
    index: int
    item: Any
    state: Any = None
    failed: str | None = None


class _Units:
    """A counting gate on units between the prepare thread and the compute loop (bounded prefetch)."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.held = capacity, 0
        self.cond = threading.Condition()

    def take(self, n: int, stop: threading.Event) -> bool:
        with self.cond:
            while self.held + n > self.capacity and self.held > 0 and not stop.is_set():
                self.cond.wait(0.1)
            self.held += n
            return not stop.is_set()

    def give(self, n: int) -> None:
        with self.cond:
            self.held -= n
            self.cond.notify_all()


def _first_line(exc: BaseException) -> str:
    msg = str(exc).strip()
    return msg.splitlines()[0] if msg else type(exc).__name__


def run_pipeline(items: Iterable[Any], work: BatchWork, runtime: Any, settings: DriverSettings) -> DriverResult:
    """Run every item through prepare → runtime (batched) → accept → finish in this process. `runtime` is
    activated here if it is not yet (and then left active for the caller to close). `items` may be a stream (a
    generator fed by a server's requests): it is consumed by the prepare thread as items arrive."""
    settings.check()
    result = DriverResult()
    if isinstance(items, Sequence) and not items:
        return result
    runtime.activate()
    t_start = time.perf_counter()
    stop = threading.Event()
    gate = _Units(settings.batch_size * settings.prefetch_batches)
    inbox: queue.Queue = queue.Queue()
    post: queue.Queue = queue.Queue(maxsize=4 * settings.prefetch_batches + 8)
    tasks: list[_Task] = []
    # A stream (a server) hands each item to on_done and keeps nothing: memory stays flat however long it runs.
    retain = settings.on_done is None
    futures: dict[int, Future] = {}
    errors: list[BaseException] = []
    fatal_lock = threading.Lock()

    def fatal(exc: BaseException) -> None:
        with fatal_lock:
            errors.append(exc)
        stop.set()

    def producer() -> None:
        try:
            for index, item in enumerate(items):
                if stop.is_set():
                    break
                task = _Task(index, item)
                if retain:
                    tasks.append(task)
                try:
                    task.state, chunks = work.prepare(task.item)
                    for chunk in chunks:
                        for part in _split(chunk, settings.batch_size):
                            if not gate.take(len(part), stop):
                                return
                            inbox.put(("units", task, part))
                except work.catch as exc:
                    if isinstance(exc, OutputError):
                        raise
                    inbox.put(("fail", task, _first_line(exc)))
                    continue
                inbox.put(("end", task, None))
        except BaseException as exc:  # noqa: BLE001 - anything else stops the run, re-raised by the caller
            fatal(exc)
        finally:
            inbox.put((_STOP, None, None))

    pool = ThreadPoolExecutor(max_workers=settings.finish_threads, thread_name_prefix="unetpp-finish")
    finishing = threading.Semaphore(settings.finish_threads * 2)

    def finish(task: _Task) -> dict[str, Any]:
        try:
            record = work.finish(task.item, task.state)
            record.setdefault("key", work.key(task.item))
            if settings.on_done is not None:
                settings.on_done(task.item, record, None)
            return record
        except OutputError as exc:  # every later write would fail too: stop
            fatal(exc)
            raise
        except work.catch as exc:
            if settings.on_done is not None:
                settings.on_done(task.item, None, _first_line(exc))
            raise
        finally:
            task.state = None
            finishing.release()
            if settings.progress is not None:
                settings.progress(1)

    def consumer() -> None:
        try:
            while True:
                kind, task, payload = post.get()
                if kind is _STOP:
                    return
                if kind == "accept":
                    if task.failed is None:
                        start, out = payload
                        try:
                            work.accept(task.state, start, out)
                        except work.catch as exc:
                            task.failed = _first_line(exc)
                elif kind == "fail":
                    task.failed = task.failed or payload
                elif kind == "end" and task.failed is None:
                    finishing.acquire()
                    fut = pool.submit(finish, task)  # a write error stops the run through fatal() either way
                    if retain:
                        futures[task.index] = fut
                    continue
                if kind in ("fail", "end") and task.failed is not None:
                    task.state = None
                    if settings.on_done is not None:
                        settings.on_done(task.item, None, task.failed)
                    if settings.progress is not None:
                        settings.progress(1)
        except BaseException as exc:  # noqa: BLE001
            fatal(exc)

    threads = [threading.Thread(target=producer, name="unetpp-prepare", daemon=True),
               threading.Thread(target=consumer, name="unetpp-post", daemon=True)]
    for t in threads:
        t.start()

    pending: list[tuple[_Task, int, np.ndarray]] = []  # (task, start unit index, units)
    deferred: list[tuple[str, _Task, Any]] = []  # events to post after the pending batch
    sent: dict[int, int] = {}
    warm = settings.warmup == 0

    # Batches in flight on a runtime that runs several requests at once (OpenVINO's async infer requests):
    # (handle, the batch's (task, start, units), events to post after it). Completed in submission order.
    inflight: deque[tuple[Any, list[tuple[_Task, int, np.ndarray]], list[tuple[str, _Task, Any]]]] = deque()
    busy = {"since": None}

    def post_outputs(y: np.ndarray, parts: list[tuple[_Task, int, np.ndarray]],
                     events: list[tuple[str, _Task, Any]]) -> None:
        row = 0
        for task, start, units in parts:
            k = units.shape[0]
            post.put(("accept", task, (start, y[row:row + k])))
            row += k
        gate.give(row)
        for ev in events:
            post.put(ev)

    def complete_oldest() -> None:
        handle, parts, events = inflight.popleft()
        y, pad = runtime.collect(handle)
        result.compute_ms.append(float(runtime.last_compute_ms))
        result.call_ms.append(float(runtime.last_call_ms))
        result.n_padded += pad
        if not inflight:
            result.busy_s += time.perf_counter() - busy["since"]
        post_outputs(y, parts, events)

    def flush() -> None:
        nonlocal warm
        if not pending:
            if inflight:  # events must follow the outputs still in flight
                inflight[-1][2].extend(deferred)
            else:
                for ev in deferred:
                    post.put(ev)
            deferred.clear()
            return
        if settings.cancel is not None and settings.cancel.is_set():
            raise Cancelled("cancelled")  # set while this batch was being gathered
        x = pending[0][2] if len(pending) == 1 else np.concatenate([p[2] for p in pending])
        if not warm:
            t0 = time.perf_counter()
            for _ in range(settings.warmup):
                runtime.infer_padded(x)
            result.warmup_s += time.perf_counter() - t0
            warm = True
        result.batch_sizes.append(int(x.shape[0]))
        result.n_units += int(x.shape[0])
        parts, events = list(pending), list(deferred)
        pending.clear()
        deferred.clear()
        depth = max(1, int(getattr(runtime, "max_in_flight", 1) or 1)) if settings.loop == 1 else 1  # known
        if depth > 1:  # once the runtime has compiled (after the warm-up)
            if not inflight:
                busy["since"] = time.perf_counter()
            inflight.append((runtime.submit(x), parts, events))
            while len(inflight) >= depth:
                complete_oldest()
            return
        for _ in range(settings.loop):
            y, pad = runtime.infer_padded(x)
            result.compute_ms.append(float(runtime.last_compute_ms))
            result.call_ms.append(float(runtime.last_call_ms))
            result.busy_s += float(runtime.last_compute_ms) / 1000.0
        result.n_padded += pad
        post_outputs(y, parts, events)

    def drain_inflight() -> None:
        while inflight:
            complete_oldest()

    try:
        n_pending = 0
        while True:
            if settings.cancel is not None and settings.cancel.is_set():
                fatal(Cancelled("cancelled"))
            if stop.is_set():
                break
            if inflight and inbox.empty():  # nothing to batch yet: finish the oldest request rather than wait
                complete_oldest()  # (its units return to the gate, so the prepare thread can go on)
                continue
            if settings.max_wait_ms is not None and n_pending:
                try:
                    kind, task, payload = inbox.get(timeout=settings.max_wait_ms / 1000.0)
                except queue.Empty:  # nothing more arrived in time: run the partial batch now
                    flush()
                    drain_inflight()
                    n_pending = 0
                    continue
            else:
                kind, task, payload = _get(inbox, settings.cancel)
            if kind is None:  # the wait was cut short by a cancel
                continue
            if kind is _STOP:
                break
            if kind == "units":  # fill batches of exactly batch_size units, splitting a chunk where needed
                if pending and pending[0][2].shape[1:] != payload.shape[1:]:
                    flush()  # units of another size (windows of a free-size model): a batch holds one shape
                    n_pending = 0
                off = 0
                while off < payload.shape[0]:
                    take = min(settings.batch_size - n_pending, payload.shape[0] - off)
                    start = sent.get(task.index, 0)
                    sent[task.index] = start + take
                    pending.append((task, start, payload[off:off + take]))
                    n_pending += take
                    off += take
                    if n_pending == settings.batch_size:
                        flush()
                        n_pending = 0
            else:
                deferred.append((kind, task, payload))
                if not pending:
                    flush()
        if not stop.is_set():
            flush()
            drain_inflight()
    except BaseException as exc:  # noqa: BLE001 - a runtime error stops the run; re-raised below
        fatal(exc)
    finally:
        post.put((_STOP, None, None))
        for t in threads:
            while t.is_alive():
                t.join(0.1)
                if stop.is_set():  # unblock a producer waiting on the gate or a full queue
                    _drain(inbox)
        pool.shutdown(wait=True)
    for task in tasks:
        fut = futures.get(task.index)
        if fut is not None:
            try:
                result.records.append(fut.result())
            except OutputError as exc:
                errors.append(exc)
            except work.catch as exc:
                result.failures.append({"key": work.key(task.item), "error": _first_line(exc)})
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
        elif task.failed is not None:
            result.failures.append({"key": work.key(task.item), "error": task.failed})
    if errors:
        raise errors[0]
    result.wall_s = time.perf_counter() - t_start - result.warmup_s
    return result


def _split(chunk: np.ndarray, size: int) -> list[np.ndarray]:
    chunk = np.asarray(chunk)
    if chunk.dtype != np.float32 or chunk.ndim != 4:
        raise InputError(expected_found("prepared units", "float32 (k, C, H, W)",
                                        f"{chunk.dtype} of shape {chunk.shape}"))
    return [chunk[i:i + size] for i in range(0, chunk.shape[0], size)]


def _get(q: queue.Queue, cancel: threading.Event | None) -> tuple[Any, Any, Any]:
    """The next event; with a cancel event, waits in short steps and gives (None, None, None) once it is set."""
    if cancel is None:
        return q.get()
    while not cancel.is_set():
        try:
            return q.get(timeout=0.05)
        except queue.Empty:
            continue
    return None, None, None


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
