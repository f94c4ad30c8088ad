"""open_package / zoo_runtime_inputs: a toy package built here, our exported one, and every refusal."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from unetpp.errors import InputError
from unetpp.eval.metrics import sigmoid
from unetpp.model.zoo_package import open_package, zoo_runtime_inputs


def _run(onnx_path: str | Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _unpacked(pkg: Path, dst: Path, edit: Callable[[dict], None] | None = None) -> Path:
    """The package's files in a folder; `edit` changes the RDF; returns the RDF path."""
    dst.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(pkg) as zf:
        zf.extractall(dst)
    rdf_path = dst / "rdf.yaml"
    if edit is not None:
        rdf = yaml.safe_load(rdf_path.read_text())
        edit(rdf)
        rdf_path.write_text(yaml.safe_dump(rdf, sort_keys=False))
    return rdf_path


def _rezip(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, p.name)
    return out


def test_toy_package_described(toy_package: Path, tmp_path: Path) -> None:
    zm = open_package(toy_package, extract_to=tmp_path / "x")
    assert zm.onnx_path.is_file() and zm.onnx_path.parent == tmp_path / "x"
    assert zm.input_axes == ("batch", "channel", "y", "x")
    assert zm.channel_order == "RGB" and zm.output_channels == ("foreground",) and zm.outputs_are_logits
    rt = zoo_runtime_inputs(zm)
    assert rt["input_shape"] == (3, 16, 16) and rt["step"] == (0, 0, 0)
    assert rt["linear"]["gain"] == pytest.approx([1 / 255] * 3) and rt["linear"]["mean"] == pytest.approx([127.5] * 3)
    x = np.load(zm.test_input)
    inp = rt["preprocess"](x[0].transpose(1, 2, 0))
    assert inp.dtype == np.float32 and inp.shape == (3, 16, 16)
    out = sigmoid(_run(rt["onnx_path"], inp[None]))
    np.testing.assert_allclose(out, np.load(zm.test_output), atol=1e-5)


def test_rdf_yaml_beside_its_files(toy_package: Path, tmp_path: Path) -> None:
    zm = open_package(_unpacked(toy_package, tmp_path / "u"))
    assert zm.onnx_path == tmp_path / "u" / "weights.onnx"


def test_round_trip_of_our_package(shipped_package: Path, tmp_path: Path) -> None:
    """Extracted ONNX on the test input == the test output, == our native ONNX path on the same image (1e-4)."""
    from unetpp.data.preprocess import normalize
    from unetpp.model.export import export_onnx

    rt = zoo_runtime_inputs(open_package(shipped_package, extract_to=tmp_path / "x"))
    assert rt["channel_order"] == "RGB" and rt["outputs_are_logits"] and rt["input_shape"] == (3, 96, 96)
    zm_test_in = np.load(tmp_path / "x" / "test_input.npy")
    img_rgb = zm_test_in[0].transpose(1, 2, 0)
    prob = sigmoid(_run(rt["onnx_path"], rt["preprocess"](img_rgb)[None]))
    np.testing.assert_allclose(prob, np.load(tmp_path / "x" / "test_output.npy"), atol=1e-4, rtol=0)
    export_onnx(None, tmp_path / "native.onnx")
    native = sigmoid(_run(tmp_path / "native.onnx", normalize(np.ascontiguousarray(img_rgb[..., ::-1]))[None]))
    np.testing.assert_allclose(prob, native, atol=1e-4, rtol=0)


def _drop_weights_file(folder: Path) -> None:
    (folder / "weights.onnx").unlink()


