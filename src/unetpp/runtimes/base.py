"""The runtime contract (after Polygraphy's runners): cheap to construct, heavy work in activate()."""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.errors import InputError, RuntimeUnavailable, expected_found


class Runtime(ABC):
    """One backend. Holds only paths and options until activate(), so it pickles to a worker process.

    Subclasses implement _activate(), _infer(batch) -> logits (N, 1, H, W) float32, and optionally
    _deactivate(), _synchronize() (for asynchronous devices) and version(). A subclass that can time the device
    apart from the transfers sets self._device_ms inside _infer.
    """

    name: str = "base"

    def __init__(self, model: str | Path, input_shape: tuple[int, int, int] = (3, 96, 96), **options: Any) -> None:
        self.model = Path(model)
        self.input_shape = tuple(input_shape)
        self.options = options
        self.active = False
        # last_compute_ms: the compute-only time of the last call (ais_bench's definition): the device's own time
        # where the runtime can measure it apart from transfers (CUDA events), else the call's wall time.
        # last_call_ms: the host wall time of the whole call, transfers included.
        self.last_compute_ms: float | None = None
        self.last_call_ms: float | None = None
        self._device_ms: float | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def activate(self) -> Runtime:
        if not self.active:
            self._activate()
            self.active = True
        return self

    def deactivate(self) -> None:
        if self.active:
            self._deactivate()
            self.active = False

    def __enter__(self) -> Runtime:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def __getstate__(self) -> dict[str, Any]:
        # Only paths and options travel; a worker activates its own copy.
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        state["active"] = False
        return state

    # -- inference -------------------------------------------------------------------------------
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Check the batch against the model's input spec, run it, record the compute time in ms."""
        if not self.active:
            self.activate()
        if not isinstance(batch, np.ndarray) or batch.dtype != np.float32:
            found = f"{type(batch).__name__} of {getattr(batch, 'dtype', '?')}"
            raise InputError(expected_found(f"{self.name} input", "a float32 numpy array", found))
        if batch.ndim != 4 or tuple(batch.shape[1:]) != self.input_shape:
            raise InputError(
                expected_found(f"{self.name} input shape", f"(N, {', '.join(map(str, self.input_shape))})",
                               tuple(batch.shape))
            )
        self._synchronize()
        self._device_ms = None
        t0 = time.perf_counter()
        out = self._infer(np.ascontiguousarray(batch))
        self._synchronize()
        self.last_call_ms = (time.perf_counter() - t0) * 1000.0
        self.last_compute_ms = self._device_ms if self._device_ms is not None else self.last_call_ms
        return out

    @abstractmethod
    def _activate(self) -> None: ...

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray: ...

    def _deactivate(self) -> None:  # noqa: B027 - optional hook
        """Free the session; the default keeps nothing to free."""

    def _synchronize(self) -> None:  # noqa: B027 - optional hook
        """Wait for queued device work; CPU runtimes are synchronous."""

    def version(self) -> str:
        return "unknown"

    def describe(self) -> dict[str, Any]:
        """What a summary records about the runtime."""
        return {"backend": self.name, "version": self.version(), "options": dict(self.options),
                "model": str(self.model)}


# name -> (module, class, pip extra that provides it)
_REGISTRY: dict[str, tuple[str, str, str]] = {}


def register(name: str, module: str, cls: str, extra: str) -> None:
    _REGISTRY[name] = (module, cls, extra)


def known_runtimes() -> list[str]:
    return sorted(_REGISTRY)


def get_runtime(name: str, model: str | Path, **options: Any) -> Runtime:
    """The one factory: an unknown name lists the known ones; a missing package names the extra to install."""
    if name not in _REGISTRY:
        raise InputError(expected_found("backend", "one of " + ", ".join(known_runtimes()), repr(name)))
    module, cls, extra = _REGISTRY[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeUnavailable(
            f"backend {name!r} needs {exc.name or 'a package'} which is not installed: pip install 'unetpp[{extra}]'"
        ) from None
    return getattr(mod, cls)(model, **options)
