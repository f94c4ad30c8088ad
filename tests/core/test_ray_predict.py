"""The engine is generic: `unetpp predict --engine ray` runs the driver with predict's work on Ray
workers and writes the same files as the local run; a bad image fails alone (real DSB2018 images, real ONNX model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is not installed: pip install 'unetpp[ray]'")

from unetpp.cli.main import main  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.cluster]  # a local Ray: `make test-published`


def test_predict_engine_ray_matches_local(ray_session, synthetic_root: Path, onnx_model: Path,
                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in sorted(p.name for p in (synthetic_root / "stage1_train").iterdir())[:3]:
        shutil.copy(synthetic_root / "stage1_train" / i / "images" / f"{i}.png", folder / f"{i}.png")
    (folder / "not_an_image.png").write_text("hello\n")
    common = ["predict", str(folder), "--model", str(onnx_model), "--no-progress"]
    assert main([*common, "-o", str(tmp_path / "local"), "--threads", "2"]) == 1  # 1: one image failed
    capsys.readouterr()
    rc = main([*common, "-o", str(tmp_path / "ray"), "--engine", "ray", "--num-workers", "2", "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 1 and "not_an_image.png" in out

    names = sorted(p.name for p in (tmp_path / "local").iterdir() if p.name.endswith((".png", "_nuclei.csv")))
    assert len(names) == 3 * 3  # mask, labels, nuclei for each good image
    assert sorted(p.name for p in (tmp_path / "ray").iterdir() if p.name.endswith((".png", "_nuclei.csv"))) == names
    for n in names:
        assert (tmp_path / "ray" / n).read_bytes() == (tmp_path / "local" / n).read_bytes(), n
    s = json.loads((tmp_path / "ray" / "predict_summary.json").read_text())
    assert s["n_predicted"] == 3 and s["n_failed"] == 1 and "not_an_image.png" in s["failures"][0]["image"]
    local = json.loads((tmp_path / "local" / "predict_summary.json").read_text())
    assert [r["nuclei"] for r in s["images"]] == [r["nuclei"] for r in local["images"]]
    # the same summary plus the engine, the cluster and per-worker figures
    assert (local["engine"], s["engine"]) == ("local", "ray") and s["ray"]["num_workers"] == 2
    assert s["cluster"]["cpus"] >= 2 and sum(w["n_images"] for w in s["workers"]) == 3
