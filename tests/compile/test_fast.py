"""The default runtime (compile/fast.py): int8 OpenVINO when its check on the shipped train-image set passes (drop -
2 SE <= 0.005, drop <= 0.010, fp32 mAP >= 0.1), fp32 when it fails, ONNX Runtime when OpenVINO is absent; what ran
is written down with the rule that judged it.

The shipped instance model runs its shipped build (weights/builds, `make builds`): cheap. Builds made here use a
small random-weight checkpoint (seconds), whose pipeline finds nothing, so its check must fail. The whole suite
otherwise runs with UNETPP_DEFAULT_RUNTIME=fp32 (tests/conftest.py), so these tests clear it."""

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


def test_the_shipped_builds_are_the_committed_checkpoints_built_and_verified() -> None:
    """weights/builds: made by `make builds` from the checkpoints committed now (rerun it after any checkpoint
    change), every file as recorded, each well under 20 MB, the instance model's passed at its own depth."""
    from unetpp.atomic import file_sha256
    from unetpp.model.cache_entries import damage
    from unetpp.model.shipped_builds import BUILDS, read_manifest
    from unetpp.model.sources import SHIPPED_MODELS

    manifest = read_manifest()
    assert manifest, f"no manifest in {BUILDS}: run `make builds`"
    kinds = {(e["kind"], e["model"], e["backend"]) for e in manifest["builds"]}
    assert {("int8", "instance", "openvino"), ("first-pass", "guide", "openvino")} <= kinds
    for entry in manifest["builds"]:
        committed = file_sha256(SHIPPED_MODELS[entry["model"]])
        assert entry["checkpoint_sha256"] == committed, \
            f"{entry['artefact']} was built from another {entry['checkpoint']}: run `make builds`"
        assert damage(BUILDS, entry["files"]) is None
        assert all((BUILDS / name).stat().st_size < 20e6 for name in entry["files"])
        if entry["kind"] == "int8":
            record = json.loads((BUILDS / entry["record"]).read_text())
            assert record["passed"] and entry["set"] == fast.guard_set_id() and entry["depth"] == 3
            assert record["rule"] == fast.check_rule() and record["n_images"] == len(fast.guard_set())


def test_the_rule_hand_computed() -> None:
    """passes(): fp32 must score >= 0.1; drop - 2 SE <= 0.005; drop <= 0.010. Each case below is decided by one
    of the three conditions (a rule with 1 SE, without the fp32 floor or without the cap fails one)."""
    ok = {"map_fp32": 0.56}
    assert fast.passes({**ok, "map_drop": 0.004, "map_drop_se": 0.0})
    assert fast.passes({**ok, "map_drop": 0.0077, "map_drop_se": 0.0034})  # 0.0077 - 0.0068 = 0.0009 <= 0.005
    assert not fast.passes({**ok, "map_drop": 0.0077, "map_drop_se": 0.001})  # 0.0057 > 0.005
    assert fast.passes({**ok, "map_drop": 0.009, "map_drop_se": 0.003})  # 2 SE: 0.003 <= 0.005 (1 SE: 0.006)
    assert not fast.passes({**ok, "map_drop": 0.011, "map_drop_se": 0.01})  # above the cap 0.010
    assert fast.passes({**ok, "map_drop": 0.010, "map_drop_se": 0.003})  # at the cap, 0.004 <= 0.005
    assert fast.passes({**ok, "map_drop": -0.02})  # int8 better; an old record without an error reads as 0
    # a pipeline that finds nothing verifies nothing: both 0, no drop, still refused
    assert not fast.passes({"map_fp32": 0.0, "map_int8": 0.0, "map_drop": 0.0, "map_drop_se": 0.0})
    assert not fast.passes({"map_fp32": 0.099, "map_drop": 0.0, "map_drop_se": 0.0})
    assert fast.passes({"map_fp32": 0.1, "map_drop": 0.0, "map_drop_se": 0.0})
    assert not fast.passes({"map_drop": 0.0, "map_drop_se": 0.0})  # no reference figure: nothing verified
    assert not fast.passes({**ok, "map_drop": 0.0, "map_drop_se": 0.0}, max_map_drop=-1.0)


