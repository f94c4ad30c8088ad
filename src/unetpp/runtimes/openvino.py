"""OpenVINO backend: an ONNX file or an IR .xml, static or dynamic batch, CPU plugin options."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.errors import InputError, ModelFileError, RuntimeUnavailable, expected_found
from unetpp.model.metadata import METADATA_KEY, free_size_spec, from_props, read_onnx_metadata
from unetpp.runtimes.base import Runtime

HINTS = {"throughput": "THROUGHPUT", "latency": "LATENCY"}
PRECISIONS = {"f32": "f32", "fp32": "f32", "bf16": "bf16", "f16": "f16", "fp16": "f16"}
MODEL_SUFFIXES = (".onnx", ".xml")
VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")  # OpenVINO's devices made of others


class OpenVinoRuntime(Runtime):
    """Options: threads (INFERENCE_NUM_THREADS), streams (NUM_STREAMS), hint ("throughput" | "latency"),
    precision ("f32" default, so a bf16-capable CPU does not silently lower the precision; "bf16", "f16"),
    device (default "CPU"), requests (async requests in flight), denormals ("zero": flush denormals to zero).

    A model whose batch axis is dynamic is reshaped to each batch size that arrives and compiled once per size
    (static shapes run faster on the CPU plugin); a static model accepts only its own batch size. A model with
    free height/width (declared in its metadata) is compiled with dynamic H/W: one compiled model per batch size
    serves every image size (a static compile per size costs as much as the dynamic plugin's first call).

    Thread-safe: one infer request per call. Each call (infer, submit) takes an idle request of its batch size from
    a pool, or creates one, and gives it back when done; compiling a new batch size holds a lock. Several threads
    may run one runtime at once (each gets its own answer); only the timing attributes (last_call_ms ...) are
    shared, and say the last call that finished.
    """

    name = "openvino"
    suffixes = MODEL_SUFFIXES
    OPTIONS = ("threads", "streams", "hint", "precision", "device", "requests", "denormals")
    flags = {"threads": "threads", "device": "device", "dtype": None}

    @classmethod
    def convert_flag(cls, flag: str, value: Any) -> Any:
        return str(value).upper() if flag == "device" else value

    def __init__(self, model: str | Path, input_shape: tuple[int, int, int] = (3, 96, 96), **options: Any) -> None:
        super().__init__(model, input_shape, **options)
        requests = options.get("requests")
        if requests is not None and (not isinstance(requests, int) or requests < 1):
            raise InputError(expected_found("openvino requests", "an integer >= 1", repr(requests)))
        self.max_in_flight = int(requests or 1)
        hint = options.get("hint")
        if hint is not None and str(hint).lower() not in HINTS:
            raise InputError(expected_found("openvino hint", " or ".join(HINTS), repr(hint)))
        prec = str(options.get("precision", "f32")).lower()
        if prec not in PRECISIONS:
            raise InputError(expected_found("openvino precision", ", ".join(sorted(PRECISIONS)), repr(prec)))
        streams = options.get("streams")
        if streams is not None and not (isinstance(streams, int) and not isinstance(streams, bool) and streams >= 1
                                        or str(streams).upper() in ("AUTO", "NUMA")):
            raise InputError(expected_found("openvino streams", "an integer >= 1, AUTO or NUMA", repr(streams)))
        self._check_device(str(options.get("device", "CPU")))

    @staticmethod
    def _check_device(device: str) -> None:
        """A device OpenVINO does not find here (`--device cuda`, `device=GPU` without one) is refused on
        construction, before any work, not by the plugin at the first compile."""
        head, _, listed = device.upper().partition(":")  # AUTO:GPU,CPU names the devices it chooses from
        names = [n.lstrip("-").split("(")[0].split(".")[0] for n in listed.split(",") if n] if listed else [head]
        names = [n for n in names if n not in VIRTUAL_DEVICES and n != "CPU"]
        if not names:
            return
        try:
            import openvino as ov
        except ImportError:
            return  # activate() says what to install
        available = list(ov.Core().available_devices)
        missing = [n for n in names if n.split(".")[0] not in {d.split(".")[0] for d in available}]
        if missing:
            raise RuntimeUnavailable(expected_found("openvino device", " or ".join(available) + " (the devices "
                                                    "OpenVINO finds on this machine)", repr(device)))

    # -- lifecycle -----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        o = self.options
        cfg: dict[str, Any] = {"INFERENCE_PRECISION_HINT": PRECISIONS[str(o.get("precision", "f32")).lower()]}
        if o.get("threads"):
            cfg["INFERENCE_NUM_THREADS"] = int(o["threads"])
        if o.get("streams"):
            cfg["NUM_STREAMS"] = str(o["streams"])
        if o.get("hint"):
            cfg["PERFORMANCE_HINT"] = HINTS[str(o["hint"]).lower()]
        if str(o.get("denormals", "")).lower() in ("zero", "ftz", "1", "true"):
            # the guide's extra /255 makes activations tiny: flushing denormals to zero is much faster on some CPUs
            cfg["CPU_DENORMALS_OPTIMIZATION"] = True
        return cfg

    def _activate(self) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise RuntimeUnavailable("backend 'openvino' needs openvino: pip install 'unetpp[openvino]'") from None
        if self.model.suffix.lower() not in MODEL_SUFFIXES or not self.model.is_file():
            found = f"nothing at {self.model}" if not self.model.is_file() else f"a {self.model.suffix} file"
            raise ModelFileError(expected_found("openvino model", "an .onnx file or an IR .xml", found))
        self._ov = ov
        self._core = ov.Core()
        try:
            self._ov_model = self._core.read_model(str(self.model))
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses of its own
            raise ModelFileError(f"{self.model}: OpenVINO cannot read it ({str(exc).splitlines()[0][:300]})") from None
        if len(self._ov_model.inputs) != 1:
            raise ModelFileError(expected_found(f"{self.model} inputs", "one", len(self._ov_model.inputs)))
        pshape = self._ov_model.input(0).get_partial_shape()
        if pshape.rank.is_dynamic or pshape.rank.get_length() != 4:
            raise ModelFileError(expected_found(f"{self.model} input rank", 4, str(pshape)))
        self.static_batch = pshape[0].get_length() if pshape[0].is_static else None
        self.metadata = self._read_metadata()
        step, nominal = free_size_spec(self.metadata)
        if pshape[1].is_static and not (pshape[2].is_static and pshape[3].is_static) and step:
            # free height/width, as the file's metadata declares: one compiled model serves every size
            self.size_step = step
            self.input_shape = (pshape[1].get_length(), nominal, nominal)
        elif not all(d.is_static for d in list(pshape)[1:]):
            raise ModelFileError(expected_found(f"{self.model} input", "(N, C, H, W) with fixed C, H, W", str(pshape)))
        else:
            self.input_shape = tuple(pshape[i].get_length() for i in (1, 2, 3))
        oshape = self._ov_model.outputs[-1].get_partial_shape()
        if oshape.rank.is_static:
            self._check_output_spec([d.get_length() if d.is_static else None for d in list(oshape)])
        if oshape.rank.is_static and oshape.rank.get_length() == 4 and oshape[1].is_static:
            self.output_channels = oshape[1].get_length()
        self._compiled: dict[int, Any] = {}
        self._idle: dict[int, list[Any]] = {}  # batch size -> infer requests not in use (one request per call)
        self._lock = threading.Lock()  # guards compiling (a reshape changes the shared model) and the pools
        self._made: dict[int, int] = {}
        if self.static_batch is not None:
            self._compile(self.static_batch)

    def _read_metadata(self) -> dict[str, Any] | None:
        """An IR carries the document in rt_info (written by `unetpp compile`); an ONNX file in metadata_props."""
        if self.model.suffix.lower() == ".onnx":
            return read_onnx_metadata(self.model)
        try:
            if self._ov_model.has_rt_info([METADATA_KEY]):
                return from_props({METADATA_KEY: str(self._ov_model.get_rt_info([METADATA_KEY]).astype(str))})
        except Exception:  # noqa: BLE001 - an IR without the entry
            return None
        return None

    def _compile(self, batch: int) -> None:
        """Compile the model for a batch size, once, whichever thread asks first."""
        with self._lock:
            if batch not in self._compiled:
                self._compile_now(batch)

    def _compile_now(self, batch: int) -> None:
        if self.static_batch is None:
            shape = [batch, self.input_shape[0], -1, -1] if self.size_step else [batch, *self.input_shape]
            self._ov_model.reshape({self._ov_model.input(0).any_name: self._ov.PartialShape(shape)})
        device = str(self.options.get("device", "CPU"))
        try:
            compiled = self._core.compile_model(self._ov_model, device, self._config())
        except RuntimeError as exc:  # a device or option the plugin refuses: a message, not a traceback
            lines = [ln for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("Exception from")]
            raise RuntimeUnavailable(f"openvino cannot compile {self.model.name} for device {device!r}: "
                                     f"{(lines or [type(exc).__name__])[-1][:300]}") from None
        self._idle.setdefault(batch, []).append(compiled.create_infer_request())
        self._compiled[batch] = compiled
        if self.max_in_flight == 1 and not self.options.get("requests") and str(self.options.get("hint", "")).lower() \
                == "throughput":  # the plugin's own choice for its streams (benchmark_app's -nireq default)
            self.max_in_flight = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))

    # -- overlapped requests: the driver keeps up to max_in_flight batches running (OpenVINO streams) ----------
    def submit(self, batch: np.ndarray) -> Any:
        n = batch.shape[0]
        static = self.static_batch
        if static is not None and n > static:
            return ("done", self.infer_padded(batch))
        pad = 0 if static is None else static - n
        x = batch if not pad else np.concatenate([batch, np.repeat(batch[-1:], pad, axis=0)])
        key = x.shape[0]
        req = self._take_request(key)
        t0 = time.perf_counter()
        req.start_async({0: np.ascontiguousarray(x, dtype=np.float32)}, share_inputs=False)
        return ("async", (req, key, n, pad, t0, tuple(batch.shape[1:])))

    def collect(self, handle: Any) -> tuple[np.ndarray, int]:
        kind, payload = handle
        if kind == "done":
            return payload
        req, key, n, pad, t0, chw = payload
        req.wait()
        out = np.array(req.get_output_tensor(0).data, dtype=np.float32, copy=True)[:n]
        self.last_call_ms = self.last_compute_ms = (time.perf_counter() - t0) * 1000.0
        self._give_back(key, req)
        self._check_output(out, (n, *chw))
        return out, pad

    def _take_request(self, batch: int) -> Any:
        """An infer request of this batch size that no other call is using (created when all are busy)."""
        if batch not in self._compiled:
            self._compile(batch)
        with self._lock:
            idle = self._idle.setdefault(batch, [])
            if idle:
                return idle.pop()
        return self._compiled[batch].create_infer_request()

    def _give_back(self, batch: int, request: Any) -> None:
        with self._lock:
            self._idle.setdefault(batch, []).append(request)

    def _deactivate(self) -> None:
        self._idle = {}
        self._compiled = {}
        for attr in ("_ov_model", "_core", "_ov"):
            self.__dict__.pop(attr, None)

    # -- inference -------------------------------------------------------------------------------
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        req = self._take_request(n)
        try:
            req.infer({0: batch})
            return np.array(req.get_output_tensor(0).data, dtype=np.float32, copy=True)
        finally:
            self._give_back(n, req)

    def version(self) -> str:
        try:
            import openvino as ov
        except ImportError:
            return "not installed"
        return str(ov.get_version())

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if self.active:
            d["static_batch"] = self.static_batch
            d["ov_config"] = {k: str(v) for k, v in self._config().items()}
        return d
