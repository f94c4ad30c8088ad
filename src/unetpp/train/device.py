"""Which device a training run uses, and how cuDNN is set for it (shared by both training loops)."""

from __future__ import annotations

import os

import torch

from unetpp.errors import RuntimeUnavailable, expected_found


def resolve_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeUnavailable(expected_found("device cuda", "a CUDA-capable PyTorch and GPU",
                                                f"torch {torch.__version__} without CUDA", "Use --device cpu."))
    if dev.type not in ("cpu", "cuda"):
        raise RuntimeUnavailable(expected_found("device", "cpu or cuda", repr(str(device))))
    return dev


def set_cuda_determinism(deterministic: bool) -> None:
    """Fast (cudnn.benchmark) or reproducible (deterministic kernels, fixed cuBLAS workspace) CUDA training."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = True