def test_the_rule_is_stated_where_printed_and_recorded() -> None:
    check = fast.judged({"map_fp32": 0.5671, "map_int8": 0.5594, "map_drop": 0.0077, "map_drop_se": 0.0034,
                         "n_images": 36})
    stated = "drop 0.0077 +/- 0.0034 (SE); passes when drop - 2 SE <= 0.005 and drop <= 0.010 and fp32 mAP >= 0.1"
    choice = fast.RuntimeChoice("openvino", Path("m.xml"), Path("m.pt"), "int8", check["passed"], "r", 3, check)
    assert choice.line() == f"openvino int8, depth 3 (verified: mAP 0.5594 vs fp32 0.5671 on 36 train images, {stated})"
    record = choice.describe()["check"]
    assert record["verdict"].endswith(stated) and record["map_drop_se"] == 0.0034
    assert record["rule"] == {"max_map_drop": 0.005, "se_multiple": 2, "max_map_drop_cap": 0.01,
                              "min_map_fp32": 0.1, "text": stated.split("; ")[1]}


@needs_openvino
def test_a_shipped_model_runs_its_shipped_build_on_a_cold_cache(env, tmp_path: Path) -> None:
    from unetpp.model.shipped_builds import BUILDS

    env.setenv("UNETPP_CACHE", str(tmp_path / "empty-cache"))
    said: list[str] = []
    choice = fast.choose_runtime("instance", say=said.append)
    assert (choice.backend, choice.precision, choice.verified, choice.depth) == ("openvino", "int8", True, 3)
    assert choice.model.parent == BUILDS and choice.first_pass is not None and choice.first_pass.parent == BUILDS
    assert said == [] and not (tmp_path / "empty-cache" / "fast").exists()  # nothing built, nothing written
    assert choice.describe()["check"]["shipped"] is True
    # ignoring the shipped builds (UNETPP_SHIPPED_BUILDS=0) is what `make builds` and bench/speed/first_use.py rely on
    from unetpp.model.shipped_builds import ENV_SHIPPED, find_shipped

    env.setenv(ENV_SHIPPED, "0")
    assert find_shipped("int8", "x", "openvino", lambda e: True) == (None, None)


@needs_openvino
def test_a_pipeline_that_finds_nothing_is_never_verified(tiny_checkpoint: Path, env, cache: Path) -> None:
    """A real int8 build of a random-weight model: fp32 and int8 both score 0 (no drop), and the check still
    refuses to verify it; the default runs fp32 and says why, `--precision int8` runs it marked NOT verified."""
    said: list[str] = []
    choice = fast.choose_runtime(tiny_checkpoint, say=said.append)
    assert (choice.backend, choice.precision, choice.verified) == ("onnxruntime", "fp32", None)
    assert choice.check and choice.check["map_fp32"] == choice.check["map_int8"] == 0.0
    assert choice.check["passed"] is False and choice.describe()["check"]["passed"] is False
    building = [s for s in said if s.startswith("building the fast runtime")]
    assert len(building) == 1  # one line, first, with what a build costs (the measured figures)
    assert f"about {fast.BUILD_SECONDS_MEASURED / 60:.0f} min and {fast.BUILD_PEAK_GB_MEASURED:g} GB of memory" \
        in building[0] and said[0] == building[0]
    assert any("failed its accuracy check" in s and "fp32 mAP >= 0.1" in s and "running fp32" in s for s in said)
    record = json.loads(next((cache / "fast").glob("tiny-*")).joinpath(
        "openvino-int8.check.json").read_text())
    assert record["passed"] is False and record["rule"]["min_map_fp32"] == 0.1 and record["model_depth"] == 1
    forced = fast.choose_runtime(tiny_checkpoint, precision="int8", say=said.append)
    assert (forced.backend, forced.precision, forced.verified) == ("openvino", "int8", False)
    assert forced.line().startswith("openvino int8, depth 1 (NOT verified: mAP 0.0000 vs fp32 0.0000")
    assert any("did NOT pass" in s for s in said)


