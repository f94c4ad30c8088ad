"""`unetpp infer --engine ray` on a local 2-CPU Ray: real val inputs, a real ONNX model, real worker processes.

Each output must be byte-identical to the single-process run with the same runtime and batch size; a resume
rewrites exactly the missing outputs; a corrupt input fails alone; a worker killed mid-batch is restarted and the run
still ends with every output present, correct, and the ones written before the crash never rewritten.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'unetpp[ray]'")

from unetpp.cli.main import main  # noqa: E402
from unetpp.core.executors import RayExecutor  # noqa: E402
from unetpp.core.ray import RayOptions  # noqa: E402
from unetpp.core.runfolder import MANIFEST  # noqa: E402
from unetpp.core.work import FaultSpec  # noqa: E402
from unetpp.data.prepare import prepare_dsb2018  # noqa: E402
from unetpp.data.preprocess import preprocess_folder  # noqa: E402
from unetpp.infer.run import run_inference  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.cluster]  # a local Ray: `make test-published`

N_INPUTS, BATCH = 8, 3  # batches of 3, 3 and 2 (+1 padding row): the padded batch is exercised too
TWO_WORKERS = RayOptions(num_workers=2, threads=1, progress=False)


@pytest.fixture(scope="module")
def inputs(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The N_INPUTS generated samples, prepared at 96 px and pre-processed to .bin as `unetpp run` does."""
    base = tmp_path_factory.mktemp("ray_inputs")
    ids = sorted(p.name for p in (synthetic_root / "stage1_train").iterdir())[:N_INPUTS]
    prepare_dsb2018(synthetic_root / "stage1_train", base / "d96", ids=ids, progress=False)
    preprocess_folder(base / "d96" / "images", base / "bins", ids, progress=False)
    return base / "bins"


