"""run_inference / `unetpp infer`: outputs, summary, padding, resume, pure inference, and clean failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unetpp.cli.main import main
from unetpp.core.runfolder import MANIFEST
from unetpp.infer.run import run_inference
from unetpp.model.export import synthetic_nuclei

N_INPUTS, BATCH = 134, 16  # the guide's val set size and batch size: 8 full batches + 6 (padded with 10)
OUT_BYTES = 4 * 96 * 96  # one 1x96x96 float32 map: 36,864 bytes (REFERENCE.md)
BATCH_INVARIANCE_ATOL = 1e-5  # the same network on the same image; only the batch size differs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """134 nuclei-like inputs, written in an unsorted order."""
    folder = tmp_path_factory.mktemp("prep_dataset")
    x = synthetic_nuclei(N_INPUTS, seed=11)
    for i in np.random.default_rng(0).permutation(N_INPUTS):
        x[i].astype("<f4").tofile(folder / f"img{i:03d}.bin")
    return folder


@pytest.fixture(scope="module")
def bs16_run(onnx_model: Path, inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("results")
    return run_inference(onnx_model, [inputs], out, output_dirname="bs16", batch_size=BATCH,
                         backend_options={"threads": 2}, progress=False)


def test_every_input_gets_one_output_and_no_padding_is_written(bs16_run: dict, inputs: Path) -> None:
    out_dir = Path(bs16_run["output_dir"])
    assert out_dir.name == "bs16"
    names = sorted(p.name for p in out_dir.iterdir() if p.name != MANIFEST)
    assert names == [f"img{i:03d}_0.bin" for i in range(N_INPUTS)]
    assert json.loads((out_dir / MANIFEST).read_text())["state"] == "complete"
    assert all((out_dir / n).stat().st_size == OUT_BYTES for n in names)
    assert bs16_run["n_inputs"] == bs16_run["n_outputs"] == N_INPUTS
    assert bs16_run["n_padded"] == 0  # a dynamic-batch model runs the short last batch as it is


def test_summary_json(bs16_run: dict, inputs: Path, onnx_model: Path) -> None:
    path = Path(bs16_run["summary_path"])
    assert path.name == "bs16_summary.json" and path.parent == Path(bs16_run["output_dir"]).parent
    s = json.loads(path.read_text())
    assert set(s["filesinfo"]) == {str(i) for i in range(N_INPUTS)}
    assert s["filesinfo"]["0"]["infiles"] == [str(inputs / "img000.bin")]
    assert s["filesinfo"]["133"]["outfiles"] == [str(Path(bs16_run["output_dir"]) / "img133_0.bin")]
    t = s["compute_time_ms"]
    assert t["count"] == 9  # one timed call per batch; the warm-up call is not counted
    assert t["min"] <= t["median"] <= t["p99"] <= t["max"] and t["min"] <= t["mean"] <= t["max"]
    # inputs per second of compute: 134 inputs over the summed compute time (= ais_bench's 1000*bs/mean ms when
    # every batch is full; here the last batch holds 6, unpadded)
    assert s["throughput_compute"] == pytest.approx(1000 * 134 / (t["mean"] * t["count"]))
    assert s["throughput_end_to_end"] > 0
    assert s["args"]["batch_size"] == BATCH and s["args"]["outfmt"] == "BIN"
    assert s["runtime"]["backend"] == "onnxruntime" and s["runtime"]["version"]
    assert s["machine"]["cores"] >= 1 and s["machine"]["python"]
    import hashlib

    assert s["model_sha256"] == hashlib.sha256(onnx_model.read_bytes()).hexdigest()


def test_batch16_equals_batch1(bs16_run: dict, onnx_model: Path, inputs: Path, tmp_path: Path) -> None:
    """The padded last batch and a full one give the same logits as running the images one at a time."""
    subset = [inputs / f"img{i:03d}.bin" for i in (0, 1, 128, 131, 133)]
    s1 = run_inference(onnx_model, subset, tmp_path, output_dirname="bs1", batch_size=1, progress=False)
    assert s1["n_outputs"] == len(subset)
    for f in subset:
        name = f.name.replace(".bin", "_0.bin")
        a = np.fromfile(Path(bs16_run["output_dir"]) / name, "<f4")
        b = np.fromfile(tmp_path / "bs1" / name, "<f4")
        assert np.abs(a - b).max() <= BATCH_INVARIANCE_ATOL


def test_torch_backend_and_npy_agree_with_onnx(bs16_run: dict, random_checkpoint: Path, inputs: Path,
                                               tmp_path: Path) -> None:
    files = [inputs / "img005.bin", inputs / "img006.bin", inputs / "img007.bin"]
    s = run_inference(random_checkpoint, files, tmp_path, output_dirname="t", outfmt="NPY", batch_size=2,
                      backend=None, progress=False)
    assert s["runtime"]["backend"] == "torch"
    for f in files:
        got = np.load(tmp_path / "t" / f.name.replace(".bin", "_0.npy"))
        assert got.shape == (1, 96, 96) and got.dtype == np.float32
        ref = np.fromfile(Path(bs16_run["output_dir"]) / f.name.replace(".bin", "_0.bin"), "<f4").reshape(1, 96, 96)
        assert np.abs(got - ref).max() <= 1e-4


def test_resume_skips_complete_outputs(onnx_model: Path, inputs: Path, tmp_path: Path) -> None:
    files = [inputs / f"img{i:03d}.bin" for i in range(4)]
    run_inference(onnx_model, files, tmp_path, output_dirname="r", progress=False)
    out = tmp_path / "r"
    good = (out / "img002_0.bin").read_bytes()
    (out / "img000_0.bin").unlink()
    (out / "img002_0.bin").write_bytes(good[:100])  # truncated: must be redone
    s = run_inference(onnx_model, files, tmp_path, output_dirname="r", resume=True, progress=False)
    assert s["n_skipped"] == 2 and s["n_outputs"] == 2
    assert (out / "img002_0.bin").read_bytes() == good
    names = sorted(p.name for p in out.iterdir() if p.name != MANIFEST)
    assert names == [f"img{i:03d}_0.bin" for i in range(4)]


def test_pure_inference_mode(onnx_model: Path, tmp_path: Path) -> None:
    s = run_inference(onnx_model, None, tmp_path, output_dirname="pure", loop=3, warmup=2,
                      batch_size=2, pure_data_type="random", progress=False)
    assert s["pure_inference"] and s["n_outputs"] == 0 and s["n_inputs"] == 0
    assert s["compute_time_ms"]["count"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pure_summary.json"]


# -- the command line and its failures ------------------------------------------------------------------------
def test_cli_prints_both_throughputs(onnx_model: Path, inputs: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.b.bin").write_bytes((inputs / "img000.bin").read_bytes())
    rc = main(["infer", "--model", str(onnx_model), "--input", str(one), "--output", str(tmp_path / "o"),
               "--batchsize", "2", "--threads", "2", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "compute only" in text and "end to end" in text and "_summary.json" in text
    (run_dir,) = [p for p in (tmp_path / "o").iterdir() if p.is_dir()]
    assert sorted(p.name for p in run_dir.iterdir()) == ["a_0.bin", MANIFEST]
    assert (tmp_path / "o" / f"{run_dir.name}_summary.json").is_file()


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) != 0
    return capsys.readouterr().err


def test_cli_wrong_size_bin(onnx_model: Path, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.bin").write_bytes((inputs / "img000.bin").read_bytes())
    (folder / "b.bin").write_bytes(b"\0" * 4 * 3 * 64 * 64)
    rc = main(["infer", "--model", str(onnx_model), "--input", str(folder), "--output", str(tmp_path / "o"),
               "--output-dirname", "r", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1  # finished, one item failed: listed by name, the others complete
    assert "b.bin" in err and "expected 110592 bytes" in err and "found 49152 bytes" in err
    assert sorted(p.name for p in (tmp_path / "o" / "r").iterdir()) == ["a_0.bin", MANIFEST]


def test_cli_model_not_onnx(inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_text("hello\n")
    err = _fails(["infer", "--model", str(fake), "--input", str(inputs), "--output", str(tmp_path / "o")], capsys)
    assert "model.onnx" in err and "expected a valid ONNX file" in err and "text file" in err
    assert not (tmp_path / "o").exists()


def test_cli_empty_input_folder(onnx_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    err = _fails(["infer", "--model", str(onnx_model), "--input", str(tmp_path / "empty"),
                  "--output", str(tmp_path / "o")], capsys)
    assert "empty" in err and "at least one .bin or .npy file" in err
    assert not (tmp_path / "o").exists()


def test_cli_unwritable_output(onnx_model: Path, inputs: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")  # a path under a regular file can never be a folder, even for root
    err = _fails(["infer", "--model", str(onnx_model), "--input", str(inputs / "img000.bin"),
                  "--output", str(blocker / "out")], capsys)
    assert "a_file/out" in err
    assert blocker.read_text() == "x" and list(tmp_path.iterdir()) == [blocker]


def test_cli_dtype_and_resume_misuse(inputs: Path, tmp_path: Path, onnx_model: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(["infer", "--model", str(onnx_model), "--input", str(inputs), "--output", str(tmp_path / "o"),
                  "--dtype", "fp16"], capsys)
    assert "--dtype" in err and "fp32" in err
    err = _fails(["infer", "--model", str(onnx_model), "--input", str(inputs), "--output", str(tmp_path / "o"),
                  "--threads", "-3"], capsys)
    assert "threads" in err and "expected an integer >= 1, found -3" in err
