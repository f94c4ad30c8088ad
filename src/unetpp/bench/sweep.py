"""`unetpp bench`: backends x batch sizes over real inputs; one JSON per cell, then the report from those JSONs."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.atomic import ensure_dir, write_json_atomic
from unetpp.bench.cell import run_cell
from unetpp.bench.machine import describe_machine
from unetpp.bench.probe import gemm_gflops, probe_key
from unetpp.bench.report import write_report
from unetpp.bench.spec import BackendSpec
from unetpp.core.outputs import refuse_inputs_inside
from unetpp.core.runfolder import RunFolder, refuse_overlap
from unetpp.errors import InputError, expected_found
from unetpp.infer.inputs import gather_inputs, screen_sizes
from unetpp.model.resolve import is_checkpoint
from unetpp.runtimes import get_runtime, runtime_class

DEFAULT_BATCH_SIZES = (1, 4, 8, 16, 32)
# Seconds each GEMM-probe sample times each library: 1 s, or less when the cells' own timed loops are shorter
# (--min-seconds): a quick sweep gets a quick yardstick, and a full one the same as before.
PROBE_SECONDS = 1.0


def cell_filename(label: str, bs: int) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}_bs{bs}.json"


class _Models:
    """Which file each backend gets: the spec's own, else --model/--checkpoint; ONNX exported once if needed."""

    def __init__(self, model: Path | None, checkpoint: Path | None, out: Path) -> None:
        self.model, self.checkpoint, self.out = model, checkpoint, out
        self._exported: Path | None = None

    def _checkpoint(self) -> Path:
        if self.checkpoint is not None:
            return self.checkpoint
        if self.model is not None and is_checkpoint(self.model):
            return self.model
        from unetpp.model.checkpoint import shipped_checkpoint

        return shipped_checkpoint()

    def for_spec(self, spec: BackendSpec) -> Path:
        if spec.model:
            return Path(spec.model)
        suffixes = runtime_class(spec.backend).suffixes  # what the runtime opens, as it states itself
        if self.model is not None and self.model.suffix.lower() in suffixes:
            return self.model
        if ".onnx" not in suffixes:
            return self._checkpoint()
        if self._exported is None:
            from unetpp.model.export import export_onnx

            self._exported = self.out / "model.onnx"
            export_onnx(self._checkpoint(), self._exported)
        return self._exported


REPORT_FILES = ("results.csv", "results.md", "throughput.png")
LEGACY_PATTERNS = ("cells/*.json", "machine.json", "model.onnx", "model.onnx.parity.json", *REPORT_FILES)


