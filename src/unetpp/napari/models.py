"""Models opened once and kept for the session: the widget and the command share them (opening the instance
model and its first-pass guide model takes about a second; a checkpoint is exported to ONNX once, cached)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from unetpp.errors import UnetppError

SHIPPED = ("instance", "guide")
KEEP = 2  # models kept open; the least recently used one beyond that is closed

_open: OrderedDict[tuple[str, str | None], tuple[Any, threading.Lock]] = OrderedDict()
_guard = threading.Lock()


class ModelOpenError(UnetppError):
    """A model file that cannot be opened (missing, unreadable, not a model the runtime accepts)."""


def _key(model: str | Path, backend: str | None) -> tuple[str, str | None]:
    if str(model) in SHIPPED:
        return str(model), backend
    path = Path(model).expanduser()
    stamp = path.stat().st_mtime_ns if path.is_file() else 0  # a file rewritten in place is opened anew
    return f"{path.resolve()}@{stamp}", backend


def get_model(model: str | Path, backend: str | None = None) -> tuple[Any, threading.Lock]:
    """(an open unetpp.api.Model, the lock to hold while predicting with it). Any failure to open becomes one
    ModelOpenError naming the model and the reason."""
    from unetpp.api import load

    key = _key(model, backend)
    with _guard:
        if key in _open:
            _open.move_to_end(key)
            return _open[key]
        try:
            opened = load(str(model), backend=backend)
        except UnetppError as exc:
            raise ModelOpenError(f"cannot open model {str(model)!r}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a runtime's own error on a broken file: one line, no traceback
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelOpenError(f"cannot open model {str(model)!r}: {type(exc).__name__}: {first}") from None
        _open[key] = (opened, threading.Lock())
        while len(_open) > KEEP:
            _, (old, lock) = _open.popitem(last=False)
            with lock:
                old.close()
        return _open[key]


def close_all() -> None:
    with _guard:
        while _open:
            _, (old, lock) = _open.popitem()
            with lock:
                old.close()
