"""The sweep's report, built from the per-cell JSONs only (so a GPU run's cells can be re-reported anywhere)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from unetpp.atomic import atomic_path, ensure_dir, write_text_atomic
from unetpp.errors import InputError, expected_found

# The guide's published throughputs (images/s) by batch size (REFERENCE.md).
GUIDE = {
    "310": {1: 1675, 4: 1868, 8: 1846, 16: 1758, 32: 1724},
    "310P3": {1: 1682, 4: 2496, 8: 1908, 16: 1852, 32: 1797},
    "T4": {1: 321, 4: 401, 8: 458, 16: 550, 32: 568},
}
CSV_FIELDS = ["label", "backend", "spec", "batch_size", "status", "error", "throughput_compute",
              "throughput_end_to_end", "lat_mean_ms", "lat_median_ms", "lat_p90_ms", "lat_p99_ms", "iters",
              "peak_gflops", "peak_images_per_s", "share_of_peak", "iou_guide", "n_scored", "n_inputs", "cpu", "gpu"]
DEFINITIONS = (
    "- **compute**: 1000 x batch / mean compute ms per call (ais_bench's definition; batches preloaded in memory, "
    "warm-up excluded).\n"
    "- **end to end**: images / wall-clock seconds over whole passes that read the inputs from disk, batch them "
    "(padding a short last batch), infer and write one output file per input.\n"
    "- **share of peak**: compute throughput / (GEMM GFLOP/s measured in the same run / 9.70 GFLOP per image); the "
    "best of the run's probe samples. int8 cells are held against the same fp32 yardstick, so they can exceed 1.\n"
    "- **guide IoU**: logits > 0.5, per-image IoU, plain mean, on the cell's own outputs.\n"
)


def load_cells(sources: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Every cell JSON under the given folders (a run folder or its cells/), in sweep order.

    Runs are kept in the order given; a label seen in an earlier run gets "@<run folder>" appended.
    """
    cells: list[dict[str, Any]] = []
    for k, src in enumerate(sources):
        src = Path(src)
        folder = src / "cells" if (src / "cells").is_dir() else src
        if not folder.is_dir():
            raise InputError(expected_found("bench results", "a folder of cell JSONs (or a run with cells/)",
                                            f"nothing at {src}"))
        taken = {c["label"] for c in cells}
        run = (src.parent if src.name == "cells" else src).name or str(src)
        for p in sorted(folder.glob("*.json")):
            cell = json.loads(p.read_text())
            if "batch_size" in cell and "label" in cell:
                if cell["label"] in taken:
                    cell["label"] = f"{cell['label']}@{run}"
                cell["order"] = 1000 * k + int(cell.get("order", 0))
                cells.append(cell)
    if not cells:
        raise InputError(expected_found("bench results", "at least one cell JSON",
                                        f"none in {', '.join(map(str, sources))}"))
    return sorted(cells, key=lambda c: (c.get("order", 0), c["batch_size"]))


def _labels(cells: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(c["label"] for c in cells))


def eager_label(cells: list[dict[str, Any]]) -> str | None:
    """The PyTorch eager column: the first measured torch backend without compile or CUDA graphs."""
    for c in cells:
        o = c.get("options", {})
        if c["backend"] == "torch" and c.get("status") == "ok" and not o.get("compile") and not o.get("cuda_graphs"):
            return c["label"]
    return None


