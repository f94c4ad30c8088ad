"""Fault corpus, multi-channel TIFFs: samples that are not grey, grey+alpha, RGB or RGBA (two fluorescence
channels, channels stored as min-is-black samples, planar or contiguous) are refused, that image alone, in predict,
serve, the Python API and the napari reader; OpenCV would keep the first sample and drop the rest without a word.
(tifffile comes with scikit-image, a dependency.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from faultkit import listing

from unetpp.core.runfolder import MANIFEST
from unetpp.errors import InputError

OUTS = ("_labels.png", "_mask.png", "_nuclei.csv")


def _outputs(stems: list[str]) -> list[str]:
    return sorted([f"{s}{o}" for s in stems for o in OUTS] + ["counts.csv", "predict_summary.json", MANIFEST])


def _blobs(channels: int, dtype=np.uint8) -> np.ndarray:
    """(40, 56, channels): each channel its own bright squares (channel k: k + 1 squares)."""
    img = np.full((channels, 40, 56), 10, dtype)
    for k in range(channels):
        for j in range(k + 1):
            img[k, 5 + 8 * j:11 + 8 * j, 6 + 10 * k:14 + 10 * k] = 200
    return np.moveaxis(img, 0, -1)


REFUSED = {  # name: (what to write, tifffile options, the samples it holds)
    "two_channels": (_blobs(2), {"photometric": "minisblack", "planarconfig": "contig"}, "2 samples"),
    "two_channels_16bit_planar": (np.moveaxis(_blobs(2, np.uint16), -1, 0),
                                  {"photometric": "minisblack", "planarconfig": "separate"}, "2 samples"),
    "three_channels_minisblack": (_blobs(3), {"photometric": "minisblack", "planarconfig": "contig"}, "3 samples"),
    "five_channels": (_blobs(5), {"photometric": "minisblack", "planarconfig": "contig"}, "5 samples"),
    "two_pages_of_two_channels": (np.stack([_blobs(2), _blobs(2)]),
                                  {"photometric": "minisblack", "planarconfig": "contig"}, "2 samples"),
}
ACCEPTED = {
    "grey_alpha": (_blobs(2), {"photometric": "minisblack", "extrasamples": ["unassalpha"]}),
    "rgb": (_blobs(3), {"photometric": "rgb"}),
    "rgba": (_blobs(4), {"photometric": "rgb", "extrasamples": ["assocalpha"]}),
    "grey16": (_blobs(1, np.uint16)[:, :, 0], {"photometric": "minisblack"}),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_predict_refuses_a_multichannel_tiff_alone(case: str, cli, images: Path, onnx_model: Path,
                                                   tmp_path: Path) -> None:
    data, kwargs, says = REFUSED[case]
    tifffile.imwrite(images / f"{case}.tif", data, **kwargs)
    r = cli("predict", images, "-o", tmp_path / "o", "--model", onnx_model, "--no-progress", "--threads", "1")
    assert r.rc == 1 and r.says(case, "grey, grey+alpha, RGB or RGBA samples", says, "<stem>_p<k>"), r.out + r.err
    assert listing(tmp_path / "o") == _outputs(["one", "two"])
    assert json.loads((tmp_path / "o" / MANIFEST).read_text())["state"] == "partial"


def test_predict_takes_grey_alpha_rgb_rgba_and_16bit_tiffs(cli, images: Path, onnx_model: Path,
                                                          tmp_path: Path) -> None:
    for case, (data, kwargs) in ACCEPTED.items():
        tifffile.imwrite(images / f"{case}.tif", data, **kwargs)
    r = cli("predict", images, "-o", tmp_path / "o", "--model", onnx_model, "--no-progress", "--threads", "1")
    assert r.rc == 0, r.out + r.err
    assert listing(tmp_path / "o") == _outputs(["one", "two", *ACCEPTED])


def test_serve_refuses_a_two_channel_tiff_upload(tmp_path: Path) -> None:
    from unetpp.serve.inputs import Limits, RequestError, decode_image

    data, kwargs, _ = REFUSED["two_channels"]
    tifffile.imwrite(tmp_path / "x.tif", data, **kwargs)
    with pytest.raises(RequestError) as err:
        decode_image((tmp_path / "x.tif").read_bytes(), "x.tif", Limits())
    assert err.value.status == 422 and "2 samples" in err.value.found, err.value.body()
    grey, grey_kwargs = ACCEPTED["grey_alpha"]
    tifffile.imwrite(tmp_path / "ga.tif", grey, **grey_kwargs)
    assert decode_image((tmp_path / "ga.tif").read_bytes(), "ga.tif", Limits()).shape == (40, 56, 3)


def test_api_and_napari_refuse_two_channels(tmp_path: Path) -> None:
    from unetpp.api import as_bgr
    from unetpp.napari.imagefiles import read_as_layer

    with pytest.raises(InputError, match="2 channels"):
        as_bgr(_blobs(2))
    data, kwargs, _ = REFUSED["two_channels"]
    tifffile.imwrite(tmp_path / "x.tif", data, **kwargs)
    with pytest.raises(InputError, match="2 samples"):
        read_as_layer(tmp_path / "x.tif")
    assert as_bgr(_blobs(2)[:, :, 0]).shape == (40, 56, 3)
