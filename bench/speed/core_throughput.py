"""How close `unetpp infer` and `unetpp predict` come to their runtime's compute-only speed, and how unetpp compares
with OpenVINO's own benchmark_app on the same model file; all measured side by side in one run.

    python bench/speed/core_throughput.py [--data data/dsb2018] [--work runs/main] [--rounds 3] [--pause PID]

Needs `make run` done first (runs/main/prep_dataset, runs/main/nested_unet.onnx). `--pause PID` stops a background
job (SIGSTOP) while measuring and resumes it (SIGCONT) after. Writes bench/results/core_throughput_cpu.{md,json}.

Definitions (every figure says which):
- compute only: images (or tiles) / seconds inside runtime calls, batches preloaded in memory (ais_bench's);
- end to end: images (or tiles) / wall seconds of the whole command's run after warm-up (read, pre-process,
  infer, post-process, write), from the command's own summary; the process start-up is reported apart;
- benchmark_app: OpenVINO's own tool, `-hint throughput`, its reported "Throughput" (host wall per inference).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from unetpp.bench.provenance import repo_root

ROOT = repo_root(__file__)
PY = sys.executable
UNETPP = [PY, "-m", "unetpp"]



def _provenance(doc: dict, rounds: list[dict]) -> str:
    """The results file's line on where, when and how it was measured."""
    m = doc["machine"]
    return (f"Machine: {m['cpu']}, {m['usable_cores']} usable cores; {doc['date']}; `{doc['command']}`; "
            f"{len(rounds)} rounds, medians; load average before each round: "
            + ", ".join(f"{r['load_avg_before']:.1f}" for r in rounds) + ".")

def run(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return wall, p.stdout + p.stderr


def compute_only(model: Path, bins: Path, backend: str, batch_sizes: list[int], options: dict) -> dict[int, float]:
    """Images/s inside runtime calls at each batch size, inputs preloaded (the bench cell's own measurement)."""
    code = (
        "import json,sys; from pathlib import Path; from unetpp.bench.cell import measure_compute;"
        "from unetpp.infer.inputs import gather_inputs; from unetpp.runtimes import get_runtime;"
        f"files=gather_inputs([Path({str(bins)!r})]); out={{}}\n"
        f"with get_runtime({backend!r}, Path({str(model)!r}), **{options!r}) as rt:\n"
        f"    for bs in {batch_sizes!r}:\n"
        "        out[bs]=measure_compute(rt, files, bs, 3, 8.0, 10)['throughput_compute']\n"
        "print('RESULT', json.dumps(out))"
    )
    _, text = run([PY, "-c", code])
    return {int(k): v for k, v in json.loads(text.split("RESULT", 1)[1]).items()}


def infer_cell(model: Path, bins: Path, backend: str, bs: int, options: list[str], tmp: Path) -> dict:
    out = tmp / f"infer_{backend}_{bs}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [*UNETPP, "infer", "--model", str(model), "--input", str(bins), "--output", str(out), "--output-dirname",
           "r", "--batchsize", str(bs), "--backend", backend, "--no-progress"]
    for o in options:
        cmd += ["--backend-option", o]
    wall, _ = run(cmd)
    s = json.loads((out / "r_summary.json").read_text())
    return {"process_wall_s": wall, "throughput_compute": s["throughput_compute"],
            "throughput_end_to_end": s["throughput_end_to_end"], "run_wall_s": s["wall_s"],
            "n": s["n_outputs"], "ratio": s["throughput_end_to_end"] / s["throughput_compute"]}


def predict_cell(data: Path, tmp: Path, extra: list[str]) -> dict:
    out = tmp / "predict"
    shutil.rmtree(out, ignore_errors=True)
    wall, _ = run([*UNETPP, "predict", str(data / "stage1_train"), "--ids", str(data / "val_ids.txt"), "-o", str(out),
                   "--mode", "tile", "--no-progress", *extra])
    s = json.loads((out / "predict_summary.json").read_text())
    t = s["timing"]
    return {"process_wall_s": wall, "tiles": t["n_units"], "images": s["n_predicted"], "tiles_per_s": s["tiles_per_s"],
            "images_per_s": s["images_per_s"], "tiles_per_s_compute": t["throughput_compute"],
            "mean_batch": t["mean_batch"], "run_wall_s": t["wall_s"]}


