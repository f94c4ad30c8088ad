"""Runtimes behind one contract; `get_runtime(name, model, **options)` builds one lazily."""

from unetpp.runtimes.base import Runtime, get_runtime, known_runtimes, register

# Backend modules import their heavy library only inside activate(), so registering costs nothing.
register("onnxruntime", "unetpp.runtimes.ort", "OrtRuntime", "onnxruntime")
register("openvino", "unetpp.runtimes.openvino", "OpenVinoRuntime", "openvino")
register("torch", "unetpp.runtimes.torch_eager", "TorchRuntime", "torch")

__all__ = ["Runtime", "get_runtime", "known_runtimes", "register"]
