"""Name -> runtime class, lazily imported; the one factory, and the choice of a runtime for a model file.

Adding a runtime is one module (a Runtime subclass stating its facts) and one `register(...)` line; every command
(infer, predict, bench, compile's guard) finds it here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from unetpp.errors import InputError, RuntimeUnavailable, expected_found
from unetpp.runtimes.base import Runtime

# name -> (module, class name, pip extra that provides it) or the class itself
_REGISTRY: dict[str, tuple[str, str, str] | type[Runtime]] = {}


def register(name_or_cls: str | type[Runtime], module: str = "", cls: str = "", extra: str = "") -> None:
    """`register(MyRuntime)` for a class at hand, or `register(name, module, class, extra)` to import it lazily."""
    if isinstance(name_or_cls, type):
        _REGISTRY[name_or_cls.name] = name_or_cls
    else:
        _REGISTRY[name_or_cls] = (module, cls, extra)


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def known_runtimes() -> list[str]:
    """Registered names, in registration order (the order in which suffixes are claimed)."""
    return list(_REGISTRY)


def runtime_class(name: str) -> type[Runtime]:
    """The class for `name`; an unknown name lists the known ones; a missing package names the extra to install."""
    if name not in _REGISTRY:
        raise InputError(expected_found("backend", "one of " + ", ".join(known_runtimes()), repr(name)))
    entry = _REGISTRY[name]
    if isinstance(entry, type):
        return entry
    module, cls, extra = entry
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeUnavailable(
            f"backend {name!r} needs {exc.name or 'a package'} which is not installed: pip install 'unetpp[{extra}]'"
        ) from None
    return getattr(mod, cls)


def get_runtime(name: str, model: str | Path, **options: Any) -> Runtime:
    """The one factory: options are checked against the runtime's own list."""
    return runtime_class(name)(model, **options)


def backend_for(model: str | Path) -> str:
    """The first registered runtime that opens this kind of file (.onnx -> onnxruntime, .xml -> openvino ...)."""
    suffix = Path(model).suffix.lower()
    claimed = []
    for name in known_runtimes():
        try:
            sufs = runtime_class(name).suffixes
        except RuntimeUnavailable:
            continue
        claimed += [s for s in sufs if s not in claimed]
        if suffix in sufs:
            return name
    raise InputError(expected_found(f"model {model}", "a file ending in " + ", ".join(claimed) + " (or --backend)",
                                    f"suffix {suffix!r}" if suffix else "no suffix"))
