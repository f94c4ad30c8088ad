"""The fault corpus kit: tiny inputs, broken models, a CLI runner that checks for tracebacks, a tmpfs (fixtures
are re-exported by conftest.py; helpers are imported by the test modules)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
N_BINS = 3


@pytest.fixture(scope="session")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three preprocessed 3x96x96 float32 inputs, a.bin b.bin c.bin."""
    from unetpp.model.export import synthetic_nuclei

    folder = tmp_path_factory.mktemp("bins")
    for name, x in zip("abc", synthetic_nuclei(N_BINS, seed=3), strict=True):
        (folder / f"{name}.bin").write_bytes(x.astype("<f4").tobytes())
    return folder


def write_png(path: Path, h: int = 40, w: int = 56, seed: int = 0) -> Path:
    import cv2

    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 20, np.uint8)
    for _ in range(4):
        y, x = int(rng.integers(6, h - 6)), int(rng.integers(6, w - 6))
        cv2.circle(img, (x, y), 4, (200, 180, 190), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    """A folder of two small PNG images."""
    folder = tmp_path / "imgs"
    write_png(folder / "one.png", seed=1)
    write_png(folder / "two.png", 48, 40, seed=2)
    return folder


def tiny_onnx(path: Path, op: str, in_shape: list, out_shape: list, out_type: int | None = None,
              **attrs: object) -> Path:
    """A one-node ONNX model x -> y (an `op` such as AveragePool, Identity, Cast)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)
    y = helper.make_tensor_value_info("y", out_type or TensorProto.FLOAT, out_shape)
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], op.lower(), [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def half_size_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ONNX model whose output is N x 3 x 48 x 48 for an N x 3 x 96 x 96 input (a 2x2 average pool)."""
    return tiny_onnx(tmp_path_factory.mktemp("half") / "half.onnx", "AveragePool", ["N", 3, 96, 96],
                     ["N", 3, 48, 48], kernel_shape=[2, 2], strides=[2, 2])


class Result:
    def __init__(self, rc: int, out: str, err: str) -> None:
        self.rc, self.out, self.err = rc, out, err

    def says(self, *parts: str) -> bool:
        text = self.out + self.err
        return all(p in text for p in parts)


@pytest.fixture()
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `unetpp ARGV` in-process; never a traceback; returns the exit code and both streams."""
    from unetpp.cli.main import main

    def run(*argv: object) -> Result:
        capsys.readouterr()
        rc = main([str(a) for a in argv])
        got = capsys.readouterr()
        assert "Traceback" not in got.err + got.out, got.err
        return Result(rc, got.out, got.err)

    return run


def unetpp_cmd(*argv: object) -> list[str]:
    return [sys.executable, "-m", "unetpp", *[str(a) for a in argv]]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_sub(*argv: object, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(unetpp_cmd(*argv), capture_output=True, text=True, env=subprocess_env(), timeout=timeout)


def kill_midway_then_rerun(argv: list[object], run_folder: Path, completed: Callable[[Path], list[Path]],
                           min_done: int = 2) -> tuple[subprocess.CompletedProcess, dict[Path, tuple[bytes, int]]]:
    """Start `unetpp ARGV`, SIGKILL it at a random moment once `completed(run_folder)` lists at least `min_done`
    finished outputs and while it is still working, then run it again to the end. Returns the rerun and the
    outputs that were finished at the kill ({path: (bytes, inode)}), which the rerun must keep as they were.
    Fails the test if the run ended before the kill could land (the drill would prove nothing)."""
    p = subprocess.Popen(unetpp_cmd(*argv), env=subprocess_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while p.poll() is None and time.monotonic() < deadline:
        if run_folder.is_dir() and len(completed(run_folder)) >= min_done:
            break
        time.sleep(0.01)
    time.sleep(random.Random(os.getpid()).uniform(0.0, 0.15))  # a random point of the work that remains
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    if p.returncode != -signal.SIGKILL:
        pytest.fail(f"the run ended (exit {p.returncode}) before the kill landed: give it more work")
    done = {f: (f.read_bytes(), f.stat().st_ino) for f in completed(run_folder)}
    if len(done) < min_done:
        pytest.fail(f"only {len(done)} output(s) finished before the kill: the drill needs {min_done}")
    return run_sub(*argv), done


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 200 KiB tmpfs (disk full after a few outputs); skipped where it cannot be mounted (not root, no mount)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)], capture_output=True,
                           text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10)


def listing(folder: Path) -> list[str]:
    """Every file under a folder, relative, sorted (temporary files would show up here)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
