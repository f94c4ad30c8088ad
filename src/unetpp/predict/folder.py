"""`predict_paths`: many images, one runtime, per-file failures collected, resumable, with a run summary."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from unetpp.atomic import write_json_atomic, write_text_atomic
from unetpp.errors import InputError, OutputError, expected_found
from unetpp.log import logger
from unetpp.predict.image import PredictOptions, output_paths
from unetpp.predict.sources import (  # noqa: F401 - re-exported
    COUNTS,
    GALLERY,
    OUTPUT_SUFFIXES,
    RUN_NAMES,
    SUMMARY,
    Gathered,
    Source,
    gather_sources,
    is_own_output,
)
from unetpp.predict.table import counts_csv
from unetpp.runtimes import Runtime

LEGACY_PATTERNS = tuple(f"*{suf}" for suf in OUTPUT_SUFFIXES) + (SUMMARY, COUNTS, GALLERY)


def gather_images(inputs: Sequence[str | Path], ids: Sequence[str] | None = None) -> list[tuple[Path, str]]:
    """(path, stem) per image (pages of a stack are (path, <stem>_p<k>)): see predict/sources.py."""
    return [(s.path, s.stem) for s in gather_sources(inputs, ids).sources]


def _previous(out_dir: Path, settings: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Records of an earlier run into OUT with the same settings (so its complete images can be skipped), else
    None: outputs of unknown or different settings are recomputed. The summary is written when a run starts, so
    an interrupted run resumes too."""
    f = out_dir / SUMMARY
    try:
        old = json.loads(f.read_text()) if f.is_file() else None
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict) or stable_settings(old.get("settings") or {}) != stable_settings(settings):
        return None
    return {r["stem"]: r for r in old.get("images", [])}


