"""Bench rows measured through the product itself: `unetpp predict` then `unetpp evaluate --instances` in fresh
processes, and the default runtime's choice in a fresh process with a model cache of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

UNETPP = [sys.executable, "-m", "unetpp"]


def run_command(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Run one command; its wall time in seconds. A failure stops the bench with the command and its stderr."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def predict_and_score(data: Path, out: Path, extra: list[str], env: dict[str, str], threads: int,
                      cwd: Path) -> dict[str, Any]:
    """`unetpp predict` on DATA's val ids into OUT (then OUT_eval scored against the masks): the row's figures,
    the predict summary's rate and runtime choice, and the command."""
    from unetpp.data.paths import split_ids_file

    ids = str(split_ids_file(data, "val"))
    pred, ev = out, out.with_name(out.name + "_eval")
    cmd = [*UNETPP, "predict", str(data / "stage1_train"), "--ids", ids, "-o", str(pred), "--no-progress",
           "--overwrite", "--no-resume", "--threads", str(threads), *extra]
    wall = run_command(cmd, env, cwd)
    run_command([*UNETPP, "evaluate", "--instances", str(pred), "--gt", str(data), "--ids", ids, "-o", str(ev)],
                env, cwd)
    s = json.loads((ev / "summary.json").read_text())
    ps = json.loads((pred / "predict_summary.json").read_text())
    rt = ps["settings"]["runtime"]
    return {"command": "unetpp " + " ".join(cmd[3:]), "predict_wall_s": round(wall, 1),
            "images_per_s": ps.get("images_per_s"), "tiles_per_s": ps.get("tiles_per_s"),
            "n_images": ps["n_images"], "backend": rt.get("backend"), "model": Path(rt.get("model", "")).name,
            "selection": rt.get("selection"),
            **{k: s[k] for k in ("map", "ap_50", "ap_75", "pixel_iou", "n_true", "n_pred")}}


def choose_in_subprocess(env: dict[str, str], threads: int, depth: int | None = None,
                         cwd: Path | None = None) -> tuple[dict[str, Any], float]:
    """The default runtime's choice for the shipped instance model (building and checking it on first use) in a
    fresh process with `env`'s model cache: (its record, seconds)."""
    t0 = time.perf_counter()
    code = ("import json; from unetpp.compile.fast import choose_runtime; "
            f"c = choose_runtime('instance', depth={depth}, threads={threads}); print(json.dumps(c.describe()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1]), round(time.perf_counter() - t0, 1)
