"""The default runtime (compile/fast.py): int8 OpenVINO when its mAP on the shipped train-image set is within
0.005 of fp32, fp32 when that check fails, ONNX Runtime when OpenVINO is absent; what ran is written down.

The check runs on a random-weight checkpoint here (its build takes seconds, the shipped model's minutes); the
whole suite otherwise runs with UNETPP_DEFAULT_RUNTIME=fp32 (tests/conftest.py), so these tests clear it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from unetpp.compile import fast

needs_openvino = pytest.mark.skipif(not fast.openvino_available(), reason="openvino/nncf not installed")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture()
def env(cache: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A shared model cache for the module (the builds are reused), the default runtime switched on."""
    monkeypatch.setenv("UNETPP_CACHE", str(cache))
    monkeypatch.delenv(fast.ENV_DEFAULT, raising=False)
    monkeypatch.delenv(fast.ENV_NO_OPENVINO, raising=False)
    return monkeypatch


def test_the_check_set_is_train_images_only() -> None:
    from unetpp.data.paths import read_ids

    ids = [i for i, _, _ in fast.guard_set()]
    shipped = set(read_ids(Path(fast.__file__).parents[1] / "data" / "splits" / "selection_ids.txt"))
    # selection ids are train ids, none in val: tests/train/test_long_run_recipe.py checks that on the real data
    assert 30 <= len(ids) <= 40 and set(ids) <= shipped
    for _, img, lab in fast.guard_set():
        labels = cv2.imread(str(lab), cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint16 and labels.max() > 0
        assert labels.shape == cv2.imread(str(img)).shape[:2]


@needs_openvino
def test_with_openvino_the_default_is_int8_openvino_once_verified(random_checkpoint: Path, env, cache: Path) -> None:
    said: list[str] = []
    choice = fast.choose_runtime(random_checkpoint, say=said.append)
    assert (choice.backend, choice.precision, choice.verified) == ("openvino", "int8", True)
    assert choice.model.suffix == ".xml" and choice.model.is_file() and cache in choice.model.parents
    assert len([s for s in said if s.startswith("building the fast runtime")]) == 1  # the one line before the pause
    record = json.loads(choice.model.with_name("openvino-int8.check.json").read_text())
    assert record["passed"] and record["n_images"] == len(fast.guard_set())
    assert abs(record["map_fp32"] - record["map_int8"] - record["map_drop"]) < 1e-9
    again: list[str] = []
    assert fast.choose_runtime(random_checkpoint, say=again.append).model == choice.model
    assert again == []  # built and checked once: the second choice reads the cache


@needs_openvino
def test_a_failed_check_runs_fp32_and_says_so(random_checkpoint: Path, env) -> None:
    said: list[str] = []
    # an allowance below zero: no int8 model can pass, whatever its figures
    choice = fast.choose_runtime(random_checkpoint, say=said.append, max_map_drop=-1.0)
    assert (choice.backend, choice.precision, choice.verified) == ("onnxruntime", "fp32", None)
    assert choice.model.suffix == ".onnx" and choice.check and choice.check["passed"] is False
    assert any("failed its accuracy check" in s and "running fp32" in s for s in said)
    assert choice.describe()["check"]["passed"] is False


def test_without_openvino_ort_int8_when_verified(random_checkpoint: Path, env) -> None:
    env.setenv(fast.ENV_NO_OPENVINO, "1")
    assert not fast.openvino_available()
    said: list[str] = []
    choice = fast.choose_runtime(random_checkpoint, say=said.append)
    assert (choice.backend, choice.precision, choice.verified) == ("onnxruntime", "int8", True)
    assert choice.model.name == "onnxruntime-int8.onnx"
    assert sum("OpenVINO is not installed" in s for s in said) == 1
    failed = fast.choose_runtime(random_checkpoint, say=said.append, max_map_drop=-1.0)
    assert (failed.backend, failed.precision) == ("onnxruntime", "fp32")


def test_explicit_choices_are_kept(random_checkpoint: Path, env) -> None:
    said: list[str] = []
    ort = fast.choose_runtime(random_checkpoint, precision="fp32", say=said.append)
    assert (ort.backend, ort.precision, ort.verified) == ("onnxruntime", "fp32", None)
    assert fast.choose_runtime(random_checkpoint, backend="torch", say=said.append).backend == "torch"
    env.setenv(fast.ENV_DEFAULT, "fp32")
    assert fast.choose_runtime(random_checkpoint, say=said.append).precision == "fp32"
    assert said == []  # nothing built, nothing to say


def test_a_model_file_runs_as_it_is(onnx_model: Path, env) -> None:
    choice = fast.choose_runtime(onnx_model)
    assert (choice.backend, choice.model, choice.precision) == ("onnxruntime", onnx_model, "as the file")
    from unetpp.errors import InputError

    with pytest.raises(InputError, match="--precision int8"):
        fast.choose_runtime(onnx_model, precision="int8")


@needs_openvino
def test_predict_summary_and_output_say_what_ran(random_checkpoint: Path, env, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from unetpp.cli.main import main

    img = tmp_path / "img.png"
    cv2.imwrite(str(img), cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (80, 90, 3), np.uint8), (5, 5), 0))
    rc = main(["predict", str(img), "-o", str(tmp_path / "out"), "--model", str(random_checkpoint), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    summary = json.loads((tmp_path / "out" / "predict_summary.json").read_text())
    ran = summary["settings"]["runtime"]
    assert ran["backend"] == "openvino" and ran["model"].endswith("openvino-int8.xml")
    assert {k: ran["selection"][k] for k in ("runtime", "precision", "verified")} == \
        {"runtime": "openvino", "precision": "int8", "verified": True}
    assert ran["selection"]["check"]["n_images"] == len(fast.guard_set())
    assert "runtime: openvino int8 (verified: mAP" in out
    # the check made again later (another date, other figures, still passed): a rerun still resumes the folder
    record = Path(ran["model"]).with_name("openvino-int8.check.json")
    doc = json.loads(record.read_text())
    record.write_text(json.dumps({**doc, "date": "2030-01-01 00:00:00", "map_int8": doc["map_int8"] - 0.001,
                                  "map_drop": doc["map_drop"] + 0.001}))
    rc = main(["predict", str(img), "-o", str(tmp_path / "out"), "--model", str(random_checkpoint), "--no-progress"])
    capsys.readouterr()
    assert rc == 0
    again = json.loads((tmp_path / "out" / "predict_summary.json").read_text())
    assert again["n_skipped"] == 1 and again["settings"]["runtime"]["selection"]["check"]["date"].startswith("2030")
    record.write_text(json.dumps(doc))


@needs_openvino
def test_load_and_serve_say_what_runs(random_checkpoint: Path, env) -> None:
    import unetpp

    with unetpp.load(random_checkpoint) as model:
        assert model.info["runtime"]["precision"] == "int8" and model.info["backend"] == "openvino"
        labels, _ = model.predict(np.full((64, 64), 30, np.uint8))
        assert labels.shape == (64, 64)
    pytest.importorskip("fastapi")
    from unetpp.serve.service import ServeSettings, Service

    service = Service(ServeSettings(model=str(random_checkpoint), threads=1))
    service.start()
    try:
        assert service.card["runtime"]["runtime"] == "openvino" and service.card["runtime"]["verified"] is True
        assert service.card["runtime_line"].startswith("openvino int8 (verified")
    finally:
        service.stop()
    page = (Path(unetpp.__file__).parent / "serve" / "static" / "app.js").read_text()
    assert "m.runtime_line" in page  # the page's footer shows it


def test_a_failed_build_runs_fp32_unless_int8_was_asked_for(random_checkpoint: Path, env) -> None:
    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("quantiser exploded\nsecond line")

    env.setattr(fast, "int8_build", broken)
    said: list[str] = []
    choice = fast.choose_runtime(random_checkpoint, say=said.append, openvino=True)
    assert (choice.backend, choice.precision) == ("onnxruntime", "fp32")
    assert said == ["the int8 openvino model of random.pt could not be built (quantiser exploded): running fp32"]
    with pytest.raises(RuntimeError, match="quantiser exploded"):
        fast.choose_runtime(random_checkpoint, precision="int8", say=said.append, openvino=True)


def test_a_foreign_output_folder_is_refused_before_the_first_use_build(tmp_path: Path, monkeypatch) -> None:
    """predict checks its folder first: a user's non-empty folder costs no build and leaves no cache entry."""
    from unetpp.cli.main import main

    cache = tmp_path / "fresh-cache"
    monkeypatch.setenv("UNETPP_CACHE", str(cache))
    monkeypatch.delenv(fast.ENV_DEFAULT, raising=False)
    image = tmp_path / "cells.png"
    cv2.imwrite(str(image), np.full((64, 64), 40, np.uint8))
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("mine")
    assert main(["predict", str(image), "-o", str(thesis), "--no-progress"]) == 2
    assert not (cache / "fast").exists()
    assert (thesis / "chapter1.tex").read_text() == "mine" and sorted(thesis.iterdir()) == [thesis / "chapter1.tex"]


def test_the_check_judges_the_drop_against_its_own_error() -> None:
    """passes(): a drop within the allowance passes; one above it passes only while two standard errors cover the
    excess, and never above twice the allowance (hand-computed cases, allowance 0.005)."""
    assert fast.passes({"map_drop": 0.004, "map_drop_se": 0.0})
    assert fast.passes({"map_drop": 0.0077, "map_drop_se": 0.0034})  # 0.0077 - 0.0068 = 0.0009 <= 0.005
    assert not fast.passes({"map_drop": 0.0077, "map_drop_se": 0.001})  # 0.0057 > 0.005
    assert not fast.passes({"map_drop": 0.011, "map_drop_se": 0.01})  # above twice the allowance
    assert fast.passes({"map_drop": -0.02})  # int8 better; an old record without an error reads as 0
    assert not fast.passes({"map_drop": 0.0, "map_drop_se": 0.0}, max_map_drop=-1.0)


@needs_openvino
def test_the_int8_first_pass_is_built_once_and_the_work_runs_it(env, cache: Path) -> None:
    """compile/first_pass.py: the guide model in int8, cached with its estimates against fp32; a runtime that
    carries it (the default runtime's choice) gives predict's work that model for the nuclei rule's first pass."""
    from unetpp.compile.first_pass import first_pass_int8
    from unetpp.predict.image import PredictOptions
    from unetpp.predict.imageio import read_image
    from unetpp.predict.work import work_for
    from unetpp.runtimes import open_runtime

    images = [(i, read_image(p)[0]) for i, p, _ in fast.guard_set()[:2]]
    said: list[str] = []
    path, record = first_pass_int8("openvino", images, said.append)
    assert path.suffix == ".xml" and path.is_file() and cache in path.parents
    assert record["n_calibration_inputs"] == 16 and set(record["median_area_fp32_int8"]) == {i for i, _ in images}
    fp32, int8 = record["median_area_fp32_int8"][images[0][0]]
    assert fp32 and int8 and abs(np.log(int8 / fp32)) < 0.5  # the same nuclei, measured alike
    assert first_pass_int8("openvino", images, said.append)[0] == path and len(said) == 1  # cached
    with open_runtime("instance") as rt:
        assert work_for(rt, PredictOptions())._first_pass.model.name.startswith("nested_unet_dsb2018_96")
        rt.first_pass_model = path
        assert work_for(rt, PredictOptions())._first_pass.model == path