def benchmark_app(model: Path, precision: str | None, seconds: int = 15, data: Path | None = None) -> float:
    """OpenVINO's tool on the same model file; with `data`, on that real input (-ip f32 -i FILE): its own random
    data is faster than ours (the guide's extra /255 gives tiny, partly denormal activations)."""
    exe = shutil.which("benchmark_app") or str(Path(PY).parent / "benchmark_app")
    extra = ["-infer_precision", precision] if precision else []
    if data is not None:
        extra += ["-ip", "f32", "-i", str(data)]
    _, text = run([exe, "-m", str(model), "-d", "CPU", "-hint", "throughput", "-shape", "[1,3,96,96]",
                   "-t", str(seconds), *extra])
    m = re.search(r"Throughput:\s*([\d.]+)\s*FPS", text)
    if not m:
        raise SystemExit(f"benchmark_app printed no throughput:\n{text[-1500:]}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "dsb2018")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "main")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pause", type=int, default=None, help="PID of a background job to stop while measuring")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "core_throughput_cpu")
    ap.add_argument("--only-openvino", action="store_true", help="only the OpenVINO rows (into OUT_openvino)")
    args = ap.parse_args()
    model, bins = args.work / "nested_unet.onnx", args.work / "prep_dataset"
    if args.pause:
        os.kill(args.pause, signal.SIGSTOP)
    rounds: list[dict] = []
    try:
        with tempfile.TemporaryDirectory(prefix="unetpp-core-bench-") as tmp_s:
            tmp = Path(tmp_s)
            for r in range(args.rounds):
                rec = {"round": r, "load_avg_before": os.getloadavg()[0]}
                if not args.only_openvino:
                    rec["ort_compute_only"] = compute_only(model, bins, "onnxruntime", [1, 4, 8, 16], {})
                    rec["ort_infer_bs16"] = infer_cell(model, bins, "onnxruntime", 16, [], tmp)
                    rec["ort_predict_tile"] = predict_cell(args.data, tmp, ["--precision", "fp32"])
                real = sorted(bins.glob("*.bin"))[0]
                rec["ov_benchmark_app_real_input"] = benchmark_app(model, "f32", data=real)
                rec["ov_infer_bs1_throughput_hint"] = infer_cell(model, bins, "openvino", 1, ["hint=throughput"], tmp)
                rec["ov_benchmark_app"] = benchmark_app(model, "f32")
                rec["ov_bf16_infer_bs1"] = infer_cell(model, bins, "openvino", 1, ["hint=throughput",
                                                                                  "precision=bf16"], tmp)
                rec["ov_bf16_benchmark_app"] = benchmark_app(model, None)  # its default here: bf16
                rounds.append(rec)
                print(json.dumps(rec), flush=True)
    finally:
        if args.pause:
            os.kill(args.pause, signal.SIGCONT)
    if args.only_openvino:
        write_openvino(rounds, args.out.with_name(args.out.name + "_openvino"))
    else:
        write(rounds, args.out)


def write_openvino(rounds: list[dict], out: Path) -> None:
    from unetpp.bench.provenance import provenance

    ov = [r["ov_infer_bs1_throughput_hint"]["throughput_compute"] for r in rounds]
    real = [r["ov_benchmark_app_real_input"] for r in rounds]
    rand = [r["ov_benchmark_app"] for r in rounds]
    bf = [r["ov_bf16_infer_bs1"]["throughput_compute"] for r in rounds]
    bfa = [r["ov_bf16_benchmark_app"] for r in rounds]
    doc = {"rounds": rounds, **provenance()}
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        "# OpenVINO through unetpp vs OpenVINO's own benchmark_app, same model file (fp32 ONNX), batch 1", "",
        _provenance(doc, rounds), "",
        "| what | images/s |", "|---|---:|",
        f"| `unetpp infer --backend openvino --backend-option hint=throughput` (134 real inputs, compute only, "
        f"overlapped requests counted once) | {med(ov):.2f} |",
        f"| `benchmark_app -hint throughput -infer_precision f32 -ip f32 -i <one real input>` | {med(real):.2f} |",
        f"| **unetpp / benchmark_app on real input** | **{100 * med([a / b for a, b in zip(ov, real)]):.0f} %** |",
        f"| `benchmark_app` on its own random data (f32) | {med(rand):.2f} |",
        f"| unetpp with `precision=bf16` | {med(bf):.2f} |",
        f"| `benchmark_app`, default precision (bf16 here), its random data | {med(bfa):.2f} |", "",
        "benchmark_app's own random input runs faster than the real one: the guide's extra /255 makes the "
        "activations tiny and partly denormal. On the same real input the two agree; the figures in the first "
        "rows are the comparable ones.", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


