"""Batches made ahead in a background thread while the training step runs.

Cutting, augmenting and normalising crops is NumPy/OpenCV work that releases the GIL, so one thread keeps the next
batches ready while PyTorch computes. A thread, not a worker process: forking a process that has already run
OpenCV or OpenMP code can hang the child (seen here with DataLoader workers), and the data stay shared.
The order of the batches is the iterable's own, so results do not depend on whether batches are prefetched.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

_END = object()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[Any], depth: int) -> Iterator[Any]:
    """Yield `items` in order, computed up to `depth` ahead by one background thread (depth 0: no thread).
    An exception in the producer is raised here; leaving the loop early stops the producer."""
    if depth <= 0:
        yield from items
        return
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(_Raised(exc))

    thread = threading.Thread(target=produce, name="unetpp-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
