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
from unetpp.errors import Cancelled, InputError, OutputError, UnetppError, expected_found, problem_of


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
    """The error's message as one line; a structured one (errors.Problem) kept whole, so its parts travel on."""
    problem = problem_of(exc)
    if problem is not None and "\n" not in problem:
        return problem
    msg = str(exc).strip()
    return msg.splitlines()[0] if msg else type(exc).__name__


# Events between the three threads (prepare -> this thread -> post), typed rather than string-tagged tuples.
@dataclass(frozen=True)
class Units:
    """Prepared units of an item (float32 (k, C, H, W)), prepare thread -> compute loop."""

    task: _Task
    units: np.ndarray


@dataclass(frozen=True)
class PrepareFailed:
    """An item failed with one of the work's `catch` errors (its first line)."""

    task: _Task
    error: str


@dataclass(frozen=True)
class ItemPrepared:
    """All of an item's units were handed over: once their outputs are accepted, it can be finished."""

    task: _Task


@dataclass(frozen=True)
class Outputs:
    """The runtime's outputs of an item's units start..start+k-1, compute loop -> post thread."""

    task: _Task
    start: int
    outputs: np.ndarray


class _Stop:
    """The end of a stream of events."""


STOP = _Stop()
Event = Units | PrepareFailed | ItemPrepared | Outputs | _Stop


