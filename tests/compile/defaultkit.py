"""Helpers of the default-runtime tests: subprocesses that run exactly what a user runs, on a given model cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def default_env(cache: Path, **extra: str) -> dict[str, str]:
    """A subprocess environment with this source tree, `cache` as the model cache and the default runtime on."""
    env = {k: v for k, v in os.environ.items() if k not in ("UNETPP_DEFAULT_RUNTIME", "UNETPP_NO_OPENVINO")}
    env.update(UNETPP_CACHE=str(cache), PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]), **extra)
    return env


def run_unetpp(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unetpp", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
