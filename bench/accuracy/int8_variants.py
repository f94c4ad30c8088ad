"""int8 OpenVINO builds of the instance model, one quantization setting at a time, against fp32 through predict's
pipeline (default options, depth 3, the shipped int8 first pass), per kind of image (eval.modality), with the
phantom nuclei (predicted nuclei with no pixel on any true one). Images: the 138 selection ids (the 36 check images
of weights/guard among them) and the 8 other bright-field train ids (DSB2018 train holds 11). Every build
calibrates on the check images' windows, as a first use does. Val is never used.

    python bench/accuracy/int8_variants.py --data data/dsb2018 --out bench/results/int8_variants.json

Variants: `shipped` (weights/builds: since 27ff261 the model input's quantizer spans the calibration inputs' exact
range, ov_passes.cover_input_range), `nncf_ranges` (NNCF's own ranges everywhere: the build before), `minmax`
(every activation's range the samples' min of minima / max of maxima), `first_conv_fp32` (the input not
quantized), `mixed` (asymmetric activations), `input_widened` (`nncf_ranges` with only the input's range widened
to the calibration inputs', symmetric). The NNCF variants are built without cover_input_range. About 3 minutes
each on 2 cores. In bench/results/int8_variants.json (run before 27ff261) `shipped` is the build before
(= `nncf_ranges`) and `input_asym` the build that ships now.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.atomic import write_json_atomic
from unetpp.bench.provenance import provenance
from unetpp.compile import fast, ov_passes
from unetpp.compile.api import compile_model
from unetpp.data.paths import read_ids, resolve_data_dir
from unetpp.data.prepare import sample_image_path
from unetpp.data.selection import shipped_selection_path
from unetpp.eval.instance_io import load_gt_instances
from unetpp.eval.instance_metrics import instance_score, phantom_count
from unetpp.eval.modality import MODALITIES, modality
from unetpp.model.sources import model_source
from unetpp.predict.imageio import read_image
from unetpp.runtimes import get_runtime, open_runtime

VARIANTS = ("shipped", "nncf_ranges", "minmax", "first_conv_fp32", "mixed", "input_widened")
FIRST_CONV = "/conv0_0/conv1/Conv/WithoutBiases"


def nncf_kwargs(name: str) -> dict[str, Any]:
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    return {"nncf_ranges": {},
            "minmax": {"advanced_parameters": AdvancedQuantizationParameters(
                activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)},
            "first_conv_fp32": {"ignored_scope": nncf.IgnoredScope(names=[FIRST_CONV], validate=False)},
            "mixed": {"preset": nncf.QuantizationPreset.MIXED}}[name]


def build(name: str, src: Path, samples: list[np.ndarray], depth: int | None, folder: Path) -> Path:
    """The int8 IR with one NNCF setting and the input range as NNCF sets it (ov_passes.nncf_quantize and
    cover_input_range replaced for this build only)."""
    import nncf

    kwargs = nncf_kwargs(name)

    def quantize(model: Any, items: list[np.ndarray]) -> tuple[Any, dict[str, Any]]:
        data = nncf.Dataset([s[None].astype(np.float32) for s in items])
        return nncf.quantize(model, data, subset_size=len(items), **kwargs), {"method": f"nncf.quantize ({name})"}

    kept = ov_passes.nncf_quantize, ov_passes.cover_input_range
    ov_passes.nncf_quantize, ov_passes.cover_input_range = quantize, lambda model, items: {}
    try:
        out = folder / name / "instance-openvino-int8.xml"
        compile_model(src, "openvino", out, int8=True, samples=samples, depth=depth)
        return out
    finally:
        ov_passes.nncf_quantize, ov_passes.cover_input_range = kept


def widen_input_quantizer(model: Path, out: Path, low: float, high: float) -> Path:
    """A copy of an int8 IR whose input FakeQuantize is widened symmetrically to cover [low, high]."""
    import openvino as ov
    from openvino import opset13

    m = ov.Core().read_model(str(model))
    fq = ov_passes.input_quantizer(m)
    half = fq.get_levels() / 2
    scale = max(-low, high * half / (half - 1))
    for k, v in zip(range(1, 5), (-scale, scale * (half - 1) / half) * 2):
        shape = fq.input_value(k).get_node().get_data().shape
        fq.input(k).replace_source_output(opset13.constant(np.full(shape, v, np.float32)).output(0))
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(m, str(out), compress_to_fp16=False)
    return out


def score(labels: dict[str, np.ndarray], pictures: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, Any]:
    rows = {}
    for id_, img, truth in pictures:
        lab = labels[id_]
        rows[id_] = {"ap": float(instance_score(lab, truth).ap), "nuclei": int(np.unique(lab[lab > 0]).size),
                     "true": int(np.unique(truth[truth > 0]).size), "phantoms": phantom_count(lab, truth),
                     "modality": modality(img)}
    return rows


def summary(rows: dict[str, Any], reference: dict[str, Any], sets: dict[str, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for set_name, ids in sets.items():
        drops = np.array([reference[i]["ap"] - rows[i]["ap"] for i in ids])
        s: dict[str, Any] = {"images": len(ids), "map": float(np.mean([rows[i]["ap"] for i in ids])),
                             "drop": float(drops.mean()), "drop_se": float(drops.std(ddof=1) / np.sqrt(drops.size)),
                             "count_miss": sum(abs(rows[i]["nuclei"] - rows[i]["true"]) for i in ids)
                             / max(1, sum(rows[i]["true"] for i in ids))}
        for m in MODALITIES:
            sub = [rows[i] for i in ids if rows[i]["modality"] == m]
            if sub:
                s[m] = {"images": len(sub), "map": float(np.mean([r["ap"] for r in sub])),
                        "phantoms": sum(r["phantoms"] for r in sub), "nuclei": sum(r["nuclei"] for r in sub)}
        out[set_name] = s
    return out


def load(train: Path, id_: str) -> tuple[str, np.ndarray, np.ndarray]:
    return id_, read_image(sample_image_path(train, id_))[0], load_gt_instances(train, id_)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="DSB2018 root (default: $UNETPP_DATA or ./data/dsb2018)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    train = resolve_data_dir(a.data) / "stage1_train"
    selection = read_ids(shipped_selection_path())
    pictures = [load(train, i) for i in selection]
    bright = [i for i in read_ids(train.parent / "train_ids.txt") if i not in selection
              and modality(read_image(sample_image_path(train, i))[0]) == "brightfield"]
    pictures += [load(train, i) for i in bright]
    check_ids = [i for i, _, _ in fast.guard_set()]
    sets = {"check": check_ids, "selection": selection,
            "brightfield": [i for i, img, _ in pictures if modality(img) == "brightfield"]}
    src = model_source("instance")
    shipped = fast.choose_runtime("instance")
    with open_runtime(src, fast.REFERENCE, depth=shipped.depth) as fp32:
        reference = score(fast.predict_labels([(i, p) for i, p, _ in pictures], fp32), pictures)
        samples = fast.calibration_windows([(i, p) for i, p, _ in pictures if i in check_ids], fp32)
    low, high = min(float(s.min()) for s in samples), max(float(s.max()) for s in samples)
    results = {"fp32": summary(reference, reference, sets)}
    rows = {"fp32": reference}
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.variants.split(","):
            if name == "shipped":
                model = shipped.model
            elif name == "input_widened":
                model = widen_input_quantizer(build("nncf_ranges", src, samples, shipped.depth, Path(tmp)),
                                              Path(tmp) / name / "m.xml", low, high)
            else:
                model = build(name, src, samples, shipped.depth, Path(tmp))
            with get_runtime("openvino", model) as rt:
                rt.first_pass_model = shipped.first_pass
                rows[name] = score(fast.predict_labels([(i, p) for i, p, _ in pictures], rt), pictures)
            results[name] = summary(rows[name], reference, sets)
            print(name, {k: round(v["map"], 4) for k, v in results[name].items()}, flush=True)
    write_json_atomic(a.out, {**provenance(), "depth": shipped.depth, "calibration_input_range": [low, high],
                              "sets": {k: len(v) for k, v in sets.items()}, "summary": results, "rows": rows})


if __name__ == "__main__":
    main()
