"""Measures NNCF int8 variants of the instance model at depth 3 on the selection ids outside the check set.

Run: UNETPP_DATA=data/dsb2018 python -m bench.int8_check.quantisation_variants

Inputs: DSB2018 stage1_train under $UNETPP_DATA, the selection ids (src/unetpp/data/splits/selection_ids.txt) less
the shipped check set, whose windows calibrate every build. Variants: NNCF defaults, no fast bias correction, the
first and last convolutions ignored (kept fp32), and both. Outputs: the builds at $OUT/q_<variant>.xml (default
/tmp/int8_check), and on stdout the fp32 mAP, then per variant its mAP, drop against fp32, build time and the
time for 8 windows.
"""

import os
import time
from pathlib import Path

import nncf
import numpy as np

from unetpp.bench.provenance import repo_root
from unetpp.compile import fast
from unetpp.compile.api import compile_model
from unetpp.eval.instance_io import load_gt_instances
from unetpp.eval.instance_metrics import dataset_score, instance_score
from unetpp.model.sources import model_source
from unetpp.predict.imageio import read_image
from unetpp.runtimes import get_runtime, open_runtime

REPO = repo_root(__file__)
IGNORE_ENDS = [".*conv0_0/conv1/.*", ".*final.*"]
VARIANTS = {
    "default": {},
    "no_fast_bc": {"fast_bias_correction": False},
    "ignore_ends": {"ignored_scope": nncf.IgnoredScope(patterns=IGNORE_ENDS)},
    "ignore_ends_no_fast_bc": {"fast_bias_correction": False, "ignored_scope": nncf.IgnoredScope(patterns=IGNORE_ENDS)},
}


def quantize_with(orig, overrides):
    """`orig` (nncf.quantize) with `overrides` added to its keyword arguments."""

    def quantize(model, dataset, **kwargs):
        return orig(model, dataset, **{**kwargs, **overrides})

    return quantize


def main():
    root = Path(os.environ.get("UNETPP_DATA", "data/dsb2018")) / "stage1_train"
    guard = [i for i, _, _ in fast.guard_set()]
    sel = [i for i in (REPO / "src/unetpp/data/splits/selection_ids.txt").read_text().split() if i not in guard]
    pics = [(i, read_image(next((root / i / "images").glob("*.png")))[0]) for i in sel]
    truth = {i: load_gt_instances(root, i) for i in sel}
    gp = [(i, read_image(a)[0]) for i, a, _ in fast.guard_set()]
    src = model_source("instance")

    def score(rt):
        labels = fast.predict_labels(pics, rt)
        return dataset_score([instance_score(labels[i], truth[i]) for i in sel])

    with open_runtime(src, "onnxruntime", depth=3) as fp32:
        samples = fast.calibration_windows(gp, fp32)
        ref = score(fp32)
    print("fp32", round(ref, 4), flush=True)

    orig = nncf.quantize
    for name, kw in VARIANTS.items():
        nncf.quantize = quantize_with(orig, kw)
        out = Path(os.environ.get("OUT", "/tmp/int8_check")) / f"q_{name}.xml"
        t = time.perf_counter()
        compile_model(src, "openvino", out, int8=True, samples=samples, depth=3)
        with get_runtime("openvino", out) as rt:
            s = score(rt)
            x = np.stack([w for w in samples if w.shape == samples[0].shape][:8])
            t1 = time.perf_counter()
            for _ in range(3):
                rt.infer(x)
            ms = (time.perf_counter() - t1) / 3 * 1000
        print(
            name,
            f"mAP {s:.4f} drop {ref - s:.4f}  build {time.perf_counter() - t:.0f}s  8 windows {ms:.0f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
