"""Measures the whole default predict pipeline on the selection ids with fp32/int8 main model and fp32/int8 first pass.

Run: UNETPP_DATA=data/dsb2018 python bench/int8_check/selection_pipelines.py [FIRST_PASS_INT8_XML]

Inputs: DSB2018 stage1_train under $UNETPP_DATA, the 138 selection ids (src/unetpp/data/splits/selection_ids.txt),
the cached int8 builds in ~/.cache/unetpp/fast (instance model at depth 3, and the int8 first pass unless its xml
is given as argv[1]). Output: one line per (main, first pass) pair on stdout with its mAP and count error.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from unetpp.compile import fast  # noqa: E402
from unetpp.eval.instance_io import load_gt_instances  # noqa: E402
from unetpp.eval.instance_metrics import dataset_score, instance_score  # noqa: E402
from unetpp.model.sources import model_source  # noqa: E402
from unetpp.predict.imageio import read_image  # noqa: E402
from unetpp.runtimes import get_runtime, open_runtime  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FAST_CACHE = Path(os.path.expanduser("~/.cache/unetpp/fast"))


def main():
    root = Path(os.environ.get("UNETPP_DATA", "data/dsb2018")) / "stage1_train"
    sel = (REPO / "src/unetpp/data/splits/selection_ids.txt").read_text().split()
    pics = [(i, read_image(next((root / i / "images").glob("*.png")))[0]) for i in sel]
    truth = {i: load_gt_instances(root, i) for i in sel}
    folder = FAST_CACHE / "nested_unet_instance-33d4765168303528-d3"
    fpx = Path(sys.argv[1]) if len(sys.argv) > 1 else sorted(FAST_CACHE.glob("*first-pass/openvino-int8.xml"))[0]

    res = {}
    for main_prec, first_prec in (("fp32", "fp32"), ("fp32", "int8"), ("int8", "int8")):
        if main_prec == "fp32":
            rt = open_runtime(model_source("instance"), "onnxruntime", depth=3)
        else:
            rt = get_runtime("openvino", folder / "openvino-int8.xml")
        with rt:
            rt.first_pass_model = fpx if first_prec == "int8" else None
            labels = fast.predict_labels(pics, rt)
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
        res[f"{main_prec}_{first_prec}"] = {i: s.map if hasattr(s, "map") else None for i, s in sc.items()}


if __name__ == "__main__":
    main()
