"""ONNX-side passes for `unetpp compile`: batch axis, opset, ONNX Runtime graph optimisation, QDQ int8."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.errors import InputError, ModelFileError, expected_found

ORT_LEVELS = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
QDQ_MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear (axis attribute)


def load_onnx(path: Path) -> Any:
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for a bad file
        raise ModelFileError(expected_found(f"model {path}", "a readable ONNX file", f"an error: {exc}")) from None


def opset_of(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def set_batch(model: Any, batch: int | None) -> Any:
    """Fix axis 0 of every graph input and output to `batch`, or make it the symbolic "batch" when None.

    Intermediate shape annotations are dropped (they may carry the old batch); runtimes infer them again.
    """
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if not dims:
            raise ModelFileError(expected_found(f"graph value {value.name}", "a tensor with a known rank", "no shape"))
        if batch is None:
            dims[0].dim_param = "batch"
        else:
            dims[0].dim_value = int(batch)
    del model.graph.value_info[:]
    return model


def ensure_opset(model: Any, minimum: int) -> Any:
    """Convert the default-domain opset up to `minimum` when it is lower (onnx.version_converter)."""
    import onnx
    from onnx import version_converter

    current = opset_of(model)
    if current >= minimum:
        return model
    try:
        converted = version_converter.convert_version(model, minimum)
        onnx.checker.check_model(converted)
    except Exception as exc:  # noqa: BLE001 - the converter raises plain RuntimeErrors
        raise ModelFileError(expected_found(f"conversion from opset {current}", f"an opset-{minimum} model",
                                            f"an error: {str(exc).splitlines()[0][:200]}",
                                            f"re-export with `unetpp export --opset {minimum}`")) from None
    return converted


def save_onnx(model: Any, path: Path) -> None:
    import onnx

    onnx.save(model, str(path))


def ort_optimize(src: Path, dst: Path, level: str = "extended") -> None:
    """Let ONNX Runtime fuse and fold the graph and save the result (the session's optimized_model_filepath).

    "extended" stays portable across CPUs; "all" adds layout transforms that tie the file to this machine's ISA.
    """
    import onnxruntime as ort

    if level not in ORT_LEVELS:
        raise InputError(expected_found("--ort-level", " | ".join(ORT_LEVELS), repr(level)))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, ORT_LEVELS[level])
    opts.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), sess_options=opts, providers=["CPUExecutionProvider"])
    if not dst.is_file():
        raise ModelFileError(expected_found("optimised model", f"a file at {dst}", "none written by onnxruntime"))


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol: one {input: (1, C, H, W)} dict per call, then None."""

    def __init__(self, input_name: str, samples: Sequence[np.ndarray]) -> None:
        self.input_name = input_name
        self.samples = list(samples)
        self.pos = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.pos >= len(self.samples):
            return None
        x = self.samples[self.pos][None].astype(np.float32)
        self.pos += 1
        return {self.input_name: x}

    def rewind(self) -> None:
        self.pos = 0


def ort_quantize_qdq(src: Path, dst: Path, samples: Sequence[np.ndarray], workdir: Path) -> dict[str, Any]:
    """Static QDQ int8: activations QUInt8, weights QInt8 per channel, MinMax calibration on `samples`.

    The model is first raised to opset 13 (per-channel QDQ) and pre-processed (quant_pre_process with
    skip_symbolic_shape=True: the symbolic shape pass fails on this graph).
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = load_onnx(src)
    source_opset = opset_of(model)
    model = set_batch(ensure_opset(model, QDQ_MIN_OPSET), None)
    input_name = model.graph.input[0].name
    raised = workdir / "fp32_opset.onnx"
    save_onnx(model, raised)
    pre = workdir / "fp32_pre.onnx"
    quant_pre_process(str(raised), str(pre), skip_symbolic_shape=True)

    class Reader(_Reader, CalibrationDataReader):
        pass

    quantize_static(str(pre), str(dst), Reader(input_name, samples), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    return {"method": "onnxruntime quantize_static", "format": "QDQ", "activations": "QUInt8",
            "weights": "QInt8 per channel", "calibration": "MinMax", "source_opset": source_opset,
            "opset": QDQ_MIN_OPSET if source_opset < QDQ_MIN_OPSET else source_opset}
