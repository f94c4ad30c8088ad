"""Measures the fp32-vs-int8 per-image AP drop, and its standard error, on the shipped check set.

Run: python -m bench.int8_check.check_set_drop

Inputs: the shipped check images and labels (src/unetpp/weights/guard) and the default runtime's int8 builds
(instance model at depth 3 and the first pass: pipelines.default_builds, from the model cache). Output: one line
on stdout with the mean drop (fp32 minus int8 pipeline), its standard error and the sorted per-image drops.
"""


import numpy as np

from bench.int8_check.pipelines import default_builds, pipeline_labels
from unetpp.compile import fast
from unetpp.eval.instance_io import read_label_image
from unetpp.eval.instance_metrics import instance_score
from unetpp.predict.imageio import read_image


def main():
    g = fast.guard_set()
    pics = [(i, read_image(a)[0]) for i, a, _ in g]
    truth = {i: read_label_image(lab) for i, _, lab in g}
    main_int8, first_int8 = default_builds()

    ap = {}
    for main_prec, first_prec in (("fp32", "fp32"), ("int8", "int8")):
        lab = pipeline_labels(pics, main_prec, first_prec, main_int8, first_int8)
        ap[main_prec] = np.array([instance_score(lab[i], truth[i]).ap for i in truth])
    d = ap["fp32"] - ap["int8"]
    print("drop", d.mean(), "se", d.std(ddof=1) / np.sqrt(len(d)), "per image", np.round(np.sort(d), 3))


if __name__ == "__main__":
    main()
