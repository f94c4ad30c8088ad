"""`unetpp compile`: the guide's `atc` step for ONNX Runtime (optimised/int8 ONNX) and OpenVINO (IR)."""

from __future__ import annotations

import argparse
from pathlib import Path

from unetpp.cli.options import add_output, add_static_batch, count
from unetpp.cli.runtime_options import add_depth
from unetpp.compile import compile_model, report_path


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("compile", help="build a deployable model: optimised or int8 ONNX, or OpenVINO IR",
                       description="Compile MODEL (.onnx, an IR .xml for openvino, or a checkpoint .pt/.pth, exported "
                       "first) for one backend. onnxruntime: an optimised .onnx (--int8: static QDQ, u8 activations, "
                       "s8 per-channel weights). openvino: IR .xml/.bin (--int8: NNCF). With --val and --masks the "
                       "guide IoU of the source and the result is compared and a drop above --max-iou-drop is refused.")
    p.add_argument("model", metavar="MODEL",
                   help="the source model: .onnx, an IR .xml, a checkpoint .pt/.pth or a shipped model's name "
                   "(guide, instance)")
    p.add_argument("--backend", required=True, choices=["onnxruntime", "openvino"], help="the target runtime")
    add_output(p, "the artefact: .onnx (onnxruntime) or .xml (openvino); a report <OUT stem>.compile.json is "
               "written beside it", metavar="OUT")
    add_static_batch(p)
    p.add_argument("--int8", action="store_true", help="post-training int8 quantisation (needs --calib)")
    p.add_argument("--calib", metavar="DIR", help="calibration inputs (.bin/.npy) from the TRAINING split, never val")
    p.add_argument("--calib-count", type=count(1), default=100, help="at most this many calibration inputs")
    p.add_argument("--val", metavar="DIR", help="validation inputs (.bin/.npy) for the accuracy guard")
    p.add_argument("--masks", metavar="DIR", help="masks <id>.png for --val (dsb2018_96/masks/0)")
    p.add_argument("--max-iou-drop", type=float, default=0.005, help="largest allowed guide-IoU drop (default 0.005)")
    p.add_argument("--force", action="store_true", help="write the artefact even if the IoU drop is too large")
    p.add_argument("--ort-level", default="extended", choices=["basic", "extended", "all"],
                   help="onnxruntime graph optimisation saved in the file (default extended: portable; 'all' adds "
                   "layout transforms tied to this CPU)")
    add_depth(p)
    return p


def run(args: argparse.Namespace) -> int:
    from unetpp.atomic import check_writable
    from unetpp.core.outputs import refuse_foreign, refuse_same_file, undo_new_dirs
    from unetpp.model.resolve import model_source

    out = Path(args.output)
    outputs = [out, report_path(out)] + ([out.with_suffix(".bin")] if out.suffix.lower() == ".xml" else [])
    source = model_source(args.model)
    for path in outputs:
        refuse_same_file(path, [source, source.with_suffix(".bin") if source.suffix.lower() == ".xml" else None])
    refuse_foreign(outputs, reports=[report_path(out)])
    with undo_new_dirs(out):
        check_writable(out)
        r = compile_model(source, args.backend, out, batch=args.batch, int8=args.int8, calib=args.calib,
                          calib_count=args.calib_count, val=args.val, masks=args.masks,
                          max_iou_drop=args.max_iou_drop, force=args.force, ort_level=args.ort_level,
                          depth=args.depth)
    batch = "dynamic batch" if r["batch"] is None else f"batch {r['batch']}"
    print(f"wrote {r['artefact']} ({args.backend}, {'int8' if r['int8'] else 'fp32'}, {batch})")
    acc = r.get("accuracy")
    if acc:
        verdict = "ok" if acc["passed"] else "EXCEEDED, written because of --force"
        print(f"guide IoU on {acc['n_images']} val images: source {acc['iou_guide_reference']:.4f}, compiled "
              f"{acc['iou_guide_compiled']:.4f}, drop {acc['iou_drop']:.4f} (max {acc['max_iou_drop']:g}: {verdict}); "
              f"decisions flipped on {100 * acc['flipped_share']:.3f} % of pixels")
    print(f"report: {report_path(Path(args.output))}")
    return 0
