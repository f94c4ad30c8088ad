"""The instance training loop on a tiny synthetic stage1_train: log, checkpoints, exact resume, init, CLI."""

from __future__ import annotations

import csv

import pytest
import torch

from unetpp.cli.main import build_parser
from unetpp.config import ModelConfig, PreprocessConfig
from unetpp.errors import CheckpointError, InputError, OutputError
from unetpp.model.checkpoint import load_checkpoint, save_checkpoint
from unetpp.train.instance_loop import LOG_COLUMNS, split_holdout, train_instance
from unetpp.train.instance_model import ChannelBCEDice, InstanceTrainConfig, init_instance_model


def _cfg(**kw) -> InstanceTrainConfig:
    base = dict(epochs=2, batch_size=2, crop=32, view_size=32, holdout=2, init="none", target_area=60.0, seed=3)
    return InstanceTrainConfig(**{**base, **kw})


def test_one_epoch_writes_log_and_loadable_checkpoints(tiny_stage1, tmp_path):
    root, ids = tiny_stage1
    out = tmp_path / "run"
    result = train_instance(_cfg(epochs=1), root, out, ids[:6], progress=False, verbose=False)
    with open(out / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(LOG_COLUMNS) and len(rows) == 1
    assert 0.0 <= float(rows[0]["heldout_map"]) <= 1.0
    assert result["n_fit"] == 4 and result["n_heldout"] == 2 and result["best_epoch"] == 1
    for name in ("best.pt", "latest.pt"):
        ck = load_checkpoint(out / name)
        assert ck.config == ModelConfig(num_classes=2)
        assert ck.meta["outputs"] == ["foreground", "border"]
        assert ck.meta["scale"]["rule"] == "nuclei@60" and ck.meta["scale"]["target_area"] == 60.0
        assert ck.meta["heldout_ids"] == ids[4:6]
    assert (out / "instances_cache.npz").is_file() and (out / "last.pt").is_file()


def test_stop_and_resume_reaches_the_uninterrupted_state(tiny_stage1, tmp_path):
    root, ids = tiny_stage1
    straight, split = tmp_path / "straight", tmp_path / "split"
    cfg = _cfg()
    kw = dict(progress=False, verbose=False)
    train_instance(cfg, root, straight, ids[:6], **kw)
    first = train_instance(cfg, root, split, ids[:6], time_limit_s=0, **kw)
    assert first["stopped_early"] and first["epochs_completed"] == 1
    with pytest.raises(OutputError, match="--resume"):
        train_instance(cfg, root, split, ids[:6], **kw)
    with pytest.raises(CheckpointError, match="lr"):
        train_instance(_cfg(lr=1e-3), root, split, ids[:6], resume=True, **kw)
    torch.manual_seed(999)  # the global RNG must not matter
    # BatchNorm re-estimation only changes the evaluation: allowed to differ on resume, same weights in the end
    train_instance(cfg, root, split, ids[:6], resume=True, bn_recalibrate=4, **kw)
    a = torch.load(straight / "last.pt", weights_only=True)
    b = torch.load(split / "last.pt", weights_only=True)
    for k, v in a["model"].items():
        if "running_" not in k and "num_batches_tracked" not in k:  # BatchNorm buffers: evaluation only
            assert torch.equal(v, b["model"][k]), k
    assert [r["train_loss"] for r in a["log"]] == [r["train_loss"] for r in b["log"]]
    assert [r["bn_recalibrated"] for r in b["log"]] == [0, 4]


def test_init_from_shipped_keeps_channel_zero():
    model = init_instance_model("shipped", seed=0).eval()
    ref = load_checkpoint(None).model
    x = torch.randn(1, 3, 16, 16) * 0.01
    with torch.no_grad():
        assert torch.equal(model(x)[:, :1], ref(x))
    assert model.final.weight.shape == (2, 32, 1, 1)


def test_init_from_an_instance_checkpoint_takes_every_weight(tmp_path):
    src = init_instance_model("none", seed=5).eval()
    path = tmp_path / "instance.pt"
    save_checkpoint(path, src, PreprocessConfig())
    model = init_instance_model(str(path), seed=0).eval()
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_loss_weights_the_border_channel_and_config_checks():
    logits, target = torch.zeros(2, 2, 8, 8), torch.zeros(2, 2, 8, 8)
    target[:, 1, 2:4, 2:4] = 1
    fg, border = ChannelBCEDice(3.0).parts(logits, target)
    assert float(ChannelBCEDice(3.0)(logits, target)) == pytest.approx(float(fg + 3.0 * border))
    with pytest.raises(Exception, match="multiple of 16"):
        InstanceTrainConfig(crop=40)
    with pytest.raises(InputError, match="held out"):
        split_holdout(["a", "b"], 2)


def test_cli_registers_train_instance_with_help_for_every_option():
    parser = build_parser("train-instance")
    sub = next(a for a in parser._actions if a.dest == "command")
    p = sub.choices["train-instance"]
    for action in p._actions:
        if action.dest != "help":
            assert action.help, action.dest
    args = p.parse_args(["--out", "x", "--limit", "8", "--epochs", "1"])
    assert args.limit == 8 and args.target_area == 150.0 and args.jitter == [0.8, 1.25]
