"""The training loop on a tiny prepared set: learning, log.csv, checkpoints, exact resume, clear refusals."""

from __future__ import annotations

import csv

import pytest
import torch

from unetpp.config import ModelConfig, TrainConfig
from unetpp.errors import CheckpointError, OutputError
from unetpp.model.checkpoint import load_checkpoint
from unetpp.train.loop import LOG_COLUMNS, train

EXPECTED_COLUMNS = ["epoch", "lr", "train_loss", "train_iou_upstream", "val_loss", "val_iou_guide",
                    "val_iou_upstream", "bn_recalibrated", "epoch_time_s"]


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_few_steps_lower_the_loss_and_write_log_and_best(tiny_prepared, tmp_path):
    root, train_ids, val_ids = tiny_prepared
    train_ids, val_ids = train_ids[:4], val_ids[:2]
    cfg = TrainConfig(epochs=3, batch_size=4, optimizer="Adam", augment=False, seed=1)
    out = tmp_path / "run"
    result = train(cfg, root, out, train_ids, val_ids, progress=False)
    rows = _rows(out / "log.csv")
    assert list(rows[0]) == EXPECTED_COLUMNS == list(LOG_COLUMNS)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < losses[0]
    # cosine from 1e-3 to 1e-5 over 3 epochs, logged at the start of each epoch: min + (max - min)(1 + cos(pi e/3))/2
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == pytest.approx([1e-3, 1e-5 + (1e-3 - 1e-5) * 0.75, 1e-5 + (1e-3 - 1e-5) * 0.25])
    guide = [float(r["val_iou_guide"]) for r in rows]
    assert result["best_epoch"] == 1 + guide.index(max(guide))
    ck = load_checkpoint(out / "best.pt")
    assert ck.meta["epoch"] == result["best_epoch"] and ck.meta["val_iou_guide"] == pytest.approx(max(guide))
    assert ck.meta["train_config"]["optimizer"] == "Adam" and ck.config == ModelConfig()
    assert result["epochs_completed"] == 3 and not result["stopped_early"] and result["amp"] is False


def test_stop_and_resume_reaches_the_uninterrupted_state(tiny_prepared, tmp_path):
    root, train_ids, val_ids = tiny_prepared
    train_ids, val_ids = train_ids[:4], val_ids[:2]
    cfg = TrainConfig(epochs=2, batch_size=2, seed=5, bn_recalibrate=True, lr=1e-2)
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(cfg, root, straight, train_ids, val_ids, progress=False)

    first = train(cfg, root, split, train_ids, val_ids, progress=False, time_limit_s=0)
    assert first["stopped_early"] and first["epochs_completed"] == 1
    with pytest.raises(OutputError, match="--resume"):
        train(cfg, root, split, train_ids, val_ids, progress=False)
    with pytest.raises(CheckpointError, match="lr"):
        train(TrainConfig(epochs=2, batch_size=2, seed=5, bn_recalibrate=True), root, split, train_ids, val_ids,
              progress=False, resume=True)
    torch.manual_seed(1234)  # global RNG state must not matter
    second = train(cfg, root, split, train_ids, val_ids, progress=False, resume=True)
    assert second["epochs_completed"] == 2 and not second["stopped_early"]

    a, b = (torch.load(d / "last.pt", weights_only=True) for d in (straight, split))
    assert a["epoch"] == b["epoch"] == 2
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for pid, st in a["optimizer"]["state"].items():
        assert torch.equal(st["momentum_buffer"], b["optimizer"]["state"][pid]["momentum_buffer"])
    assert a["scheduler"] == b["scheduler"] and a["best"] == b["best"]
    strip = [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in a["log"]]
    assert strip == [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in b["log"]]
    rows_a, rows_b = _rows(straight / "log.csv"), _rows(split / "log.csv")
    assert [r["val_iou_guide"] for r in rows_a] == [r["val_iou_guide"] for r in rows_b]
    assert all(r["bn_recalibrated"] == "1" for r in rows_b)
    best_a, best_b = (torch.load(d / "best.pt", weights_only=True)["state_dict"] for d in (straight, split))
    assert all(torch.equal(v, best_b[k]) for k, v in best_a.items())