class Pipeline:
    """One run of run_pipeline: the prepare thread (`produce`), this thread batching units into runtime calls
    (`compute`), the post thread (`consume`: accept, then hand complete items to the finish pool) and the
    results gathered in item order (`collect`)."""

    def __init__(self, items: Iterable[Any], work: BatchWork, runtime: Any, settings: DriverSettings) -> None:
        self.items, self.work, self.runtime, self.settings = items, work, runtime, settings
        self.result = DriverResult()
        self.stop = threading.Event()
        self.gate = _Units(settings.batch_size * settings.prefetch_batches)
        self.inbox: queue.Queue[Event] = queue.Queue()
        self.post: queue.Queue[Event] = queue.Queue(maxsize=4 * settings.prefetch_batches + 8)
        self.tasks: list[_Task] = []
        # A stream (a server) hands each item to on_done and keeps nothing: memory stays flat however long it runs.
        self.retain = settings.on_done is None
        self.futures: dict[int, Future] = {}
        self.errors: list[BaseException] = []
        self._fatal_lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=settings.finish_threads, thread_name_prefix="unetpp-finish")
        self.finishing = threading.Semaphore(settings.finish_threads * 2)
        self.batches = _Batches(self)

    def fatal(self, exc: BaseException) -> None:
        with self._fatal_lock:
            self.errors.append(exc)
        self.stop.set()

    def run(self) -> DriverResult:
        self.runtime.activate()
        t_start = time.perf_counter()
        threads = [threading.Thread(target=self.produce, name="unetpp-prepare", daemon=True),
                   threading.Thread(target=self.consume, name="unetpp-post", daemon=True)]
        for t in threads:
            t.start()
        try:
            self.compute()
        except BaseException as exc:  # noqa: BLE001 - a runtime error stops the run; re-raised below
            self.fatal(exc)
        finally:
            self.post.put(STOP)
            for t in threads:
                while t.is_alive():
                    t.join(0.1)
                    if self.stop.is_set():  # unblock a producer waiting on the gate or a full queue
                        _drain(self.inbox)
            self.pool.shutdown(wait=True)
        self.collect()
        if self.errors:
            raise self.errors[0]
        self.result.wall_s = time.perf_counter() - t_start - self.result.warmup_s
        return self.result

    # -- the prepare thread ----------------------------------------------------------------------
    def produce(self) -> None:
        try:
            for index, item in enumerate(self.items):
                if self.stop.is_set():
                    break
                task = _Task(index, item)
                if self.retain:
                    self.tasks.append(task)
                if not self._prepare(task):
                    return
        except BaseException as exc:  # noqa: BLE001 - anything else stops the run, re-raised by the caller
            self.fatal(exc)
        finally:
            self.inbox.put(STOP)

    def _prepare(self, task: _Task) -> bool:
        """Hand an item's units over (False: the run stopped meanwhile)."""
        try:
            task.state, chunks = self.work.prepare(task.item)
            for chunk in chunks:
                for part in _split(chunk, self.settings.batch_size):
                    if not self.gate.take(len(part), self.stop):
                        return False
                    self.inbox.put(Units(task, part))
        except self.work.catch as exc:
            if isinstance(exc, OutputError):
                raise
            self.inbox.put(PrepareFailed(task, _first_line(exc)))
            return True
        self.inbox.put(ItemPrepared(task))
        return True

    # -- the post thread and the finish pool ------------------------------------------------------
    def consume(self) -> None:
        try:
            while True:
                event = self.post.get()
                if isinstance(event, _Stop):
                    return
                self._on_post(event)
        except BaseException as exc:  # noqa: BLE001
            self.fatal(exc)

    def _on_post(self, event: Event) -> None:
        task = event.task  # type: ignore[union-attr]
        if isinstance(event, Outputs):
            if task.failed is None:
                try:
                    self.work.accept(task.state, event.start, event.outputs)
                except self.work.catch as exc:
                    task.failed = _first_line(exc)
            return
        if isinstance(event, PrepareFailed):
            task.failed = task.failed or event.error
        elif task.failed is None:  # ItemPrepared, all its outputs accepted
            self.finishing.acquire()
            fut = self.pool.submit(self.finish, task)  # a write error stops the run through fatal() either way
            if self.retain:
                self.futures[task.index] = fut
            return
        task.state = None
        self._done(task, None, task.failed)
        if self.settings.progress is not None:
            self.settings.progress(1)

    def _done(self, task: _Task, record: dict[str, Any] | None, error: str | None) -> None:
        if self.settings.on_done is not None:
            self.settings.on_done(task.item, record, error)

    def finish(self, task: _Task) -> dict[str, Any]:
        try:
            record = self.work.finish(task.item, task.state)
            record.setdefault("key", self.work.key(task.item))
            self._done(task, record, None)
            return record
        except OutputError as exc:  # every later write would fail too: stop
            self.fatal(exc)
            raise
        except self.work.catch as exc:
            self._done(task, None, _first_line(exc))
            raise
        finally:
            task.state = None
            self.finishing.release()
            if self.settings.progress is not None:
                self.settings.progress(1)

    def collect(self) -> None:
        """Records and failures in item order."""
        result, work = self.result, self.work
        for task in self.tasks:
            fut = self.futures.get(task.index)
            if fut is not None:
                try:
                    result.records.append(fut.result())
                except OutputError as exc:
                    self.errors.append(exc)
                except work.catch as exc:
                    result.failures.append({"key": work.key(task.item), "error": _first_line(exc)})
                except BaseException as exc:  # noqa: BLE001
                    self.errors.append(exc)
            elif task.failed is not None:
                result.failures.append({"key": work.key(task.item), "error": task.failed})

    # -- this thread: units into batches, batches through the runtime ----------------------------
    def compute(self) -> None:
        settings, batches = self.settings, self.batches
        while True:
            if settings.cancel is not None and settings.cancel.is_set():
                self.fatal(Cancelled("cancelled"))
            if self.stop.is_set():
                break
            if batches.inflight and self.inbox.empty():  # nothing to batch yet: finish the oldest request
                batches.complete_oldest()  # (its units return to the gate, so the prepare thread can go on)
                continue
            if settings.max_wait_ms is not None and batches.n_pending:
                try:
                    event: Event | None = self.inbox.get(timeout=settings.max_wait_ms / 1000.0)
                except queue.Empty:  # nothing more arrived in time: run the partial batch now
                    batches.flush()
                    batches.drain()
                    continue
            else:
                event = _get(self.inbox, settings.cancel)
            if event is None:  # the wait was cut short by a cancel
                continue
            if isinstance(event, _Stop):
                break
            if isinstance(event, Units):
                batches.add(event)
            else:
                batches.defer(event)
        if not self.stop.is_set():
            batches.flush()
            batches.drain()


