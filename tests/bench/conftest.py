"""A tiny bench setup: 3 generated nuclei inputs with masks, a random-weights checkpoint and its ONNX export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetpp.config import INPUT_NAME, OUTPUT_NAME
from unetpp.data.prepare import prepare_dsb2018
from unetpp.data.preprocess import list_inputs, preprocess_folder, read_input
from unetpp.data.synthetic import make_synthetic_dsb
from unetpp.model.checkpoint import save_checkpoint
from unetpp.model.network import build_model


@pytest.fixture(scope="session")
def bench_setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("bench")
    root = make_synthetic_dsb(base / "syn", n=4, seed=5, n_val=3)
    prepare_dsb2018(root / "stage1_train", base / "d96", progress=False)
    ids = (root / "val_ids.txt").read_text().split()
    preprocess_folder(base / "d96" / "images", base / "inputs", ids, progress=False)
    torch.manual_seed(1)
    model = build_model().eval()
    onnx_path = base / "m.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 96, 96), str(onnx_path), dynamo=False, opset_version=11,
                      input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    ckpt = save_checkpoint(base / "m.pt", model)
    files = list_inputs(base / "inputs")
    with torch.no_grad():
        logits = model(torch.from_numpy(np.stack([read_input(p) for p in files]))).numpy()[:, 0]
    return {"base": base, "inputs": base / "inputs", "masks": base / "d96" / "masks" / "0", "onnx": onnx_path,
            "checkpoint": ckpt, "ids": [p.stem for p in files], "logits": logits}