@needs_openvino
def test_a_failed_check_runs_fp32_and_says_so(env) -> None:
    said: list[str] = []
    # the shipped build's own figures judged against an allowance below zero: no int8 model can pass
    choice = fast.choose_runtime("instance", say=said.append, max_map_drop=-1.0)
    assert (choice.backend, choice.precision, choice.verified) == ("onnxruntime", "fp32", None)
    assert choice.model.suffix == ".onnx" and choice.check and choice.check["passed"] is False
    assert choice.depth == 3
    assert any("failed its accuracy check" in s and "running fp32" in s for s in said)
    assert choice.describe()["check"]["passed"] is False


def test_without_openvino_ort_int8_is_built_and_checked(tiny_checkpoint: Path, env) -> None:
    env.setenv(fast.ENV_NO_OPENVINO, "1")
    assert not fast.openvino_available()
    said: list[str] = []
    forced = fast.choose_runtime(tiny_checkpoint, precision="int8", say=said.append)
    assert (forced.backend, forced.precision, forced.verified) == ("onnxruntime", "int8", False)
    assert forced.model.name == "onnxruntime-int8.onnx" and forced.model.is_file()
    assert sum("OpenVINO is not installed" in s for s in said) == 1
    choice = fast.choose_runtime(tiny_checkpoint, say=said.append)
    assert (choice.backend, choice.precision) == ("onnxruntime", "fp32")  # it finds nothing: not verified


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
def test_predict_on_a_cold_cache_runs_the_default_path(tmp_path: Path) -> None:
    """What a user runs: `unetpp predict one.png`, no runtime override, an empty model cache: the shipped build
    runs at once (nothing built), and the summary and the output say what ran and by which rule it was verified."""
    from defaultkit import default_env, run_unetpp

    img = fast.guard_set()[0][1]
    cache = tmp_path / "cold-cache"
    r = run_unetpp(["predict", str(img), "-o", str(tmp_path / "out"), "--no-progress"], default_env(cache))
    assert r.returncode == 0, r.stderr
    assert "building" not in r.stderr and not (cache / "fast").exists()
    assert "runtime: openvino int8, depth 3 (verified: mAP " in r.stdout
    assert "(SE); passes when drop - 2 SE <= 0.005 and drop <= 0.010 and fp32 mAP >= 0.1)" in r.stdout
    ran = json.loads((tmp_path / "out" / "predict_summary.json").read_text())["settings"]["runtime"]
    assert ran["backend"] == "openvino" and ran["model"].endswith("instance-openvino-int8.xml")
    sel = ran["selection"]
    assert {k: sel[k] for k in ("runtime", "precision", "verified", "depth")} == \
        {"runtime": "openvino", "precision": "int8", "verified": True, "depth": 3}
    assert sel["check"]["n_images"] == len(fast.guard_set()) and sel["check"]["rule"]["se_multiple"] == 2


