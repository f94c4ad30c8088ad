"""Running zoo packages through unetpp: `unetpp predict --model PACKAGE.zip` (our own exported package: the same
outputs as the native path) and `unetpp bench` on a package; a bad package is refused with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from unetpp.cli.main import main


def _discs(path: Path) -> Path:
    img = np.full((200, 260, 3), 8, np.uint8)
    for cy, cx, r in ((50, 60, 12), (120, 180, 15), (150, 70, 10)):
        cv2.circle(img, (cx, cy), r, (200, 180, 160), -1)
    cv2.imwrite(str(path), img)
    return path


def test_round_trip_through_predict_equals_the_native_path(shipped_package: Path, tmp_path: Path) -> None:
    img = _discs(tmp_path / "discs.png")
    for name, model in (("native", ["--model", "guide"]), ("package", ["--model", str(shipped_package)])):
        assert main(["predict", str(img), "-o", str(tmp_path / name), "--mode", "tile", "--save-prob",
                     "--no-progress", *model]) == 0
    a = cv2.imread(str(tmp_path / "native" / "discs_prob.png"), cv2.IMREAD_UNCHANGED).astype(np.float64) / 65535
    b = cv2.imread(str(tmp_path / "package" / "discs_prob.png"), cv2.IMREAD_UNCHANGED).astype(np.float64) / 65535
    assert np.abs(a - b).max() <= 1e-4 + 1 / 65535  # within 1e-4 (and the uint16 PNG's own step)
    for suffix in ("_labels.png", "_mask.png", "_nuclei.csv"):
        assert (tmp_path / "native" / f"discs{suffix}").read_bytes() == (tmp_path / "package" /
                                                                          f"discs{suffix}").read_bytes()
    summary = json.loads((tmp_path / "package" / "predict_summary.json").read_text())
    assert summary["settings"]["runtime"]["backend"] == "bioimageio" and summary["nuclei_total"] == 3


def test_bench_runs_a_package(shipped_package: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        (rng.standard_normal((3, 96, 96)).astype("<f4") * np.float32(0.01)).tofile(inputs / f"s{i}.bin")
    rc = main(["bench", "--backends", f"bioimageio:model={shipped_package}", "--batch-sizes", "2", "--inputs",
               str(inputs), "--min-seconds", "0", "--min-iters", "2", "--warmup", "0", "--out", str(tmp_path / "b")])
    assert rc == 0
    cell = json.loads(next((tmp_path / "b" / "cells").glob("*.json")).read_text())
    assert cell["status"] == "ok" and cell["throughput_compute"] > 0


def test_a_package_with_a_wrong_hash_is_refused(shipped_package: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import zipfile

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(shipped_package) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "weights.onnx":
                data = data[:-16] + b"\0" * 16
            dst.writestr(info, data)
    rc = main(["predict", str(_discs(tmp_path / "x.png")), "-o", str(tmp_path / "o"), "--model", str(bad),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "sha-256: expected" in err.lower() and "Traceback" not in err


def test_the_instance_model_travels_with_its_protocol(instance_package: Path, tmp_path: Path,
                                                     instance_size: int) -> None:
    """`export instance --format bioimageio`: the package declares both outputs and carries the scale rule, so
    `predict --model PKG` runs the instance protocol (tile at nuclei@150, seeds + watershed) with the native
    path's labels. The package's ONNX takes the model's own size only (its training crop), so it runs in windows
    of that size: the native path with `--window <that size>` (its default runs the whole image through its
    free-size export)."""
    pkg = instance_package
    img = _discs(tmp_path / "discs.png")
    for name, model in (("native", ["--window", str(instance_size)]), ("package", ["--model", str(pkg)])):
        assert main(["predict", str(img), "-o", str(tmp_path / name), "--no-progress", *model]) == 0
    assert (tmp_path / "native" / "discs_labels.png").read_bytes() == \
        (tmp_path / "package" / "discs_labels.png").read_bytes()
    image = json.loads((tmp_path / "package" / "predict_summary.json").read_text())["images"][0]
    assert image["mode"] == "tile" and image["scale_rule"] == "nuclei@150" and image["nuclei"] == 3
