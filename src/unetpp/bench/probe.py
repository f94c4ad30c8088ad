"""The machine's yardstick: GEMM GFLOP/s measured in the same run, on the configured threads.

CPU: fp32 with both torch (MKL/oneDNN) and numpy (its BLAS, often OpenBLAS), keeping the faster: on AMD CPUs the
two differ by up to 2x, and the peak is what the best library reaches. CUDA: torch at the cell's dtype.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

MODEL_GFLOP = 9.70  # per 96x96 image: 4.850 GMAC (REFERENCE.md)


def _best_gflops(step: Callable[[], None], flop: float, reps: int, min_seconds: float) -> float:
    step()  # warm-up
    best, start = 0.0, time.perf_counter()
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        best = max(best, flop * reps / (time.perf_counter() - t0) / 1e9)
        if time.perf_counter() - start >= min_seconds:
            return best


@contextlib.contextmanager
def _numpy_threads(threads: int) -> Iterator[bool]:
    """Limit numpy's BLAS to `threads`; yields False when that cannot be done (threadpoolctl missing)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield True


def _cpu(threads: int, n: int, min_seconds: float) -> dict[str, float]:
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    found: dict[str, float] = {}
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        found["torch"] = _best_gflops(lambda: torch.matmul(ta, tb), 2.0 * n**3, 2, min_seconds)
    finally:
        torch.set_num_threads(old)
    with _numpy_threads(threads) as limited:
        if limited or threads >= (os.cpu_count() or 1):
            found["numpy"] = _best_gflops(lambda: np.matmul(a, b), 2.0 * n**3, 2, min_seconds)
    return found


def _cuda(device: str, dtype: str, n: int, min_seconds: float) -> dict[str, float]:
    import torch

    dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    a = torch.randn(n, n, device=device).to(dt)
    b = torch.randn(n, n, device=device).to(dt)

    def step() -> None:
        for _ in range(20):
            torch.matmul(a, b)
        torch.cuda.synchronize(device)

    return {"torch": _best_gflops(step, 20 * 2.0 * n**3, 5, min_seconds)}


def gemm_gflops(device: str = "cpu", dtype: str = "fp32", threads: int | None = None, n: int | None = None,
                min_seconds: float = 0.5) -> dict[str, Any]:
    """Best GFLOP/s of an n x n matmul, and the images/s limit it implies at 9.70 GFLOP per image."""
    cuda = device.startswith("cuda")
    n = n or (8192 if cuda else 2048)
    threads = None if cuda else int(threads or os.cpu_count() or 1)
    by_lib = _cuda(device, dtype, n, min_seconds) if cuda else _cpu(threads, n, min_seconds)
    lib = max(by_lib, key=by_lib.__getitem__)
    if cuda:
        import torch

        name = torch.cuda.get_device_name(device)
    else:
        from unetpp.core.summary import machine_info

        name = machine_info()["cpu"]
    return {"device": device, "device_name": name, "dtype": dtype, "threads": threads, "n": n, "library": lib,
            "gflops_by_library": by_lib, "gflops": by_lib[lib], "images_per_s_limit": by_lib[lib] / MODEL_GFLOP,
            "model_gflop_per_image": MODEL_GFLOP}


def probe_key(backend: str, options: dict[str, Any]) -> tuple[str, str]:
    """Which yardstick a cell is measured against: CUDA at the cell's dtype for torch on a GPU, else CPU fp32."""
    device = str(options.get("device", "cpu")).lower()
    if backend == "torch" and device.startswith("cuda"):
        return device, str(options.get("dtype", "fp32")).lower()
    return "cpu", "fp32"
