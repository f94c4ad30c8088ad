"""`unetpp bench`: a tiny sweep writes cells/CSV/MD/PNG, failing cells are recorded, the report stands alone."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from unetpp.bench import parse_spec, parse_specs, write_report
from unetpp.bench.probe import MODEL_GFLOP, gemm_gflops
from unetpp.cli.main import main
from unetpp.data.preprocess import read_gray
from unetpp.errors import InputError


def test_spec_parsing() -> None:
    s = parse_spec("torch:device=cuda,dtype=fp16,cuda_graphs=1,threads=4")
    assert (s.backend, s.label, s.model) == ("torch", "torch:device=cuda,dtype=fp16,cuda_graphs=1,threads=4", None)
    assert s.options == {"device": "cuda", "dtype": "fp16", "cuda_graphs": True, "threads": 4}
    q = parse_spec("onnxruntime:int8=q.onnx")
    assert (q.label, q.model, q.options) == ("onnxruntime-int8", "q.onnx", {})
    assert parse_spec("openvino:model=m.xml,label=ov,hint=latency").label == "ov"
    with pytest.raises(InputError, match="key=value"):
        parse_spec("onnxruntime:threads")
    with pytest.raises(InputError, match="unique labels"):
        parse_specs(["onnxruntime", "onnxruntime"])


def test_probe_reports_a_limit() -> None:
    p = gemm_gflops(threads=1, n=128, min_seconds=0.05)
    assert p["gflops"] > 0 and p["threads"] == 1
    assert p["images_per_s_limit"] == pytest.approx(p["gflops"] / MODEL_GFLOP)


def test_tiny_sweep_end_to_end(bench_setup: dict, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cuda = torch.cuda.is_available()  # the cuda cells run on a GPU machine and fail (listed) elsewhere
    rc = main(["bench", "--backends", "onnxruntime:threads=1,label=ort", "torch:device=cuda",
               f"onnxruntime:model={tmp_path / 'gone.onnx'},label=broken",
               "--batch-sizes", "1,2", "--inputs", str(bench_setup["inputs"]), "--masks", str(bench_setup["masks"]),
               "--model", str(bench_setup["onnx"]), "--checkpoint", str(bench_setup["checkpoint"]),
               "--min-seconds", "0", "--min-iters", "2", "--warmup", "1", "--threads", "1", "--repeats", "3",
               "--out", str(out)])
    assert rc == 1  # the broken cells failed on every machine (listed), the others completed
    cells = {p.name: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    assert sorted(cells) == ["broken_bs1.json", "broken_bs2.json", "ort_bs1.json", "ort_bs2.json",
                             "torch_device_cuda_bs1.json", "torch_device_cuda_bs2.json"]
    assert "gone.onnx" in cells["broken_bs1.json"]["error"]
    cuda_status = "ok" if cuda else "error"
    assert cells["torch_device_cuda_bs1.json"]["status"] == cuda_status
    if not cuda:
        assert "cuda" in cells["torch_device_cuda_bs1.json"]["error"].lower()
    # the guide IoU of the cell's outputs, computed here by hand from the PyTorch reference's logits
    gts = [read_gray(bench_setup["masks"] / f"{i}.png") > 127 for i in bench_setup["ids"]]
    expected = np.mean([(np.count_nonzero((lg > 0.5) & g) + 1e-5) / (np.count_nonzero((lg > 0.5) | g) + 1e-5)
                        for lg, g in zip(bench_setup["logits"], gts)])
    for bs in (1, 2):
        c = cells[f"ort_bs{bs}.json"]
        assert c["status"] == "ok" and c["batch_size"] == bs and c["iters"] >= 2 and c["warmup_iters"] == 1
        assert c["throughput_compute"] == pytest.approx(1000 * bs / c["latency_ms"]["mean"])
        assert c["images"] % 3 == 0 and c["throughput_end_to_end"] > 0
        assert c["latency_ms"]["min"] <= c["latency_ms"]["median"] <= c["latency_ms"]["p90"] <= c["latency_ms"]["max"]
        assert c["share_of_peak"] == pytest.approx(c["throughput_compute"] / c["peak"]["images_per_s_limit"])
        assert c["n_scored"] == 3 and c["iou_guide"] == pytest.approx(expected, abs=1e-3)
        # three rounds, the cell is the median one; end to end is the median over rounds
        rounds = c["rounds"]
        assert [r["round"] for r in rounds] == [0, 1, 2] and c["repeats"] == 3
        assert c["throughput_compute"] == sorted(r["throughput_compute"] for r in rounds)[1]
        assert c["throughput_end_to_end"] == pytest.approx(sorted(r["throughput_end_to_end"] for r in rounds)[1])
        assert c["peak"]["gflops"] == max(c["peak"]["samples_gflops"]) and len(c["peak"]["samples_gflops"]) == 4
    assert [r["status"] for r in cells["torch_device_cuda_bs1.json"]["rounds"]] == [cuda_status] * 3
    assert [r["status"] for r in cells["broken_bs2.json"]["rounds"]] == ["error"] * 3

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["label"], r["batch_size"], r["status"]) for r in rows] == [
        ("ort", "1", "ok"), ("ort", "2", "ok"), ("torch:device=cuda", "1", cuda_status),
        ("torch:device=cuda", "2", cuda_status), ("broken", "1", "error"), ("broken", "2", "error")]
    md = (out / "results.md").read_text()
    assert "| batch | ort | torch:device=cuda | broken | 310 | 310P3 | T4 |" in md
    assert "| 1 | " in md and "| 2 | " in md and "## Failed cells" in md
    assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    machine = json.loads((out / "machine.json").read_text())
    assert {"cpu", "cores", "memory_gib", "gpu", "versions", "probes"} <= set(machine)

    # re-reporting from the cells alone, merged with itself, keeps both runs apart
    merged = tmp_path / "merged"
    write_report([out, out / "cells"], merged)
    assert "ort@run" in (merged / "results.md").read_text()


def test_unknown_backend_is_refused_before_any_work(bench_setup: dict, tmp_path: Path, capsys) -> None:
    rc = main(["bench", "--backends", "onnxruntime", "banana", "--inputs", str(bench_setup["inputs"]),
               "--out", str(tmp_path / "run")])
    assert rc == 2 and "found 'banana'" in capsys.readouterr().err and not (tmp_path / "run").exists()


def _cell(label: str, backend: str, bs: int, tput: float, order: int, **extra: object) -> dict:
    return {"label": label, "backend": backend, "batch_size": bs, "order": order, "status": "ok",
            "options": {}, "throughput_compute": tput, "throughput_end_to_end": tput / 2,
            "latency_ms": {"mean": 1000 * bs / tput, "median": 1.0, "p90": 1.0, "p99": 1.0},
            "share_of_peak": 0.5, "iou_guide": None, **extra}


def test_report_ratios_from_cell_jsons_only(tmp_path: Path) -> None:
    cells = tmp_path / "cells"
    cells.mkdir()
    for c in (_cell("eager", "torch", 1, 10.0, 0), _cell("eager", "torch", 4, 8.0, 0),
              _cell("ort", "onnxruntime", 1, 20.0, 1), _cell("ort", "onnxruntime", 4, 40.0, 1)):
        (cells / f"{c['label']}_{c['batch_size']}.json").write_text(json.dumps(c))
    write_report([tmp_path], tmp_path)
    md = (tmp_path / "results.md").read_text()
    assert "| batch | eager | ort | ort / eager | 310 | 310P3 | T4 |" in md
    assert "| 1 | 10.0 | 20.0 | 2 | 1675 | 1682 | 321 |" in md
    assert "| 4 | 8.0 | 40.0 | 5 | 1868 | 2496 | 401 |" in md
    # 20 / 1675, 20 / 1682, 20 / 321 for ort at batch 1
    assert "| 1 | 0.00597 | 0.00595 | 0.0312 | 0.0119 | 0.0119 | 0.0623 |" in md
