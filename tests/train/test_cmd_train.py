"""`unetpp train` end to end on a generated stand-in set (prepares into OUT/dsb2018_96, trains, resumes)."""

from __future__ import annotations

import csv

from unetpp.cli.main import main
from unetpp.data.synthetic import make_synthetic_dsb
from unetpp.model.checkpoint import load_checkpoint


def test_cli_prepares_trains_and_refuses_a_changed_resume(tmp_path, capsys):
    root = make_synthetic_dsb(tmp_path / "syn", n=3, seed=0, n_val=1)
    out = tmp_path / "run"
    args = ["train", "--data", str(root), "--out", str(out), "--epochs", "1", "--batch-size", "2", "--limit", "2",
            "--optimizer", "Adam", "--loss", "LovaszHingeLoss", "--no-progress"]
    assert main(args) == 0
    assert len(list((out / "dsb2018_96" / "images").glob("*.png"))) == 3
    assert len(list((out / "dsb2018_96" / "masks" / "0").glob("*.png"))) == 3
    with open(out / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["epoch"] == "1"
    ck = load_checkpoint(out / "best.pt")
    assert ck.meta["train_config"]["loss"] == "LovaszHingeLoss" and ck.meta["n_train"] == 2
    assert "done: 1/1 epochs" in capsys.readouterr().out

    # resuming a finished run with the same options is a no-op; with other options it is refused, no traceback
    assert main([*args, "--resume"]) == 0
    assert main([*args[:-1], "--lr", "0.01", "--resume"]) != 0
    err = capsys.readouterr().err
    assert "unetpp train: error:" in err and "train_config.lr" in err and "Traceback" not in err
    # starting over an existing run without --resume is refused
    assert main(args) != 0
    assert "--resume" in capsys.readouterr().err