def _fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def markdown(cells: list[dict[str, Any]], baseline: str | None = None) -> str:
    labels, sizes = _labels(cells), sorted({c["batch_size"] for c in cells})
    by = {(c["label"], c["batch_size"]): c for c in cells}
    baseline = baseline or eager_label(cells)

    def val(label: str, bs: int, get: Callable[[dict[str, Any]], float | None]) -> float | None:
        c = by.get((label, bs))
        return get(c) if c and c.get("status") == "ok" else None

    def cell_text(label: str, bs: int, get: Callable[[dict[str, Any]], float | None], digits: int = 1) -> str:
        c = by.get((label, bs))
        if c is None:
            return "—"
        return "failed" if c.get("status") != "ok" else _fmt(get(c), digits)

    def tput(c: dict[str, Any]) -> float | None:
        return c.get("throughput_compute")

    def ratio(a: float | None, b: float | None) -> str:
        return "—" if a is None or not b else f"{a / b:.3g}"

    machines = sorted({f"{c.get('machine', {}).get('cpu')} / GPU {c.get('machine', {}).get('gpu') or 'none'}"
                       for c in cells})
    out = ["# unetpp bench\n", "Machines: " + "; ".join(machines) + "\n", DEFINITIONS]

    measured = [lb for lb in labels if any(c["label"] == lb and c.get("status") == "ok" for c in cells)]
    others = [lb for lb in measured if lb != baseline] if baseline else []
    head = ["batch", *labels, *[f"{lb} / {baseline}" for lb in others], *GUIDE]
    rows = [[str(bs), *[cell_text(lb, bs, tput) for lb in labels],
             *[ratio(val(lb, bs, tput), val(baseline, bs, tput)) for lb in others],
             *[str(GUIDE[g].get(bs, "—")) for g in GUIDE]] for bs in sizes]
    note = f" Ratios against PyTorch eager ({baseline})." if baseline else " No PyTorch eager column in this sweep."
    out.append(f"## Throughput, compute only (images/s), laid out as the guide's section 7.3\n\nColumns 310, 310P3 "
               f"and T4 are the guide's published figures.{note}\n\n" + _table(head, rows))

    head = ["batch", *[f"{lb} / {g}" for lb in measured for g in GUIDE]]
    rows = [[str(bs), *[ratio(val(lb, bs, tput), GUIDE[g].get(bs)) for lb in measured for g in GUIDE]]
            for bs in sizes]
    out.append("## Ratio to the guide's published figures (compute-only throughput / published)\n\n"
               + _table(head, rows))

    sections = [
        ("Throughput, end to end (images/s: read + infer + write, wall clock)",
         lambda c: c.get("throughput_end_to_end"), 1),
        ("Latency per batch, mean (ms)", lambda c: c["latency_ms"]["mean"], 2),
        ("Latency per batch, median (ms)", lambda c: c["latency_ms"]["median"], 2),
        ("Latency per batch, p90 (ms)", lambda c: c["latency_ms"]["p90"], 2),
        ("Latency per batch, p99 (ms)", lambda c: c["latency_ms"]["p99"], 2),
        ("Share of the GEMM-probe limit (compute throughput / images-per-s limit)",
         lambda c: c.get("share_of_peak"), 2),
        ("Guide IoU of the cell's outputs", lambda c: c.get("iou_guide"), 4),
    ]
    for title, get, digits in sections:
        rows = [[str(bs), *[cell_text(lb, bs, get, digits) for lb in labels]] for bs in sizes]
        out.append(f"## {title}\n\n" + _table(["batch", *labels], rows))

    peaks = {(c["peak"]["device"], c["peak"]["dtype"]): c["peak"] for c in cells if "gflops" in (c.get("peak") or {})}
    if peaks:
        lines = []
        for p in peaks.values():
            samples = ", ".join(f"{g:.1f}" for g in p.get("samples_gflops") or [])
            lines.append(f"- {p['device_name']} {p['dtype']} ({p.get('threads') or '-'} threads): {p['gflops']:.1f} "
                         f"GFLOP/s ({p.get('library', '?')}) -> limit {p['images_per_s_limit']:.1f} images/s"
                         + (f"; samples {samples}" if samples else ""))
        out.append("## GEMM probe\n\n" + "\n".join(lines) + "\n")
    failed = [c for c in cells if c.get("status") != "ok"]
    if failed:
        out.append("## Failed cells\n\n" + "\n".join(f"- {c['label']} bs {c['batch_size']}: {c.get('error')}"
                                                      for c in failed) + "\n")
    return "\n".join(out)


def csv_text(cells: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for c in cells:
        lat, peak, m = c.get("latency_ms") or {}, c.get("peak") or {}, c.get("machine") or {}
        w.writerow({"label": c["label"], "backend": c["backend"], "spec": c.get("spec"), "batch_size": c["batch_size"],
                    "status": c.get("status"), "error": c.get("error", ""),
                    "throughput_compute": c.get("throughput_compute"),
                    "throughput_end_to_end": c.get("throughput_end_to_end"), "lat_mean_ms": lat.get("mean"),
                    "lat_median_ms": lat.get("median"), "lat_p90_ms": lat.get("p90"), "lat_p99_ms": lat.get("p99"),
                    "iters": c.get("iters"), "peak_gflops": peak.get("gflops"),
                    "peak_images_per_s": peak.get("images_per_s_limit"), "share_of_peak": c.get("share_of_peak"),
                    "iou_guide": c.get("iou_guide"), "n_scored": c.get("n_scored"), "n_inputs": c.get("n_inputs"),
                    "cpu": m.get("cpu"), "gpu": m.get("gpu")})
    return buf.getvalue()


def plot(cells: list[dict[str, Any]], path: Path) -> None:
    """Throughput (compute solid, end to end dashed) and mean latency against batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for lb in _labels(cells):
        ok = sorted((c for c in cells if c["label"] == lb and c.get("status") == "ok"), key=lambda c: c["batch_size"])
        if not ok:
            continue
        bs = [c["batch_size"] for c in ok]
        line = ax1.plot(bs, [c["throughput_compute"] for c in ok], "o-", label=f"{lb} (compute)")[0]
        ax1.plot(bs, [c["throughput_end_to_end"] for c in ok], "s--", color=line.get_color(),
                 label=f"{lb} (end to end)")
        ax2.plot(bs, [c["latency_ms"]["mean"] for c in ok], "o-", color=line.get_color(), label=lb)
    sizes = sorted({c["batch_size"] for c in cells if c.get("status") == "ok"})
    for ax, ylabel in ((ax1, "images / s"), (ax2, "mean latency per batch (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    ax1.set_title("Throughput")
    ax2.set_title("Latency")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_report(sources: Sequence[str | Path], out: str | Path, baseline: str | None = None) -> dict[str, Path]:
    """results.csv, results.md and throughput.png in `out`, from the cell JSONs under `sources`."""
    cells = load_cells(sources)
    out = ensure_dir(out)
    paths = {"csv": out / "results.csv", "md": out / "results.md", "png": out / "throughput.png"}
    write_text_atomic(paths["csv"], csv_text(cells))
    write_text_atomic(paths["md"], markdown(cells, baseline))
    plot(cells, paths["png"])
    return paths
