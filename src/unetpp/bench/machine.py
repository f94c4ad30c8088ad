"""machine.json: where the numbers came from (CPU, cores, memory, GPU, package versions)."""

from __future__ import annotations

import contextlib
from importlib import metadata
from typing import Any

from unetpp.core.summary import machine_info

PACKAGES = ("unetpp", "numpy", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "openvino", "nncf")


def package_versions() -> dict[str, str]:
    found = {}
    for pkg in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[pkg] = metadata.version(pkg)
    return found


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _gpu() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # noqa: BLE001 - a broken CUDA install must not stop the sweep
        return None
    return None


def describe_machine() -> dict[str, Any]:
    return {**machine_info(), "memory_gib": _memory_gib(), "gpu": _gpu(), "versions": package_versions()}
