"""Single process vs Ray workers on this machine: the 134 val inputs, the shipped checkpoint exported to ONNX.

    flock -x /tmp/unetpp-cpu.lock .venv/bin/python bench/speed/ray_scaling.py [--repeats 3] [--batchsize 16]

Configurations: local engine with 2 threads; Ray 1 worker x 2 threads; Ray 2 workers x 1 thread (embedded Ray,
started and stopped inside every run, so its start-up is measured every time). Figures are end to end (reading,
inference, writing), as images/s:
- with start-up: 134 / wall clock of the whole API call (Ray start-up, worker start-up, session creation included);
- execution: 134 / the run after start-up (local: after session creation and warm-up; Ray: the Ray Data
  execution, worker start-up, session creation and warm-up included);
- steady state: local = execution; Ray = sum over workers of images / that worker's time after its warm-up.
Every run's outputs are compared byte for byte with the first local run's. Writes bench/results/ray_scaling_cpu.*
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from unetpp.bench.provenance import repo_root

REPO = repo_root(__file__)
CONFIGS = [("local", 1, 2), ("ray", 1, 2), ("ray", 2, 1)]  # (engine, workers, threads per worker)


def prepare(work: Path, data: Path, prepared: Path | None) -> tuple[Path, Path]:
    """The ONNX export of the shipped checkpoint and the 134 val inputs as .bin (made once, then reused)."""
    from unetpp.data.paths import read_ids
    from unetpp.data.prepare import prepare_dsb2018
    from unetpp.data.preprocess import preprocess_folder
    from unetpp.model.export import export_onnx

    model, bins = work / "model.onnx", work / "prep_dataset"
    ids = read_ids(data / "val_ids.txt")
    if not model.is_file():
        export_onnx(None, model)
    if len(list(bins.glob("*.bin"))) != len(ids):
        if prepared is None:
            prepared = work / "dsb2018_96"
            prepare_dsb2018(data / "stage1_train", prepared, ids=ids, progress=False)
        preprocess_folder(prepared / "images", bins, ids, progress=False)
    return model, bins


def one_run(engine: str, workers: int, threads: int, model: Path, bins: Path, out: Path, batchsize: int) -> dict:
    from unetpp.core.executors import RayExecutor
    from unetpp.core.ray import RayOptions
    from unetpp.infer.run import run_inference

    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    if engine == "local":
        s = run_inference(model, [bins], out, output_dirname="run", batch_size=batchsize,
                          backend_options={"threads": threads}, progress=False)
    else:
        s = run_inference(model, [bins], out, output_dirname="run", batch_size=batchsize, progress=False,
                          backend_options={"threads": threads},
                          executor=RayExecutor(RayOptions(num_workers=workers, threads=threads, progress=False)))
    wall = time.perf_counter() - t0
    n = s["n_outputs"]
    ray = s.get("ray", {})
    exec_s = ray.get("execution_s") or n / s["throughput_end_to_end"]
    return {"wall_s": wall, "startup_s": ray.get("startup_s", wall - exec_s), "execution_s": exec_s,
            "ips_with_startup": n / wall, "ips_execution": n / exec_s,
            "ips_steady": s.get("throughput_steady_state") or s["throughput_end_to_end"],
            "ips_compute_only": s["throughput_compute"], "n_outputs": n, "load_avg_1min_before": load,
            "workers": s.get("workers"), "cluster": s.get("cluster"), "runtime": s["runtime"]}


def same_outputs(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        "# Ray scaling on CPU: single process vs Ray workers", "",
        f"- machine: {m['cpu']}, {m['usable_cores']} usable cores ({m['cores']} in all), {m['os']}, "
        f"Python {m['python']}",
        f"- Ray {res['ray_version']}, onnxruntime {res['onnxruntime_version']}, batch size {res['batchsize']}, "
        f"{res['n_images']} val inputs (DSB2018), model: shipped checkpoint exported to ONNX",
        f"- command: `{res['command']}`",
        f"- medians of {res['repeats']} repeats (configurations interleaved); images/s end to end (read + infer + "
        "write); outputs byte-identical to the single-process run: "
        + ("yes, every run" if res["all_identical"] else "NO (see JSON)"), "",
        "| configuration | wall s | start-up s | execution s | images/s incl. start-up | images/s execution "
        "| images/s steady state | images/s compute only |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in res["configs"]:
        md = c["median"]
        lines.append(f"| {c['name']} | {md['wall_s']:.1f} | {md['startup_s']:.1f} | {md['execution_s']:.1f} "
                     f"| {md['ips_with_startup']:.2f} | {md['ips_execution']:.2f} | {md['ips_steady']:.2f} "
                     f"| {md['ips_compute_only']:.2f} |")
    lines += ["", "Start-up: local = session creation + warm-up; Ray = ray.init of an embedded Ray + a probe task "
              "that opens the model on a worker. Execution (Ray) includes starting the worker processes, creating "
              "their sessions and one warm-up each. Steady state (Ray) = sum over workers of images / the worker's "
              "active time after warm-up. Wall - start-up - execution = summary writing and (Ray) ray.shutdown. "
              "Compute only = ais_bench's 1000 x batch / mean ms per runtime call, per worker (not summed). "
              "Shared machine: see load_avg_1min_before per run in the JSON.", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO / "data" / "dsb2018")
    ap.add_argument("--prepared", type=Path, default=None, help="a prepared 96 px dataset (images/<id>.png)")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "ray_bench")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batchsize", type=int, default=16)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ray_scaling_cpu")
    ap.add_argument("--markdown-only", action="store_true", help="rewrite OUT.md from OUT.json, run nothing")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if a.markdown_only:
        from unetpp.atomic import write_text_atomic

        write_text_atomic(a.out.with_suffix(".md"), markdown(json.loads(a.out.with_suffix(".json").read_text())))
        return 0

    import onnxruntime
    import ray

    from unetpp.atomic import write_json_atomic, write_text_atomic
    from unetpp.bench.provenance import provenance

    model, bins = prepare(a.work, a.data, a.prepared)
    n_images = len(list(bins.glob("*.bin")))
    runs: dict[str, list[dict]] = {}
    identical = True
    reference = a.work / "out_reference"
    for rep in range(a.repeats):
        for engine, workers, threads in CONFIGS:
            name = "single process (local), 2 threads" if engine == "local" else \
                f"Ray {workers} worker{'s' if workers > 1 else ''} x {threads} thread{'s' if threads > 1 else ''}"
            out = a.work / f"out_{engine}_{workers}x{threads}"
            r = one_run(engine, workers, threads, model, bins, out, a.batchsize)
            if rep == 0 and engine == "local":
                shutil.rmtree(reference, ignore_errors=True)
                shutil.copytree(out / "run", reference)
            r["identical_to_local"] = same_outputs(out / "run", reference)
            identical &= r["identical_to_local"]
            runs.setdefault(name, []).append(r)
            print(f"[{rep + 1}/{a.repeats}] {name}: wall {r['wall_s']:.1f} s, start-up {r['startup_s']:.1f} s, "
                  f"{r['ips_execution']:.2f} images/s execution, {r['ips_steady']:.2f} steady, "
                  f"identical {r['identical_to_local']}", flush=True)
    keys = ("wall_s", "startup_s", "execution_s", "ips_with_startup", "ips_execution", "ips_steady", "ips_compute_only")
    res = {
        **provenance(),
        "command": "flock -x /tmp/unetpp-cpu.lock " + " ".join(
            shlex.quote(x) for x in [os.path.relpath(sys.executable, Path.cwd()), *sys.argv]),
        "platform": platform.platform(), "ray_version": ray.__version__,
        "onnxruntime_version": onnxruntime.__version__, "batchsize": a.batchsize, "n_images": n_images,
        "repeats": a.repeats, "all_identical": identical, "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "configs": [{"name": name, "median": {k: statistics.median(r[k] for r in rs) for k in keys}, "runs": rs}
                    for name, rs in runs.items()],
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(a.out.with_suffix(".json"), res)
    write_text_atomic(a.out.with_suffix(".md"), markdown(res))
    print(markdown(res))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
