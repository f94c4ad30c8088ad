"""Measures the fp32-vs-int8 per-image AP drop, and its standard error, on the shipped check set.

Run: python bench/int8_check/check_set_drop.py

Inputs: the shipped check images and labels (src/unetpp/weights/guard) and the cached int8 builds in
~/.cache/unetpp/fast (instance model at depth 3 and the first pass), made by a default predict run. Output: one line
on stdout with the mean drop (fp32 minus int8 pipeline), its standard error and the sorted per-image drops.
"""

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from unetpp.compile import fast  # noqa: E402
from unetpp.eval.instance_io import read_label_image  # noqa: E402
from unetpp.eval.instance_metrics import instance_score  # noqa: E402
from unetpp.model.sources import model_source  # noqa: E402
from unetpp.predict.imageio import read_image  # noqa: E402
from unetpp.runtimes import get_runtime, open_runtime  # noqa: E402

FAST_CACHE = Path(os.path.expanduser("~/.cache/unetpp/fast"))


def main():
    g = fast.guard_set()
    pics = [(i, read_image(a)[0]) for i, a, _ in g]
    truth = {i: read_label_image(lab) for i, _, lab in g}
    folder = FAST_CACHE / "nested_unet_instance-33d4765168303528-d3"
    fpx = sorted(FAST_CACHE.glob("*first-pass/openvino-int8.xml"))[0]

    ap = {}
    for main_prec, first_prec in (("fp32", "fp32"), ("int8", "int8")):
        if main_prec == "fp32":
            rt = open_runtime(model_source("instance"), "onnxruntime", depth=3)
        else:
            rt = get_runtime("openvino", folder / "openvino-int8.xml")
        with rt:
            rt.first_pass_model = fpx if first_prec == "int8" else None
            lab = fast.predict_labels(pics, rt)
        ap[main_prec] = np.array([instance_score(lab[i], truth[i]).ap for i in truth])
    d = ap["fp32"] - ap["int8"]
    print("drop", d.mean(), "se", d.std(ddof=1) / np.sqrt(len(d)), "per image", np.round(np.sort(d), 3))


if __name__ == "__main__":
    main()
