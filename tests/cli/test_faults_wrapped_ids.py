"""Fault corpus, `unetpp evaluate --instances` on 8-bit label images: more than 255 nuclei wrap (id 256 becomes
background, 257 becomes 1 ...): the scores are wrong, and the command says so (stderr and summary.json) instead of
scoring without a word. 16-bit labels and 8-bit ones that fit are scored without a warning."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from unetpp.eval.instance_io import wrapped_ids_note

GRID = (18, 17)  # 306 nuclei of 3x3 px, 2 px apart
N = GRID[0] * GRID[1]


def _truth(k: int) -> np.ndarray:
    labels = np.zeros((5 * GRID[0], 5 * GRID[1]), np.uint16)
    for i in range(k):
        y, x = divmod(i, GRID[1])
        labels[5 * y + 1:5 * y + 4, 5 * x + 1:5 * x + 4] = i + 1
    return labels


@pytest.fixture()
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """stage1_train with one sample `many` of 306 nuclei (one mask PNG each) and one `few` of 40."""
    gt = tmp_path / "stage1_train"
    for name, k in (("many", N), ("few", 40)):
        truth = _truth(k)
        (gt / name / "images").mkdir(parents=True)
        cv2.imwrite(str(gt / name / "images" / f"{name}.png"), np.zeros((*truth.shape, 3), np.uint8))
        (gt / name / "masks").mkdir()
        for i in range(1, k + 1):
            cv2.imwrite(str(gt / name / "masks" / f"m{i:03d}.png"), ((truth == i) * 255).astype(np.uint8))
    return gt, tmp_path


def _evaluate(cli, gt: Path, pred: Path, out: Path):
    return cli("evaluate", "--instances", pred, "--gt", gt, "-o", out)


def test_wrapped_8bit_labels_are_scored_with_a_warning(cli, tree) -> None:
    gt, tmp = tree
    for kind, dtype in (("16bit", np.uint16), ("8bit", np.uint8)):
        pred = tmp / kind
        pred.mkdir()
        many = _truth(N) if dtype == np.uint16 else _truth(N) % 256  # what an 8-bit writer keeps of the ids
        cv2.imwrite(str(pred / "many_labels.png"), many.astype(dtype))
        cv2.imwrite(str(pred / "few_labels.png"), _truth(40).astype(dtype))
    good = _evaluate(cli, gt, tmp / "16bit", tmp / "r16")
    assert good.rc == 0 and "warning" not in good.err and "mAP (IoU 0.50-0.95): 1.0000" in good.out, good.err
    assert json.loads((tmp / "r16" / "summary.json").read_text())["warnings"] == []
    bad = _evaluate(cli, gt, tmp / "8bit", tmp / "r8")
    assert bad.rc == 0 and bad.says("warning", "1 prediction(s)", "many_labels.png", "8-bit", "16-bit"), bad.err
    assert "few_labels.png" not in bad.err
    assert "mAP (IoU 0.50-0.95): 1.0000" not in bad.out  # the wrapped ids did cost nuclei
    warnings = json.loads((tmp / "r8" / "summary.json").read_text())["warnings"]
    assert len(warnings) == 1 and "many_labels.png" in warnings[0]


def test_wrapped_ids_note_by_hand() -> None:
    assert wrapped_ids_note(_truth(40).astype(np.uint8)) is None  # fits in 8 bits
    assert wrapped_ids_note(_truth(N).astype(np.uint16)) is None  # 16-bit: never suspect
    assert "largest id is 255" in wrapped_ids_note(_truth(255).astype(np.uint8))
    note = wrapped_ids_note((_truth(N) % 256).astype(np.uint8))
    assert "50 id(s) cover regions that do not touch" in note  # ids 257..306 reuse 1..50
    touching = np.zeros((4, 6), np.uint8)
    touching[:, :3], touching[:, 3:] = 1, 2  # two nuclei that touch: no reuse
    touching[0, 0] = 0
    assert wrapped_ids_note(touching) is None