@pytest.fixture(scope="module")
def local_dir(onnx_model: Path, inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the single-process engine, same runtime (onnxruntime, 2 threads) and batch size."""
    out = tmp_path_factory.mktemp("local")
    s = run_inference(onnx_model, [inputs], out, output_dirname="run", batch_size=BATCH,
                      backend_options={"threads": 2}, progress=False)
    assert s["n_outputs"] == N_INPUTS
    return out / "run"


@pytest.fixture(scope="module")
def ray_run(ray_session, onnx_model: Path, inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("ray")
    return run_inference(onnx_model, [inputs], out, output_dirname="run", batch_size=BATCH,
                             progress=False, executor=RayExecutor(TWO_WORKERS))


def _outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)


def _same_as_local(out_dir: Path, local_dir: Path) -> None:
    expected = _outputs(local_dir)
    assert len(expected) == N_INPUTS
    assert _outputs(out_dir) == expected  # no temporary or extra file left behind
    assert json.loads((out_dir / MANIFEST).read_text())["state"] == "complete"
    for name in expected:
        assert (out_dir / name).read_bytes() == (local_dir / name).read_bytes(), name


def test_outputs_identical_to_single_process_run(ray_run: dict, local_dir: Path) -> None:
    _same_as_local(Path(ray_run["output_dir"]), local_dir)
    assert ray_run["n_outputs"] == N_INPUTS and ray_run["n_failed"] == 0 and ray_run["n_padded"] == 0


def test_summary_has_local_fields_plus_workers_and_cluster(ray_run: dict, local_dir: Path) -> None:
    local = json.loads((local_dir.parent / "run_summary.json").read_text())
    s = json.loads(Path(ray_run["summary_path"]).read_text())
    assert set(local) <= set(s)
    assert s["engine"] == "ray" and local["engine"] == "local"
    assert s["filesinfo"] == {k: {"infiles": v["infiles"], "outfiles": [v["outfiles"][0].replace(
        str(local_dir), ray_run["output_dir"])]} for k, v in local["filesinfo"].items()}
    assert s["compute_time_ms"]["count"] == 3  # one timed call per batch, warm-ups excluded
    assert s["runtime"]["backend"] == "onnxruntime" and s["runtime"]["options"] == {"threads": 1}
    assert s["model_sha256"] == local["model_sha256"]
    workers = s["workers"]
    assert sum(w["n_images"] for w in workers) == N_INPUTS and sum(w["n_items"] for w in workers) == 3
    assert all(w["pid"] != os.getpid() for w in workers)  # the work ran in worker processes, not here
    assert len({w["pid"] for w in workers}) == len(workers) <= 2
    cl = s["cluster"]
    assert cl["n_nodes"] == 1 and cl["cpus"] == 2 and cl["ray_version"] == ray.__version__ and cl["address"]
    assert s["ray"]["num_workers"] == 2 and s["ray"]["startup_s"] >= 0 and s["throughput_end_to_end"] > 0


def test_resume_rewrites_exactly_the_missing_outputs(ray_run: dict, ray_session, onnx_model: Path, inputs: Path,
                                                     local_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(ray_run["output_dir"], out)
    names = _outputs(out)
    gone = [names[0], names[4], names[7]]
    for n in gone:
        (out / n).unlink()
    (out / names[5]).write_bytes((out / names[5]).read_bytes()[:1000])  # truncated: incomplete, must be redone
    redo = {*gone, names[5]}
    kept = {n: (out / n).stat() for n in names if n not in redo}
    s = run_inference(onnx_model, [inputs], tmp_path, output_dirname="run", batch_size=BATCH, resume=True,
                          progress=False, executor=RayExecutor(TWO_WORKERS))
    assert s["n_skipped"] == len(kept) and s["n_outputs"] == len(redo)
    for n, st in kept.items():
        now = (out / n).stat()
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), f"{n} was rewritten"
    _same_as_local(out, local_dir)


def test_corrupt_input_is_reported_while_the_others_complete(ray_session, onnx_model: Path, inputs: Path,
                                                            local_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    shutil.copytree(inputs, folder)
    bad = sorted(folder.iterdir())[2]
    bad.write_bytes(bad.read_bytes()[:-4])  # one float short
    rc = main(["infer", "--engine", "ray", "--num-workers", "2", "--threads", "1", "--model", str(onnx_model),
               "--input", str(folder), "--output", str(tmp_path / "o"), "--output-dirname", "run",
               "--batchsize", str(BATCH), "--no-progress"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "1 input(s) failed" in err and bad.name in err and "110588 bytes" in err
    out = tmp_path / "o" / "run"
    stem = bad.name.split(".")[0]
    assert _outputs(out) == [n for n in _outputs(local_dir) if not n.startswith(stem)]
    summary = json.loads((tmp_path / "o" / "run_summary.json").read_text())
    assert [f["file"] for f in summary["failed"]] == [str(bad)] and summary["n_outputs"] == N_INPUTS - 1


def test_worker_killed_mid_batch_is_restarted_and_nothing_is_written_twice(
        ray_session, onnx_model: Path, inputs: Path, local_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "fault.json"
    # The first worker to write its 4th output dies (os._exit) right after it; every split of the 3 batches over
    # 2 workers gets one worker there, part-way through its second batch.
    s = run_inference(onnx_model, [inputs], tmp_path, output_dirname="run", batch_size=BATCH,
                          progress=False, executor=RayExecutor(TWO_WORKERS, fault=FaultSpec(4, str(marker))))
    assert marker.is_file(), "the fault hook did not fire: the test would prove nothing"
    died = json.loads(marker.read_text())
    assert len(died["written"]) == 4
    _same_as_local(tmp_path / "run", local_dir)
    for path, inode in died["written"]:
        assert Path(path).stat().st_ino == inode, f"{path}, written before the crash, was written again"
    assert s["n_outputs"] == N_INPUTS and s["n_failed"] == 0
    assert s["n_retried_outputs"] >= 1  # the crashed batch's outputs already in place were skipped on retry
