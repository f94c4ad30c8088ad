"""`unetpp export --format bioimageio`: what the package holds, and that its pre-processing is the guide's."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from unetpp.cli.main import build_parser
from unetpp.config import PreprocessConfig
from unetpp.data.preprocess import normalize
from unetpp.errors import InputError
from unetpp.model.zoo_processing import make_preprocess
from unetpp.zoo.export import export_bioimageio, scale_linear_kwargs


def _rdf(pkg: Path) -> dict:
    with zipfile.ZipFile(pkg) as zf:
        return yaml.safe_load(zf.read("rdf.yaml"))


def test_default_format_is_onnx() -> None:
    args = build_parser("export").parse_args(["export", "-o", "m.onnx"])
    assert args.format == "onnx"


def test_package_layout(shipped_package: Path) -> None:
    with zipfile.ZipFile(shipped_package) as zf:
        names = set(zf.namelist())
    assert names == {"rdf.yaml", "weights.onnx", "weights_torchscript.pt", "test_input.npy",
                     "test_output.npy", "README.md", "cover.png", "sample_input.png", "sample_output.tif"}
    assert not [p for p in shipped_package.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    rdf = _rdf(shipped_package)
    assert rdf["format_version"].startswith("0.5.") and rdf["license"] == "MIT"
    w = rdf["weights"]
    assert set(w) == {"onnx", "torchscript"}
    assert "parent" not in w["torchscript"] and w["onnx"]["parent"] == "torchscript"
    assert w["onnx"]["opset_version"] >= 11
    inp, out = rdf["inputs"][0], rdf["outputs"][0]
    assert [a.get("id", a["type"]) for a in inp["axes"]] == ["batch", "channel", "y", "x"]
    assert inp["axes"][1]["channel_names"] == ["red", "green", "blue"]
    assert [a.get("size") for a in inp["axes"][2:]] == [96, 96]
    assert out["axes"][1]["channel_names"] == ["foreground"]
    assert [s["id"] for s in out["postprocessing"]] == ["sigmoid"]
    dois = {c.get("doi") for c in rdf["cite"]}
    assert {"10.1007/978-3-030-00889-5_1", "10.1038/s41592-019-0612-7"} <= dois
    with zipfile.ZipFile(shipped_package) as zf:
        readme = zf.read("README.md").decode()
    for fact in ("0.8433", "BBBC038", "CC0", "BGR", "Intended use", "logits"):
        assert fact in readme


@pytest.mark.parametrize("order", ["rgb", "bgr"])
def test_scale_linear_reproduces_guide_normalisation(order: str) -> None:
    """((x/255 - mean)/std)/255 in BGR order == the packaged ensure_dtype + scale_linear in the package's order."""
    pre = PreprocessConfig()
    img_bgr = np.random.default_rng(1).integers(0, 256, size=(40, 30, 3), dtype=np.uint8)
    steps = [{"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
             {"id": "scale_linear", "kwargs": scale_linear_kwargs(pre, order)}]
    img_pkg = img_bgr[..., ::-1] if order == "rgb" else img_bgr
    x = make_preprocess(steps, 3)(img_pkg)
    want = normalize(img_bgr, pre)
    if order == "rgb":
        want = want[::-1]  # the network flips RGB back to BGR
    np.testing.assert_allclose(x, want, rtol=1e-6, atol=1e-8)  # values ~1e-2: float32 rounding


def test_bad_channel_order_and_batch(tmp_path: Path) -> None:
    from unetpp.cli.main import main

    with pytest.raises(InputError, match="--channel-order"):
        export_bioimageio(None, tmp_path / "m.zip", channel_order="gbr")
    assert main(["export", "--format", "bioimageio", "--batch", "4", "-o", str(tmp_path / "m.zip")]) == 2
    assert not (tmp_path / "m.zip").exists()


def test_two_class_checkpoint_names_foreground_and_border() -> None:
    from unetpp.config import ModelConfig
    from unetpp.zoo import readme
    from unetpp.zoo.export import output_channel_names

    assert output_channel_names(1) == ("foreground",)
    assert output_channel_names(2) == ("foreground", "border")
    cfg = ModelConfig(num_classes=2)
    text = readme.readme_text(cfg, PreprocessConfig(), "rgb", {}, 11, "0" * 64)
    assert "2 output channel(s) (foreground, border)" in text and "No validation figure" in text


def test_writer_leaves_nothing_on_failure(tmp_path: Path) -> None:
    from unetpp.zoo.package import PackageContent, TensorSpec, write_package

    spec = TensorSpec("raw", "x", ("grey",), (4, 4))
    arr = np.zeros((1, 1, 4, 4), np.float32)
    content = PackageContent(name="broken model", description="d", input=spec, output=spec,
                             onnx=tmp_path / "missing.onnx", opset=11, test_input=arr, test_output=arr, readme="r")
    with pytest.raises(InputError, match=r"ONNX weights: expected an existing file, found nothing at"):
        write_package(tmp_path / "p.zip", content)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match=r"test input: expected shape \(1, 1, 4, 4\), found shape \(4, 4\)"):
        write_package(tmp_path / "p.zip", PackageContent(**{**content.__dict__, "test_input": arr[0, 0]}))
    with pytest.raises(InputError, match=r"package file name: expected a name ending in .zip"):
        write_package(tmp_path / "p.tar", content)


def test_packaged_weights_that_miss_parity_are_refused(random_checkpoint: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The bug the parity check exists for: a package whose pre-processing forgets the training's extra /255 (its
    gains 255x too large) computes something else than the native path; the export refuses and writes nothing."""
    from unetpp.errors import ModelFileError
    from unetpp.zoo import export as zoo_export

    def without_extra_divide(pre: PreprocessConfig, order: str) -> dict:
        kw = scale_linear_kwargs(pre, order)
        return {**kw, "gain": [g * pre.extra_divide for g in kw["gain"]],
                "offset": [o * pre.extra_divide for o in kw["offset"]]}

    monkeypatch.setattr(zoo_export, "scale_linear_kwargs", without_extra_divide)
    out = tmp_path / "pkg" / "m.zip"
    with pytest.raises(ModelFileError, match=r"packaged weights vs the native ONNX path .* found \{'onnx'"):
        export_bioimageio(random_checkpoint, out)
    assert not out.exists() and not [p for p in tmp_path.rglob("*") if p.is_file()]
