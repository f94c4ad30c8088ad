"""The runtime contract (after Polygraphy's runners): cheap to construct, heavy work in activate(), facts stated.

A runtime class states what callers would otherwise hard-code: the model files it opens (`suffixes`), the options
it accepts (`OPTIONS`), how the common flags `--threads/--device/--dtype` map onto those options (`map_flags`),
and, once active, the model's input spec (`input_shape`, `static_batch`), its output channels and the
preprocessing the model was exported with (`preprocess`, read from the model file's metadata).

A model whose height/width are free (a fully convolutional network exported with dynamic H/W) states
`size_step` (16 for NestedUNet: four 2x poolings): it accepts any H, W that are multiples of it; `input_shape`
then gives its nominal size (the size it was trained at, 96), which callers that need one fixed size (`infer`,
the guide's resize protocol) keep using. `size_step` None: the model takes `input_shape` only.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from unetpp.config import PreprocessConfig
from unetpp.errors import InputError, ModelFileError, expected_found
from unetpp.log import logger

_ASSUMED_DEFAULTS: set[str] = set()  # model files already told about (say it once per file and process)


class Runtime(ABC):
    """One backend. Holds only paths and options until activate(), so it pickles to a worker process.

    Subclasses implement _activate() (setting input_shape, static_batch, output_channels and metadata where the
    model file has them), _infer(batch) -> (N, C_out, H, W) float32, and optionally _deactivate(), _synchronize()
    (asynchronous devices) and version(). A subclass that can time the device apart from the transfers sets
    self._device_ms inside _infer.
    """

    name: ClassVar[str] = "base"
    suffixes: ClassVar[tuple[str, ...]] = ()  # model files this runtime opens
    OPTIONS: ClassVar[tuple[str, ...]] = ("threads",)  # options it accepts (checked on construction)
    # common flag -> option name; None: the flag is not available on this runtime (only its default passes)
    flags: ClassVar[dict[str, str | None]] = {"threads": "threads", "device": None, "dtype": None}
    flag_defaults: ClassVar[dict[str, str]] = {"device": "cpu", "dtype": "fp32"}

    def __init__(self, model: str | Path, input_shape: tuple[int, int, int] = (3, 96, 96), **options: Any) -> None:
        unknown = set(options) - set(type(self).OPTIONS)
        if unknown:
            raise InputError(expected_found(f"{self.name} options", ", ".join(type(self).OPTIONS) or "none",
                                            ", ".join(sorted(unknown))))
        for key in ("threads",):
            value = options.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise InputError(expected_found(f"{self.name} {key}", "an integer >= 1", repr(value)))
        self.model = Path(model)
        self.input_shape = tuple(input_shape)
        self.options = dict(options)
        self.active = False
        self.static_batch: int | None = None
        self.size_step: int | None = None  # set by _activate where the model's H/W are free (multiples of it)
        self.output_channels: int | None = None
        self.metadata: dict[str, Any] | None = None  # what the model file says about itself (model/metadata.py)
        # why this runtime and file were chosen (compile/fast.py: runtime, precision, accuracy verified or not)
        self.selection: dict[str, Any] | None = None
        # the guide model file for the `nuclei` scale rule's first pass, where the default runtime built its own
        # (compile/first_pass.py: int8); None: the shipped guide model
        self.first_pass_model: Path | None = None
        # last_compute_ms: the compute-only time of the last call (ais_bench's definition): the device's own time
        # where the runtime can measure it apart from transfers (CUDA events), else the call's wall time.
        # last_call_ms: the host wall time of the whole call, transfers included.
        self.last_compute_ms: float | None = None
        self.last_call_ms: float | None = None
        self._device_ms: float | None = None

    # -- the common flags ------------------------------------------------------------------------
    @classmethod
    def map_flags(cls, threads: int | None = None, device: str | None = None,
                  dtype: str | None = None) -> dict[str, Any]:
        """--threads/--device/--dtype as this runtime's options; a flag it cannot honour is an error."""
        out: dict[str, Any] = {}
        for flag, value in (("threads", threads), ("device", device), ("dtype", dtype)):
            if value is None:
                continue
            target = cls.flags.get(flag)
            if target is None:
                if str(value).lower() == cls.flag_defaults.get(flag):
                    continue
                raise InputError(expected_found(f"--{flag} with backend {cls.name}",
                                                cls.flag_defaults.get(flag, "not given"), value,
                                                "choose a backend that supports it (see `unetpp infer --help`)"))
            out[target] = cls.convert_flag(flag, value)
        return out

    @classmethod
    def convert_flag(cls, flag: str, value: Any) -> Any:
        return value

    # -- lifecycle -----------------------------------------------------------------------------
    def activate(self) -> Runtime:
        if not self.active:
            self._activate()
            self._check_input_spec()
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

    def inactive_copy(self) -> Runtime:
        """A copy holding only paths and options (what travels to a worker); it activates on its own."""
        import pickle

        return pickle.loads(pickle.dumps(self))

    def _check_input_spec(self) -> None:
        shape = self.input_shape
        if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ModelFileError(expected_found(f"{self.model} input", "(N, C, H, W) with fixed C, H, W",
                                                f"(N, {', '.join(map(str, shape))})"))
        if self.static_batch is not None and self.static_batch < 1:
            raise ModelFileError(expected_found(f"{self.model} batch axis", "dynamic or >= 1", self.static_batch))
        if shape[0] != 3 or shape[1] != shape[2]:
            raise ModelFileError(expected_found(f"{self.model} input", "(N, 3, S, S): 3 channels (BGR) of a square "
                                                "image", f"(N, {', '.join(map(str, shape))})"))

    def _check_output_spec(self, shape: list[Any]) -> None:
        """The model's declared output (N, C, H, W; None or a name where dynamic): rank 4 and, where both are
        static, the input's spatial size (unetpp writes one map per input pixel). Called by _activate."""
        h, w = self.input_shape[1:]
        if len(shape) != 4:
            raise ModelFileError(expected_found(f"{self.model} output", f"rank 4 (N, C, {h}, {w})", list(shape)))
        spatial = [d for d in shape[2:] if isinstance(d, int)]
        if len(spatial) == 2 and tuple(spatial) != (h, w):
            raise ModelFileError(expected_found(
                f"{self.model} output shape", f"(N, C, {h}, {w}) for its (N, {', '.join(map(str, self.input_shape))}) "
                "input", f"({', '.join(str(d) if isinstance(d, int) else '?' for d in shape)})",
                "unetpp runs segmentation models whose output has the input's size"))
        if isinstance(shape[1], int) and shape[1] < 1:
            raise ModelFileError(expected_found(f"{self.model} output channels", ">= 1", shape[1]))

    # -- facts -------------------------------------------------------------------------------------
    def accepts(self, chw: tuple[int, ...]) -> bool:
        """Whether one input of shape (C, H, W) can run: the model's own shape, or with free H/W any multiple
        of size_step."""
        if tuple(chw) == tuple(self.input_shape):
            return True
        step = self.size_step
        return bool(step) and len(chw) == 3 and chw[0] == self.input_shape[0] and all(
            d >= step and d % step == 0 for d in chw[1:])

    @property
    def preprocess(self) -> PreprocessConfig:
        """The preprocessing the model file declares; without it the guide's defaults, said once per file."""
        meta = (self.metadata or {}).get("preprocess")
        if meta:
            return PreprocessConfig.from_dict(meta)
        key = str(self.model)
        if key not in _ASSUMED_DEFAULTS:
            _ASSUMED_DEFAULTS.add(key)
            logger("runtimes").warning(
                f"{self.model.name} carries no preprocessing metadata; assuming the guide's (BGR, ImageNet mean/std, "
                f"extra /255, {self.input_shape[-1]} px, logit threshold 0.5)")
        return PreprocessConfig(size=int(self.input_shape[-1]))

    @property
    def outputs_are_logits(self) -> bool:
        return (self.metadata or {}).get("output_kind", "logits") == "logits"

    def image_normalizer(self) -> Any:
        """A picklable callable: BGR uint8 (H, W, 3) image -> the model's float32 (C, H, W) input."""
        import functools

        from unetpp.data.preprocess import normalize

        return functools.partial(normalize, cfg=self.preprocess)

    @property
    def outputs(self) -> list[str]:
        """Names of the output channels: the model's metadata, else 'foreground' for a 1-channel model."""
        names = (self.metadata or {}).get("outputs")
        if names:
            return list(names)
        n = self.output_channels or 1
        return ["foreground"] if n == 1 else [f"channel{i}" for i in range(n)]

    # -- inference -------------------------------------------------------------------------------
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Check the batch against the model's input spec, run it, record the compute time in ms."""
        if not self.active:
            self.activate()
        if not isinstance(batch, np.ndarray) or batch.dtype != np.float32:
            found = f"{type(batch).__name__} of {getattr(batch, 'dtype', '?')}"
            raise InputError(expected_found(f"{self.name} input", "a float32 numpy array", found))
        if batch.ndim != 4 or not self.accepts(tuple(batch.shape[1:])):
            want = f"(N, {', '.join(map(str, self.input_shape))})" if not self.size_step else \
                f"(N, {self.input_shape[0]}, H, W) with H, W multiples of {self.size_step}"
            raise InputError(expected_found(f"{self.name} input shape", want, tuple(batch.shape)))
        if self.static_batch is not None and batch.shape[0] != self.static_batch:
            raise InputError(expected_found(f"batch size for {self.model.name} (a fixed-batch model)",
                                            self.static_batch, batch.shape[0], "use infer_padded"))
        self._synchronize()
        self._device_ms = None
        t0 = time.perf_counter()
        out = self._infer(np.ascontiguousarray(batch))
        self._synchronize()
        self.last_call_ms = (time.perf_counter() - t0) * 1000.0
        self.last_compute_ms = self._device_ms if self._device_ms is not None else self.last_call_ms
        self._check_output(out, batch.shape)
        return out

    def infer_padded(self, batch: np.ndarray) -> tuple[np.ndarray, int]:
        """(outputs for the batch's rows, rows of padding added): a fixed-batch model gets its own batch size,
        short chunks filled with copies of their last row (dropped from the result); others run as given."""
        if not self.active:
            self.activate()
        step = self.static_batch
        if step is None or batch.shape[0] == step:
            return self.infer(batch), 0
        parts, pad = [], 0
        compute = call = 0.0
        for i in range(0, batch.shape[0], step):
            chunk = batch[i:i + step]
            k = chunk.shape[0]
            if k < step:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - k, axis=0)])
                pad += step - k
            parts.append(self.infer(chunk)[:k])
            compute += self.last_compute_ms or 0.0
            call += self.last_call_ms or 0.0
        self.last_compute_ms, self.last_call_ms = compute, call
        return (parts[0] if len(parts) == 1 else np.concatenate(parts)), pad

    # -- overlapped requests (runtimes that run several at once override these three) -----------------
    max_in_flight: int = 1  # requests the driver may keep in flight

    def submit(self, batch: np.ndarray) -> Any:
        """Start a call; the default runs it now (synchronous runtimes)."""
        return self.infer_padded(batch)

    def collect(self, handle: Any) -> tuple[np.ndarray, int]:
        """Wait for a call started by submit(): (outputs, padded rows); sets last_compute_ms/last_call_ms."""
        return handle

    def _check_output(self, out: np.ndarray, in_shape: tuple[int, ...]) -> None:
        n, _, h, w = in_shape
        ok = isinstance(out, np.ndarray) and out.ndim == 4 and out.shape[0] == n and out.shape[2:] == (h, w)
        if not ok:
            raise ModelFileError(expected_found(f"{self.model.name} output shape", f"({n}, C, {h}, {w})",
                                                tuple(getattr(out, "shape", ())),
                                                "unetpp runs segmentation models whose output has the input's size"))
        if self.output_channels is None:
            self.output_channels = int(out.shape[1])

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
                "model": str(self.model), "static_batch": self.static_batch,
                "preprocess_from": "model metadata" if (self.metadata or {}).get("preprocess") else "defaults",
                **({"size_step": self.size_step} if self.size_step else {}),
                **({"selection": self.selection} if self.selection else {})}