def med(values: list[float]) -> float:
    return float(statistics.median(values))


def write(rounds: list[dict], out: Path) -> None:
    from unetpp.bench.provenance import provenance

    ort_best = [max(r["ort_compute_only"].values()) for r in rounds]
    ort_best_bs = [max(r["ort_compute_only"], key=r["ort_compute_only"].get) for r in rounds]
    pred = [r["ort_predict_tile"] for r in rounds]
    inf = [r["ort_infer_bs16"] for r in rounds]
    ov = [r["ov_infer_bs1_throughput_hint"] for r in rounds]
    summary = {
        "predict_tiles_per_s": med([p["tiles_per_s"] for p in pred]),
        "ort_compute_only_best": med(ort_best),
        "predict_ratio": med([p["tiles_per_s"] / b for p, b in zip(pred, ort_best)]),
        "infer_end_to_end": med([i["throughput_end_to_end"] for i in inf]),
        "infer_compute_only": med([i["throughput_compute"] for i in inf]),
        "infer_ratio": med([i["ratio"] for i in inf]),
        "ov_unetpp_end_to_end": med([o["throughput_end_to_end"] for o in ov]),
        "ov_unetpp_compute": med([o["throughput_compute"] for o in ov]),
        "ov_benchmark_app": med([r["ov_benchmark_app"] for r in rounds]),
    }
    summary["ov_ratio_vs_benchmark_app"] = med([o["throughput_compute"] / r["ov_benchmark_app"]
                                                for o, r in zip(ov, rounds)])
    bf = [r["ov_bf16_infer_bs1"] for r in rounds]
    summary["ov_bf16_unetpp_compute"] = med([o["throughput_compute"] for o in bf])
    summary["ov_bf16_benchmark_app"] = med([r["ov_bf16_benchmark_app"] for r in rounds])
    summary["ov_bf16_ratio"] = med([o["throughput_compute"] / r["ov_bf16_benchmark_app"] for o, r in zip(bf, rounds)])
    doc = {"summary": summary, "rounds": rounds, **provenance()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        "# The inference core: end to end vs compute only, and vs OpenVINO's benchmark_app", "",
        _provenance(doc, rounds), "",
        "| what | figure | definition |", "|---|---:|---|",
        f"| `unetpp predict --mode tile`, 134 val images | {summary['predict_tiles_per_s']:.2f} tiles/s | end to end "
        "(decode, tiles, infer, blend, split, write), from predict_summary.json |",
        f"| ONNX Runtime, same model, best batch ({', '.join(map(str, ort_best_bs))}) | "
        f"{summary['ort_compute_only_best']:.2f} images/s | compute only, inputs preloaded |",
        f"| **predict / compute only** | **{100 * summary['predict_ratio']:.0f} %** | goal >= 85 % |",
        f"| `unetpp infer`, ORT, bs16, 134 inputs | {summary['infer_end_to_end']:.2f} images/s | end to end |",
        f"| the same run | {summary['infer_compute_only']:.2f} images/s | compute only |",
        f"| **infer end to end / compute only** | **{100 * summary['infer_ratio']:.0f} %** | goal >= 90 % |",
        f"| `unetpp infer --backend openvino --backend-option hint=throughput`, bs1 | "
        f"{summary['ov_unetpp_compute']:.2f} images/s | compute only (overlapped requests counted once) |",
        f"| the same run | {summary['ov_unetpp_end_to_end']:.2f} images/s | end to end |",
        f"| `benchmark_app -hint throughput -shape [1,3,96,96] -infer_precision f32`, same .onnx | "
        f"{summary['ov_benchmark_app']:.2f} images/s | OpenVINO's own figure |",
        f"| **unetpp / benchmark_app, f32** | **{100 * summary['ov_ratio_vs_benchmark_app']:.0f} %** | goal >= 100 % |",
        f"| unetpp, the same with `--backend-option precision=bf16` | {summary['ov_bf16_unetpp_compute']:.2f} images/s "
        "| compute only |",
        f"| `benchmark_app`, its default precision (bf16 on this OpenVINO) | {summary['ov_bf16_benchmark_app']:.2f} "
        "images/s | OpenVINO's own figure |",
        f"| **unetpp / benchmark_app, bf16** | **{100 * summary['ov_bf16_ratio']:.0f} %** | |",
        "", "Per-round figures are in the JSON beside this file.", "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
