"""Measures the whole default predict pipeline on the selection ids with fp32/int8 main model and fp32/int8 first pass.

Run: UNETPP_DATA=data/dsb2018 python -m bench.int8_check.selection_pipelines [FIRST_PASS_INT8_XML]

Inputs: DSB2018 stage1_train under $UNETPP_DATA, the 138 selection ids (src/unetpp/data/splits/selection_ids.txt),
the default runtime's int8 builds (pipelines.default_builds: instance model at depth 3, and the int8 first pass
unless its xml is given as argv[1]). Output: one line per (main, first pass) pair on stdout with its mAP and count
error.
"""

import os
import sys
from pathlib import Path

from bench.int8_check.pipelines import default_builds, pipeline_labels
from unetpp.bench.provenance import repo_root
from unetpp.eval.instance_io import load_gt_instances
from unetpp.eval.instance_metrics import dataset_score, instance_score
from unetpp.predict.imageio import read_image

REPO = repo_root(__file__)


def main():
    root = Path(os.environ.get("UNETPP_DATA", "data/dsb2018")) / "stage1_train"
    sel = (REPO / "src/unetpp/data/splits/selection_ids.txt").read_text().split()
    pics = [(i, read_image(next((root / i / "images").glob("*.png")))[0]) for i in sel]
    truth = {i: load_gt_instances(root, i) for i in sel}
    main_int8, first_int8 = default_builds()
    if len(sys.argv) > 1:
        first_int8 = Path(sys.argv[1])

    for main_prec, first_prec in (("fp32", "fp32"), ("fp32", "int8"), ("int8", "int8")):
        labels = pipeline_labels(pics, main_prec, first_prec, main_int8, first_int8)
        sc = {i: instance_score(labels[i], truth[i]) for i in sel}
        n = sum(int(labels[i].max()) for i in sel)
        nt = sum(int(truth[i].max()) for i in sel)
        print(
            main_prec,
            first_prec,
            f"mAP {dataset_score(list(sc.values())):.4f}",
            f"count {100 * (n / nt - 1):+.1f}%",
            flush=True,
        )


if __name__ == "__main__":
    main()