def _edit(key: str) -> Callable[[dict], None]:
    def no_onnx(r: dict) -> None:
        r["weights"].pop("onnx")
        r["weights"]["torchscript"].pop("parent", None)

    def swap_axes(r: dict) -> None:
        ax = r["inputs"][0]["axes"]
        ax[2], ax[3] = ax[3], ax[2]

    def three_d(r: dict) -> None:
        r["inputs"][0]["axes"].insert(2, {"type": "space", "id": "z", "size": 8})

    def url(r: dict) -> None:
        r["weights"]["onnx"]["source"] = "https://example.com/weights.onnx"

    def bad_hash(r: dict) -> None:
        r["weights"]["onnx"]["sha256"] = "0" * 64

    def old(r: dict) -> None:
        r["format_version"] = "0.4.10"

    return {"no_onnx": no_onnx, "swap_axes": swap_axes, "three_d": three_d, "url": url, "bad_hash": bad_hash,
            "old": old}[key]


@pytest.mark.parametrize("case,match", [
    ("no_onnx", r"weights: expected an onnx entry, found torchscript"),
    ("swap_axes", r"axes: expected batch, channel, y, x, found batch, channel, x, y"),
    ("three_d", r"expected a 2-D model .*found a 3-D model \(batch, channel, z, y, x\)"),
    ("url", r"expected a file inside the package .*found the URL https://example.com/weights.onnx"),
    ("bad_hash", r"SHA-256: expected 0{64} \(declared in the RDF\), found [0-9a-f]{64} \(the file\)"),
    ("old", r"format_version: expected 0.5.x, found '0.4.10'"),
])
def test_refusals(toy_package: Path, tmp_path: Path, case: str, match: str) -> None:
    rdf = _unpacked(toy_package, tmp_path / "u", _edit(case))
    with pytest.raises(InputError, match=match):
        open_package(rdf)
    with pytest.raises(InputError, match=match):  # the same from a zip
        open_package(_rezip(tmp_path / "u", tmp_path / "p.zip"), extract_to=tmp_path / "x")


def test_missing_weights_file(toy_package: Path, tmp_path: Path) -> None:
    rdf = _unpacked(toy_package, tmp_path / "u")
    _drop_weights_file(tmp_path / "u")
    with pytest.raises(InputError, match=r"ONNX weights: expected the file weights.onnx beside the RDF, found nothing"):
        open_package(rdf)
    with pytest.raises(InputError, match=r"ONNX weights: expected weights.onnx inside the package, found no such"):
        open_package(_rezip(tmp_path / "u", tmp_path / "p.zip"), extract_to=tmp_path / "x")


def test_hash_mismatch_of_a_changed_file(toy_package: Path, tmp_path: Path) -> None:
    rdf = _unpacked(toy_package, tmp_path / "u")
    with open(tmp_path / "u" / "weights.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(InputError, match=r"weights.onnx SHA-256: expected [0-9a-f]{64} \(declared"):
        open_package(rdf)


def test_not_a_package(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.zip").write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match=r"expected a .zip package or a .yaml RDF, found suffix '.txt'"):
        open_package(tmp_path / "a.txt")
    with pytest.raises(InputError, match=r"found a file that is not a zip"):
        open_package(tmp_path / "b.zip")
    with pytest.raises(InputError, match=r"found nothing at"):
        open_package(tmp_path / "missing.zip")
    shutil.make_archive(str(tmp_path / "empty"), "zip", tmp_path, "a.txt")
    with pytest.raises(InputError, match=r"rdf.yaml or bioimageio.yaml at the top of the zip"):
        open_package(tmp_path / "empty.zip")


def test_onnx_only_package(toy_builder: Callable[..., Path], tmp_path: Path) -> None:
    zm = open_package(toy_builder(tmp_path, "onnx_only.zip", torchscript=False), extract_to=tmp_path / "x")
    assert "parent" not in zm.rdf["weights"]["onnx"] and set(zm.rdf["weights"]) == {"onnx"}


def test_reading_a_package_does_not_import_torch(toy_package: Path, tmp_path: Path) -> None:
    """`predict --model PACKAGE.zip` on ONNX Runtime must not pay torch's import."""
    import subprocess
    import sys

    code = ("import sys; from unetpp.model.zoo_package import open_package, zoo_runtime_inputs; "
            f"rt = zoo_runtime_inputs(open_package({str(toy_package)!r}, extract_to={str(tmp_path)!r})); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