class _Batches:
    """The compute side of a Pipeline: units gathered into batches of exactly batch_size (one shape per batch),
    warm-up, runtime calls (several in flight on a runtime that runs requests at once, e.g. OpenVINO's async
    infer requests, completed in submission order), outputs and the events that must follow them posted."""

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe
        self.pending: list[tuple[_Task, int, np.ndarray]] = []  # (task, start unit index, units)
        self.n_pending = 0
        self.deferred: list[Event] = []  # events to post after the pending batch
        self.sent: dict[int, int] = {}
        self.warm = pipe.settings.warmup == 0
        self.inflight: deque[tuple[Any, list[tuple[_Task, int, np.ndarray]], list[Event]]] = deque()
        self.busy_since: float | None = None

    def add(self, event: Units) -> None:
        """Fill batches of exactly batch_size units, splitting a chunk where needed."""
        size, units, task = self.pipe.settings.batch_size, event.units, event.task
        if self.pending and self.pending[0][2].shape[1:] != units.shape[1:]:
            self.flush()  # units of another size (windows of a free-size model): a batch holds one shape
        off = 0
        while off < units.shape[0]:
            take = min(size - self.n_pending, units.shape[0] - off)
            start = self.sent.get(task.index, 0)
            self.sent[task.index] = start + take
            self.pending.append((task, start, units[off:off + take]))
            self.n_pending += take
            off += take
            if self.n_pending == size:
                self.flush()

    def defer(self, event: Event) -> None:
        self.deferred.append(event)
        if not self.pending:
            self.flush()

    def _post_outputs(self, y: np.ndarray, parts: list[tuple[_Task, int, np.ndarray]], events: list[Event]) -> None:
        row = 0
        for task, start, units in parts:
            k = units.shape[0]
            self.pipe.post.put(Outputs(task, start, y[row:row + k]))
            row += k
        self.pipe.gate.give(row)
        for ev in events:
            self.pipe.post.put(ev)

    def complete_oldest(self) -> None:
        runtime, result = self.pipe.runtime, self.pipe.result
        handle, parts, events = self.inflight.popleft()
        y, pad = runtime.collect(handle)
        result.compute_ms.append(float(runtime.last_compute_ms))
        result.call_ms.append(float(runtime.last_call_ms))
        result.n_padded += pad
        if not self.inflight and self.busy_since is not None:
            result.busy_s += time.perf_counter() - self.busy_since
        self._post_outputs(y, parts, events)

    def drain(self) -> None:
        while self.inflight:
            self.complete_oldest()

    def flush(self) -> None:
        if not self.pending:
            if self.inflight:  # events must follow the outputs still in flight
                self.inflight[-1][2].extend(self.deferred)
            else:
                for ev in self.deferred:
                    self.pipe.post.put(ev)
            self.deferred.clear()
            return
        settings, runtime, result = self.pipe.settings, self.pipe.runtime, self.pipe.result
        if settings.cancel is not None and settings.cancel.is_set():
            raise Cancelled("cancelled")  # set while this batch was being gathered
        x = self.pending[0][2] if len(self.pending) == 1 else np.concatenate([p[2] for p in self.pending])
        self._warm_up(x)
        result.batch_sizes.append(int(x.shape[0]))
        result.n_units += int(x.shape[0])
        parts, events = list(self.pending), list(self.deferred)
        self.pending.clear()
        self.deferred.clear()
        self.n_pending = 0
        depth = max(1, int(getattr(runtime, "max_in_flight", 1) or 1)) if settings.loop == 1 else 1  # known
        if depth > 1:  # once the runtime has compiled (after the warm-up)
            if not self.inflight:
                self.busy_since = time.perf_counter()
            self.inflight.append((runtime.submit(x), parts, events))
            while len(self.inflight) >= depth:
                self.complete_oldest()
            return
        for _ in range(settings.loop):
            y, pad = runtime.infer_padded(x)
            result.compute_ms.append(float(runtime.last_compute_ms))
            result.call_ms.append(float(runtime.last_call_ms))
            result.busy_s += float(runtime.last_compute_ms) / 1000.0
        result.n_padded += pad
        self._post_outputs(y, parts, events)

    def _warm_up(self, x: np.ndarray) -> None:
        if self.warm:
            return
        t0 = time.perf_counter()
        for _ in range(self.pipe.settings.warmup):
            self.pipe.runtime.infer_padded(x)
        self.pipe.result.warmup_s += time.perf_counter() - t0
        self.warm = True


def run_pipeline(items: Iterable[Any], work: BatchWork, runtime: Any, settings: DriverSettings) -> DriverResult:
    """Run every item through prepare → runtime (batched) → accept → finish in this process. `runtime` is
    activated here if it is not yet (and then left active for the caller to close). `items` may be a stream (a
    generator fed by a server's requests): it is consumed by the prepare thread as items arrive."""
    settings.check()
    if isinstance(items, Sequence) and not items:
        return DriverResult()
    return Pipeline(items, work, runtime, settings).run()


def _split(chunk: np.ndarray, size: int) -> list[np.ndarray]:
    chunk = np.asarray(chunk)
    if chunk.dtype != np.float32 or chunk.ndim != 4:
        raise InputError(expected_found("prepared units", "float32 (k, C, H, W)",
                                        f"{chunk.dtype} of shape {chunk.shape}"))
    return [chunk[i:i + size] for i in range(0, chunk.shape[0], size)]


def _get(q: queue.Queue, cancel: threading.Event | None) -> Any:
    """The next event; with a cancel event, waits in short steps and gives None once it is set."""
    if cancel is None:
        return q.get()
    while not cancel.is_set():
        try:
            return q.get(timeout=0.05)
        except queue.Empty:
            continue
    return None


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
