"""Fault corpus, `unetpp bench`: exit code, expected/found message, no traceback, the state of the run folder.
The GEMM yardstick is stubbed (it measures for seconds); cells are measured for real, briefly."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from faultkit import listing

from unetpp.core.runfolder import LOCK, MANIFEST

QUICK = ["--batch-sizes", "1", "--min-seconds", "0", "--min-iters", "1", "--warmup", "0", "--threads", "2"]


@pytest.fixture(autouse=True)
def _no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(device: str = "cpu", dtype: str = "fp32", **kw: object) -> dict:
        return {"device": device, "device_name": "stub", "dtype": dtype, "threads": 2, "n": 64, "library": "stub",
                "gflops_by_library": {"stub": 100.0}, "gflops": 100.0, "images_per_s_limit": 10.0,
                "model_gflop_per_image": 9.7}

    monkeypatch.setattr("unetpp.bench.sweep.gemm_gflops", fake)


@pytest.fixture()
def inp(bins: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bins, tmp_path / "in"))


def _bench(cli, model: Path, inp: Path, out: Path, *extra: object):
    return cli("bench", "--inputs", inp, "--model", model, "-o", out, *QUICK, *extra)


@pytest.mark.parametrize("case", ["no_inputs", "batch_sizes_zero", "batch_sizes_text", "unknown_backend",
                                  "out_in_proc", "out_is_inputs", "out_inside_inputs", "wrong_size_input",
                                  "masks_missing", "malformed_spec", "duplicate_labels", "repeats_zero"])
def test_bench_refused(case: str, cli, inp: Path, onnx_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    argv: list[object] = ["bench", "--inputs", inp, "--model", onnx_model, "-o", out]
    tail: list[object] = ["--min-seconds", "0", "--min-iters", "1"]
    if case == "no_inputs":
        argv, says = ["bench", "--model", onnx_model, "-o", out], ("--inputs", "none given")
    elif case == "batch_sizes_zero":
        tail, says = ["--batch-sizes", "0,4"], ("--batch-sizes", "expected positive integers")
    elif case == "batch_sizes_text":
        tail, says = ["--batch-sizes", "one"], ("expected comma-separated integers",)
    elif case == "unknown_backend":
        tail, says = ["--backends", "tensorrt"], ("tensorrt",)
    elif case == "out_in_proc":
        argv[-1], says = "/proc/unetpp_b", ("/proc/unetpp_b",)
    elif case == "out_is_inputs":
        argv[-1], says = inp, ("the input folder itself",)
    elif case == "out_inside_inputs":
        argv[-1], says = inp / "b", ("inside the input folder",)
    elif case == "wrong_size_input":
        (inp / "short.bin").write_bytes(b"\0" * 64)
        says = ("short.bin", "found 64 bytes")
    elif case == "masks_missing":
        tail, says = ["--masks", tmp_path / "nope"], ("--masks", "nothing at")
    elif case == "malformed_spec":
        tail, says = ["--backends", "onnxruntime:threads"], ("expected key=value",)
    elif case == "duplicate_labels":
        tail, says = ["--backends", "onnxruntime", "onnxruntime"], ("expected unique labels",)
    else:
        tail, says = ["--repeats", "0"], ("expected an integer >= 1",)
    before = listing(tmp_path)
    r = cli(*argv, *tail)
    assert r.rc == 2 and "expected" in r.err and r.says(*says), r.err
    assert listing(tmp_path) == before


@pytest.mark.slow
def test_bench_run_folder_rules(cli, inp: Path, onnx_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert _bench(cli, onnx_model, inp, out).rc == 0
    m = json.loads((out / MANIFEST).read_text())
    assert m["state"] == "complete" and m["counts"] == {"cells": 1, "failed": 0}
    assert _bench(cli, onnx_model, inp, out).rc == 0  # same settings: measured again into the same folder
    r = _bench(cli, onnx_model, inp, out, "--repeats", "2")
    assert r.rc == 2 and r.says("different repeats", "--overwrite"), r.err
    r = _bench(cli, onnx_model, inp, out, "--repeats", "2", "--overwrite")
    assert r.rc == 0 and json.loads((out / MANIFEST).read_text())["settings"]["repeats"] == 2, r.err
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_failing_cell_is_listed_and_exits_1(cli, inp: Path, onnx_model: Path, half_size_onnx: Path,
                                            tmp_path: Path) -> None:
    out = tmp_path / "b"
    r = _bench(cli, onnx_model, inp, out, "--backends", "onnxruntime", f"onnxruntime:model={half_size_onnx},label=half")
    assert r.rc == 1 and r.says("1 cell(s) failed", "half bs 1", "expected (N, C, 96, 96)"), r.err
    assert json.loads((out / MANIFEST).read_text())["state"] == "partial"
    assert {"cells/onnxruntime_bs1.json", "cells/half_bs1.json", "results.md"} <= set(listing(out))


def test_live_lock(cli, inp: Path, onnx_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    out.mkdir()
    (out / LOCK).write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "started": "now"}))
    r = _bench(cli, onnx_model, inp, out)
    assert r.rc == 2 and r.says("a run in progress"), r.err
    assert listing(out) == [LOCK]


def test_report_only_from_nothing(cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = cli("bench", "--report-only", "--from", tmp_path / "empty", "-o", tmp_path / "rep")
    assert r.rc == 2 and "expected" in r.err, r.err