def _error(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"


def run_sweep(specs: Sequence[BackendSpec], inputs: str | Path, out: str | Path,
              batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, masks: str | Path | None = None,
              model: str | Path | None = None, checkpoint: str | Path | None = None, threads: int | None = None,
              warmup: int = 2, min_seconds: float = 2.0, min_iters: int = 10, baseline: str | None = None,
              repeats: int = 1, log: Any = None, overwrite: bool = False) -> list[dict[str, Any]]:
    """Measure every (spec, batch size) cell `repeats` times, round-robin; a failing cell is recorded and the sweep
    goes on. A cell reports its median round; the yardstick is the best GEMM probe of the run (probed before the
    first round and after each), since a busy machine only ever lowers a probe. `out` is a run folder
    (core.runfolder): a sweep with other settings is refused there unless `overwrite`."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if not specs:
        raise InputError(expected_found("--backends", "at least one backend spec", "none"))
    for spec in specs:
        runtime_class(spec.backend)  # an unknown backend is refused before any work (it lists the known ones)
    if not batch_sizes or any(int(b) < 1 for b in batch_sizes):
        raise InputError(expected_found("--batch-sizes", "positive integers", list(batch_sizes)))
    if min_iters < 1 or min_seconds < 0 or warmup < 0 or repeats < 1:
        raise InputError(expected_found("--min-iters/--min-seconds/--warmup/--repeats",
                                        "min-iters >= 1, repeats >= 1, others >= 0",
                                        f"{min_iters}, {min_seconds}, {warmup}, {repeats}"))
    files = gather_inputs([inputs])
    _, bad = screen_sizes(files)
    if bad:
        raise InputError(next(iter(bad.values())))
    masks_dir = Path(masks) if masks is not None else None
    if masks_dir is not None and not masks_dir.is_dir():
        raise InputError(expected_found("--masks", "a folder of <id>.png", f"nothing at {masks_dir}"))
    refuse_overlap(out, [inputs] + ([masks_dir] if masks_dir else []))
    refuse_inputs_inside(out, files)
    settings = {"backends": [s.to_dict() for s in specs], "batch_sizes": [int(b) for b in batch_sizes],
                "inputs": str(inputs), "masks": str(masks_dir or ""), "model": str(model or ""),
                "checkpoint": str(checkpoint or ""), "threads": threads, "warmup": warmup,
                "min_seconds": min_seconds, "min_iters": min_iters, "repeats": repeats}
    planned = [Path(out) / "cells" / cell_filename(s.label, int(b)) for s in specs for b in batch_sizes]
    planned += [Path(out) / n for n in (*REPORT_FILES, "machine.json", "model.onnx", "model.onnx.parity.json")]
    with RunFolder(out, settings, overwrite=overwrite, command="bench", log=log, files=planned,
                   legacy_patterns=LEGACY_PATTERNS) as folder:
        cells = _sweep(specs, files, Path(out), batch_sizes, masks_dir, model, checkpoint, threads, warmup,
                       min_seconds, min_iters, baseline, repeats, log, str(inputs))
        failed = [c for c in cells if c["status"] != "ok"]
        folder.finish({"cells": len(cells), "failed": len(failed)}, failed=len(failed))
    return cells


def _sweep(specs: Sequence[BackendSpec], files: list[Path], out: Path, batch_sizes: Sequence[int],
           masks_dir: Path | None, model: str | Path | None, checkpoint: str | Path | None, threads: int | None,
           warmup: int, min_seconds: float, min_iters: int, baseline: str | None, repeats: int, log: Any,
           inputs: str) -> list[dict[str, Any]]:
    out = ensure_dir(out)
    cells_dir = ensure_dir(out / "cells")
    machine = describe_machine()
    probes = _Probes(threads, min(PROBE_SECONDS, min_seconds))
    probes.sample(("cpu", "fp32"))
    models = _Models(Path(model) if model else None, Path(checkpoint) if checkpoint else None, out)
    heads: dict[tuple[int, int], dict[str, Any]] = {}
    rounds: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for r in range(repeats):
        for order, spec in enumerate(specs):
            options = dict(spec.options)
            if threads and "threads" not in options:
                options["threads"] = threads
            rt, setup_error = None, None
            try:
                rt = get_runtime(spec.backend, models.for_spec(spec), **options).activate()
            except Exception as exc:  # noqa: BLE001 - any failure (package, device, file) becomes the cell's record
                setup_error = _error(exc)
            for bs in batch_sizes:
                key = (order, int(bs))
                heads.setdefault(key, {**spec.to_dict(), "options": options, "order": order, "batch_size": int(bs),
                                       "n_inputs": len(files), "inputs": str(inputs), "masks": str(masks_dir or ""),
                                       "date": datetime.now().isoformat(timespec="seconds"),
                                       "machine": {k: machine[k] for k in ("cpu", "cores", "gpu", "hostname")}})
                result = _measure(rt, setup_error, files, int(bs), masks_dir, warmup, min_seconds, min_iters)
                if result["status"] == "ok":
                    probes.sample(probe_key(spec.backend, options), only_if_new=True)
                rounds.setdefault(key, []).append({"round": r, **result})
                cell = _combine(heads[key], rounds[key], probes)
                write_json_atomic(cells_dir / cell_filename(spec.label, int(bs)), cell)
                log(f"[round {r + 1}/{repeats}] " + _progress_line({**heads[key], **result}))
            if rt is not None:
                rt.deactivate()
        for key in list(probes.samples):
            probes.sample(key)
    cells = []
    for key in sorted(heads, key=lambda k: (k[0], batch_sizes.index(k[1]) if k[1] in batch_sizes else k[1])):
        cell = _combine(heads[key], rounds[key], probes)
        write_json_atomic(cells_dir / cell_filename(cell["label"], cell["batch_size"]), cell)
        cells.append(cell)
    machine["probes"] = [s for samples in probes.samples.values() for s in samples]
    machine["peaks"] = [probes.best(k) for k in probes.samples]
    write_json_atomic(out / "machine.json", machine)
    write_report([cells_dir], out, baseline=baseline)
    return cells




def _measure(rt: Any, setup_error: str | None, files: list[Path], bs: int, masks_dir: Path | None, warmup: int,
             min_seconds: float, min_iters: int) -> dict[str, Any]:
    if rt is None:
        return {"status": "error", "error": setup_error}
    try:
        return {"status": "ok", "runtime": rt.describe(),
                **run_cell(rt, files, bs, masks_dir, warmup, min_seconds, min_iters)}
    except Exception as exc:  # noqa: BLE001 - out of memory, CUDA errors: record and go on
        return {"status": "error", "error": _error(exc)}


def _combine(head: dict[str, Any], rounds: list[dict[str, Any]], probes: _Probes) -> dict[str, Any]:
    """The cell: its median round by compute throughput (lower median for an even count), end-to-end throughput
    as the median over rounds, every round's figures kept, share of the run's best probe."""
    ok = [r for r in rounds if r["status"] == "ok"]
    summary = [{k: r.get(k) for k in ("round", "status", "throughput_compute", "throughput_end_to_end", "iou_guide",
                                      "error")} for r in rounds]
    if not ok:
        return {**head, **rounds[-1], "rounds": summary}
    ranked = sorted(ok, key=lambda r: r["throughput_compute"])
    cell = {**head, **ranked[(len(ranked) - 1) // 2], "rounds": summary, "repeats": len(rounds)}
    cell["throughput_end_to_end"] = float(np.median([r["throughput_end_to_end"] for r in ok]))
    cell.pop("round", None)
    peak = probes.best(probe_key(head["backend"], head["options"]))
    cell["peak"] = peak
    cell["share_of_peak"] = cell["throughput_compute"] / peak["images_per_s_limit"] if "gflops" in peak else None
    return cell


class _Probes:
    """GEMM yardsticks per (device, dtype), sampled several times; the best sample is the machine's limit. Each
    sample times each library for `seconds` (after one warm-up call)."""

    def __init__(self, threads: int | None, seconds: float = PROBE_SECONDS) -> None:
        self.threads = threads
        self.seconds = seconds
        self.samples: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def sample(self, key: tuple[str, str], only_if_new: bool = False) -> None:
        if only_if_new and key in self.samples:
            return
        try:
            s = gemm_gflops(device=key[0], dtype=key[1], threads=self.threads if key[0] == "cpu" else None,
                            min_seconds=self.seconds)
        except Exception as exc:  # noqa: BLE001 - the cells' numbers stand without a yardstick
            s = {"device": key[0], "dtype": key[1], "error": _error(exc)}
        self.samples.setdefault(key, []).append(s)

    def best(self, key: tuple[str, str]) -> dict[str, Any]:
        found = self.samples.get(key) or [{"device": key[0], "dtype": key[1], "error": "not probed"}]
        ok = [s for s in found if "gflops" in s]
        if not ok:
            return found[-1]
        best = max(ok, key=lambda s: s["gflops"])
        return {**best, "samples_gflops": [s["gflops"] for s in ok]}


def _progress_line(cell: dict[str, Any]) -> str:
    head = f"{cell['label']:<28} bs {cell['batch_size']:>3}: "
    if cell["status"] != "ok":
        return head + f"FAILED ({cell['error']})"
    iou = f", IoU {cell['iou_guide']:.4f}" if cell.get("iou_guide") is not None else ""
    share = f", {100 * cell['share_of_peak']:.0f}% of GEMM peak" if cell.get("share_of_peak") is not None else ""
    return head + (f"{cell['throughput_compute']:.1f} img/s compute, {cell['throughput_end_to_end']:.1f} img/s "
                   f"end to end, mean {cell['latency_ms']['mean']:.1f} ms/batch{share}{iou}")