def stable_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that decide the outputs: the runtime's thread counts do not, nor the record of why it was
    chosen (its check's date and figures: the backend and the model file are in the settings already)."""
    runtime = dict(settings.get("runtime") or {})
    runtime.pop("selection", None)
    runtime["options"] = {k: v for k, v in (runtime.get("options") or {}).items() if "thread" not in k}
    return {**settings, "runtime": runtime}


def check_paths(inputs: Sequence[str | Path], out_dir: str | Path, ids: Sequence[str] | None = None) -> Any:
    """The inputs and the output folder, checked before any model is opened or built: an output folder that is
    not unetpp's, one that overlaps an input, a missing input or no image at all is refused here. Returns the
    gathered sources."""
    from unetpp.core.outputs import folder_problem, refuse_inputs_inside
    from unetpp.core.runfolder import refuse_overlap

    out_dir = Path(out_dir)
    refuse_overlap(out_dir, list(inputs))
    problem = folder_problem(out_dir, "predict")  # also checked by the run folder; here before the model loads
    if problem:
        raise InputError(problem)
    gathered = gather_sources(inputs, ids)
    refuse_inputs_inside(out_dir, [s.path for s in gathered.sources if s.path.exists()])
    if not gathered.sources:
        raise InputError(expected_found("images to predict", "at least one image file", "none in " + ", ".join(
            str(i) for i in inputs) + (f" ({len(gathered.skipped)} file(s) that are not images)"
                                       if gathered.skipped else "")))
    return gathered


def predict_paths(inputs: Sequence[str | Path], out_dir: str | Path, runtime: Runtime,
                  options: PredictOptions | None = None, ids: Sequence[str] | None = None,
                  progress: bool = True, executor: Any = None, overwrite: bool = False,
                  resume: bool = True) -> dict[str, Any]:
    """Predict every image on the driver; a bad file is recorded as a failure and the run goes on. Images whose
    outputs are all present from a run with the same settings are skipped. Writes OUT/predict_summary.json and
    OUT/counts.csv. `executor` (default: this process) decides where the images run (core.executors). OUT is a
    run folder (core.runfolder): other settings are refused unless `overwrite`; an input folder may not overlap
    it."""
    from unetpp.core.executors import LocalExecutor
    from unetpp.core.runfolder import RunFolder

    options = options or PredictOptions()
    out_dir = Path(out_dir)
    gathered = check_paths(inputs, out_dir, ids)
    executor = executor or LocalExecutor()
    owned = not runtime.active  # a runtime the caller activated stays active
    runtime.activate()
    try:
        from unetpp.predict.work import model_protocol, resolve_mode

        options = resolve_mode(options, runtime.metadata)  # the run folder records the mode that runs
        applied = model_protocol(runtime).apply(options)  # and the values that decide, the model's own included
        settings = json.loads(json.dumps({"options": options.to_dict(), "protocol": applied.to_dict(),
                                          "runtime": runtime.describe()}, default=str))
        planned = [p for s in gathered.sources for p in output_paths(out_dir, s.stem, options).values()]
        planned += [out_dir / n for n in (SUMMARY, COUNTS) + ((GALLERY,) if options.overlay else ())]
        with RunFolder(out_dir, stable_settings(settings), overwrite=overwrite, command="predict", files=planned,
                       legacy_patterns=LEGACY_PATTERNS) as folder:
            summary = _predict(gathered, out_dir, runtime, options, settings, progress, executor, resume)
            folder.finish({k: summary[k] for k in ("n_images", "n_predicted", "n_skipped", "n_failed")},
                          failed=summary["n_failed"])
    finally:
        if owned:
            runtime.deactivate()
    return summary


def _predict(gathered: Gathered, out_dir: Path, runtime: Runtime, options: PredictOptions,
             settings: dict[str, Any], progress: bool, executor: Any, resume: bool = True) -> dict[str, Any]:
    from unetpp.core.driver import DriverSettings
    from unetpp.core.executors import run_batches
    from unetpp.core.summary import driver_figures
    from unetpp.predict.work import PredictItem, work_for

    previous = _previous(out_dir, settings) if resume else None
    if previous is None:
        write_json_atomic(out_dir / SUMMARY, {"status": "running", "settings": settings, "images": []})
    failures: list[dict[str, str]] = []
    seen: dict[str, Path] = {}
    todo = []
    for src in gathered.sources:
        if src.stem in seen:
            failures.append({"image": str(src.path), "error": expected_found(
                f"image {src.path}", "a file name (stem) not used by another input", f"{src.stem!r} also from "
                f"{seen[src.stem]}", "rename one of them or predict them into different folders")})
            continue
        seen[src.stem] = src.path
        todo.append(PredictItem(src.stem, path=src.path, page=src.page))
    work = work_for(runtime, options, out_dir, previous)
    bar = tqdm(total=len(todo), desc="predict", unit="img",
               disable=not progress or len(todo) < 4 or executor.name != "local")
    t0 = time.perf_counter()
    try:
        result = run_batches(todo, work, runtime if executor.name == "local" else runtime.inactive_copy(),
                             DriverSettings(batch_size=options.batch, resume=previous is not None,
                                            progress=bar.update), executor)
    finally:
        bar.close()
    for f in result.failures:
        failures.append({"image": f["key"], "error": f["error"]})
        if progress:
            logger("predict").warning(f"predict: {f['error']}")
    order = {work.key(it): i for i, it in enumerate(todo)}
    records = sorted(result.skipped + result.records, key=lambda r: order.get(r.get("key"), -1))
    for r in records:
        r.pop("key", None)
    n_skipped = len(result.skipped)
    figures = driver_figures(result)
    uncertain = [{"image": r["stem"], "why": r["scale_check"]["uncertain"]} for r in records
                 if (r.get("scale_check") or {}).get("uncertain")]
    summary = {
        "status": "partial" if failures else "complete", "n_images": len(gathered.sources),
        "n_predicted": len(records) - n_skipped, "n_skipped": n_skipped,
        "n_failed": len(failures), "seconds": round(time.perf_counter() - t0, 3),
        "nuclei_total": sum(int(r["nuclei"]) for r in records), "out_dir": str(out_dir),
        "settings": settings, "date": datetime.now().isoformat(timespec="seconds"),
        "tiles_per_s": figures["units_per_s_end_to_end"], "images_per_s": figures["throughput_end_to_end"],
        "timing": figures, "images": records, "failures": failures, "engine": executor.name,
        "notes": gathered.notes() + scale_notes(uncertain), "scale_uncertain": uncertain,
        "skipped_not_images": [str(p) for p in gathered.skipped],
        "repeated_inputs": [str(p) for p in gathered.repeated],
        **getattr(executor, "info", {}),
    }
    summary.pop("runtime", None)
    try:
        write_text_atomic(out_dir / COUNTS, counts_csv(records))
        if options.overlay:
            _gallery(out_dir, records, summary)
        write_json_atomic(out_dir / SUMMARY, summary)
    except OSError as exc:
        raise OutputError(f"cannot write the run summary in {out_dir}: {exc}") from None
    return summary


def scale_notes(uncertain: list[dict[str, str]], shown: int = 5) -> list[str]:
    """One note per image whose automatic scale is uncertain (the first few, then a count)."""
    notes = [f"note: the automatic scale of {u['image']} is uncertain: {u['why']}; check its outputs (--overlays) "
             "or give --scale" for u in uncertain[:shown]]
    if len(uncertain) > shown:
        notes.append(f"note: the automatic scale of {len(uncertain) - shown} more image(s) is uncertain "
                     f"({SUMMARY}: scale_uncertain)")
    return notes


def _gallery(out_dir: Path, records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """OUT/index.html: every image's overlay with its size and nucleus count (no ground truth here)."""
    from unetpp.report.gallery import GalleryItem, write_gallery

    items = [GalleryItem(r["stem"], f"{r['stem']}_overlay.png", int(r["width"]), int(r["height"]), int(r["nuclei"]))
             for r in records]
    totals = {"images": len(records), "failed": summary["n_failed"], "nuclei": summary["nuclei_total"],
              "mode": summary["settings"]["options"]["mode"], "date": summary["date"]}
    write_gallery(out_dir / GALLERY, items, totals, title=f"unetpp predict: {out_dir.name}")


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"predicted {summary['n_predicted']} image(s), skipped {summary['n_skipped']} already complete, "
             f"{summary['n_failed']} failed; {summary['nuclei_total']} nuclei in all; {summary['seconds']:.1f} s",
             f"outputs in {summary['out_dir']} ({SUMMARY}, {COUNTS}"
             + (f", {GALLERY})" if summary["settings"]["options"].get("overlay") else ")")]
    if summary.get("scale_uncertain"):
        lines.append(f"automatic scale uncertain for {len(summary['scale_uncertain'])} image(s): "
                     + ", ".join(u["image"] for u in summary["scale_uncertain"][:10])
                     + (" ..." if len(summary["scale_uncertain"]) > 10 else ""))
    if summary.get("skipped_not_images"):
        lines.append(f"skipped {len(summary['skipped_not_images'])} file(s) that are not images")
    if summary["failures"]:
        lines.append(f"failures ({summary['n_failed']}):")
        lines += [f"  {f['image']}: {f['error']}" for f in summary["failures"]]
    return "\n".join(lines)