@needs_openvino
def test_a_check_made_again_later_keeps_the_run_folder_resumable(tiny_checkpoint: Path, env, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from unetpp.cli.main import main
    from unetpp.model.cache_entries import write_signed_json

    img = tmp_path / "img.png"
    cv2.imwrite(str(img), cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (80, 90, 3), np.uint8), (5, 5), 0))
    argv = ["predict", str(img), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint), "--precision", "int8",
            "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "runtime: openvino int8, depth 1 (NOT verified: mAP" in out
    ran = json.loads((tmp_path / "out" / "predict_summary.json").read_text())["settings"]["runtime"]
    # the check made again later (another date, other figures): a rerun still resumes the folder
    record = Path(ran["model"]).with_name("openvino-int8.check.json")
    doc = json.loads(record.read_text())
    write_signed_json(record, {**doc, "date": "2030-01-01 00:00:00", "map_int8": doc["map_int8"] - 0.001,
                               "map_drop": doc["map_drop"] + 0.001})
    assert main(argv) == 0
    capsys.readouterr()
    again = json.loads((tmp_path / "out" / "predict_summary.json").read_text())
    assert again["n_skipped"] == 1 and again["settings"]["runtime"]["selection"]["check"]["date"].startswith("2030")
    write_signed_json(record, doc)


@needs_openvino
def test_load_and_serve_say_what_runs(env) -> None:
    import unetpp

    with unetpp.load() as model:
        assert model.info["runtime"]["precision"] == "int8" and model.info["backend"] == "openvino"
        assert model.info["runtime"]["depth"] == 3 and "passes when drop - 2 SE" in model.info["runtime"]["check"][
            "verdict"]
        labels, _ = model.predict(np.full((64, 64), 30, np.uint8))
        assert labels.shape == (64, 64)
    pytest.importorskip("fastapi")
    from unetpp.serve.service import ServeSettings, Service

    service = Service(ServeSettings(threads=1))
    service.start()
    try:
        assert service.card["runtime"]["runtime"] == "openvino" and service.card["runtime"]["verified"] is True
        assert service.card["runtime_line"].startswith("openvino int8, depth 3 (verified")
        assert "passes when drop - 2 SE <= 0.005" in service.card["runtime_line"]
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


@needs_openvino
@pytest.mark.heavy  # builds the int8 guide model twice (20 s): `make test-published`
def test_the_int8_first_pass_is_built_once_runs_and_heals(env, cache: Path) -> None:
    """compile/first_pass.py: the guide model in int8, cached with its estimates against fp32; a runtime that
    carries it (the default runtime's choice) gives predict's work that model for the nuclei rule's first pass.
    A cached first pass that was damaged (a truncated .bin) is built again with one line saying so."""
    from unetpp.compile.first_pass import first_pass_int8
    from unetpp.model.cache_entries import damage
    from unetpp.predict.image import PredictOptions
    from unetpp.predict.imageio import read_image
    from unetpp.predict.work import work_for
    from unetpp.runtimes import open_runtime

    images = [(i, read_image(p)[0]) for i, p, _ in fast.guard_set()[:2]]
    said: list[str] = []
    path, record = first_pass_int8("openvino", images, said.append)  # not the shipped one's ids: built here
    assert path.suffix == ".xml" and path.is_file() and cache in path.parents
    assert record["n_calibration_inputs"] == 16 and set(record["median_area_fp32_int8"]) == {i for i, _ in images}
    fp32, int8 = record["median_area_fp32_int8"][images[0][0]]
    assert fp32 and int8 and abs(np.log(int8 / fp32)) < 0.5  # the same nuclei, measured alike
    assert first_pass_int8("openvino", images, said.append)[0] == path and len(said) == 1  # cached
    with open_runtime("instance") as rt:
        assert work_for(rt, PredictOptions())._first_pass.model.name.startswith("nested_unet_dsb2018_96")
        rt.first_pass_model = path
        assert work_for(rt, PredictOptions())._first_pass.model == path
    bin_ = path.with_suffix(".bin")
    bin_.write_bytes(bin_.read_bytes()[: bin_.stat().st_size // 2])
    again, healed = first_pass_int8("openvino", images, said.append)
    assert again == path and len(said) == 2
    assert said[1].startswith("the cached int8 first pass") and "bin changed since it was written" in said[1]
    assert damage(path.parent, healed["files"]) is None
    assert first_pass_int8("openvino", images, said.append)[0] == path and len(said) == 2  # intact: read
