"""ONNX Runtime backend: one InferenceSession, CPU by default, CUDA when the installed build has it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.errors import InputError, ModelFileError, RuntimeUnavailable, expected_found
from unetpp.model.metadata import free_size_spec, from_props
from unetpp.runtimes.base import Runtime

GRAPH_OPTIMIZATION = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                      "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def describe_file(path: Path) -> str:
    """What a file looks like, for error messages about the wrong kind of model file."""
    if not path.exists():
        return f"nothing at {path}"
    if path.is_dir():
        return f"a folder at {path}"
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(16)
    if size == 0:
        kind = "an empty file"
    elif head.startswith(b"PK\x03\x04"):
        kind = "a zip archive (a PyTorch checkpoint? use --backend torch)"
    elif path.suffix.lower() == ".onnx" and head[:1] == b"\x08":
        kind = "a file that starts like an ONNX protobuf but cannot be parsed (truncated or corrupt?)"
    elif head.startswith(b"\x80"):
        kind = "a Python pickle (a PyTorch checkpoint? use --backend torch)"
    elif head.lstrip().startswith(b"<"):
        kind = "an XML/HTML text file (an OpenVINO IR? use --backend openvino)"
    elif all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        kind = "a text file"
    else:
        kind = f"binary data starting with {head[:8].hex()}"
    return f"{kind} of {size} bytes at {path}"


class OrtRuntime(Runtime):
    """Options: threads (intra-op, default all cores), providers ("cpu" | "cuda" | a list), graph_optimization.

    Thread-safe: one InferenceSession, whose run() ONNX Runtime allows from several threads at once."""

    name = "onnxruntime"
    suffixes = (".onnx",)
    OPTIONS = ("threads", "providers", "graph_optimization")
    flags = {"threads": "threads", "device": "providers", "dtype": None}

    @classmethod
    def convert_flag(cls, flag: str, value: Any) -> Any:
        return str(value).lower() if flag == "device" else value

    def _activate(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeUnavailable("backend 'onnxruntime' needs onnxruntime: pip install onnxruntime") from None
        path = self._onnx_path()
        if not path.is_file():
            raise ModelFileError(expected_found("ONNX model", "an .onnx file", describe_file(path)))
        opts = ort.SessionOptions()
        threads = int(self.options.get("threads") or os.cpu_count() or 1)
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        level = str(self.options.get("graph_optimization", "all"))
        if level not in GRAPH_OPTIMIZATION:
            raise InputError(expected_found("graph_optimization", " | ".join(GRAPH_OPTIMIZATION), repr(level)))
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION[level])
        providers = self._providers(ort.get_available_providers())
        try:
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types for unreadable models
            first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise ModelFileError(
                expected_found("ONNX model", "a valid ONNX file", describe_file(path), f"onnxruntime: {first}")
            ) from None
        inputs, outputs = sess.get_inputs(), sess.get_outputs()
        if len(inputs) != 1:
            raise ModelFileError(expected_found(f"{self.model} inputs", "exactly one", [i.name for i in inputs]))
        shape = list(inputs[0].shape)
        if len(shape) != 4:
            raise ModelFileError(expected_found(f"{self.model} input rank", "4 (N, C, H, W)", shape))
        self.metadata = from_props(sess.get_modelmeta().custom_metadata_map)
        if not all(isinstance(d, int) for d in shape[1:]):
            shape = self._free_size(shape)
        if not all(isinstance(d, int) for d in shape[1:]):
            raise ModelFileError(expected_found(f"{self.model} input", "(N, C, H, W) with fixed C, H, W", shape))
        self.input_shape = tuple(shape[1:])
        self.static_batch = shape[0] if isinstance(shape[0], int) else None
        self.input_name, self.output_name = inputs[0].name, outputs[-1].name
        out_shape = list(outputs[-1].shape)
        self._check_output_spec(out_shape)
        self.output_channels = out_shape[1] if isinstance(out_shape[1], int) else None
        if isinstance(inputs[0].type, str) and inputs[0].type != "tensor(float)":
            raise ModelFileError(expected_found(f"{self.model} input type", "tensor(float)", inputs[0].type))
        out_type = outputs[-1].type
        if isinstance(out_type, str) and out_type not in ("tensor(float)", "tensor(float16)", "tensor(double)"):
            raise ModelFileError(expected_found(f"{self.model} output type", "floating-point logits (tensor(float))",
                                                out_type))
        self.active_providers = sess.get_providers()
        self._session = sess

    def _onnx_path(self) -> Path:
        """The ONNX file to open (a subclass may open one it extracted from a package)."""
        return self.model

    def _free_size(self, shape: list) -> list:
        """An input whose height/width are free: runs at any multiple of the step its metadata declares (a unetpp
        export with dynamic H/W), nominally at its preprocessing size; a subclass may choose one size instead."""
        step, nominal = free_size_spec(self.metadata)
        if step and isinstance(shape[1], int):
            self.size_step = step
            return [shape[0], shape[1], nominal, nominal]
        return shape

    def _providers(self, available: list[str]) -> list[str]:
        wanted = self.options.get("providers", "cpu")
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        names = [PROVIDERS.get(str(w).lower(), str(w)) for w in wanted]
        for n in names:
            if n not in available:
                raise RuntimeUnavailable(
                    expected_found("onnxruntime execution provider", n, "only " + ", ".join(available)
                                   + f" in onnxruntime {self.version()}",
                                   "install onnxruntime-gpu for CUDA" if n == PROVIDERS["cuda"] else "")
                )
        if PROVIDERS["cpu"] not in names:
            names.append(PROVIDERS["cpu"])
        return names

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        out = self._session.run([self.output_name], {self.input_name: batch})[0]
        return np.asarray(out, dtype=np.float32)

    def _deactivate(self) -> None:
        self._session = None

    def version(self) -> str:
        try:
            import onnxruntime

            return onnxruntime.__version__
        except ImportError:
            return "not installed"

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["providers"] = getattr(self, "active_providers", None)
        return d
