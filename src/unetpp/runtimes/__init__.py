"""Runtimes behind one contract; `get_runtime(name, model, **options)` builds one lazily, `open_runtime` picks one
for a model file and the common flags."""

from unetpp.runtimes.base import Runtime
from unetpp.runtimes.open import open_runtime, resolve_model
from unetpp.runtimes.registry import backend_for, get_runtime, known_runtimes, register, runtime_class, unregister

# Backend modules import their heavy library only inside activate(), so registering (and reading a class's facts)
# costs nothing. Registration order decides which runtime claims a suffix first.
register("onnxruntime", "unetpp.runtimes.ort", "OrtRuntime", "onnxruntime")
register("openvino", "unetpp.runtimes.openvino", "OpenVinoRuntime", "openvino")
register("torch", "unetpp.runtimes.torch_eager", "TorchRuntime", "torch")
register("bioimageio", "unetpp.runtimes.bioimageio", "BioimageioRuntime", "onnxruntime")

__all__ = ["Runtime", "backend_for", "get_runtime", "known_runtimes", "open_runtime", "register", "resolve_model",
           "runtime_class", "unregister"]
