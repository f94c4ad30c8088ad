"""The runtime and executor flags shared by the commands that run a model (infer, predict, serve, export,
compile): --backend-option, --engine and its Ray flags, --precision, --depth, and how they become a runtime's
options and an executor. Defined once here; options.py stays free of imports for `--help` speed."""

from __future__ import annotations

import argparse
from typing import Any

from unetpp.cli.options import count
from unetpp.core.executors import ENGINES
from unetpp.errors import InputError, expected_found

PRECISIONS = ("fp32", "int8")


def add_engine_args(p: argparse.ArgumentParser, what: str) -> None:
    """--engine, --address, --num-workers, --num-gpus: shared by the commands that can run on Ray."""
    g = p.add_argument_group("scale-out (--engine ray; install with pip install 'unetpp[ray]')")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help=f"local: this process (default); ray: a pool of Ray workers, {what}")
    g.add_argument("--address", default=None,
                   help="Ray cluster to join: auto, HOST:6379 or ray://HOST:10001 (default: start a local Ray)")
    g.add_argument("--num-workers", type=count(1), default=None,
                   help="Ray workers (default: the cluster's CPUs // --threads)")
    g.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per Ray worker (default 0)")


def add_backend_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a runtime option beyond the common flags, repeatable (e.g. openvino: hint=throughput, "
                   "requests=4, streams=2; onnxruntime: graph_optimization=basic); the runtime checks the names "
                   "(default: none)")


def add_precision(p: argparse.ArgumentParser) -> None:
    """--precision: fp32 or int8 (an accuracy-guarded int8 build, cached); default: the fastest verified one."""
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="fp32, or int8 (built once from the checkpoint, cached, its accuracy checked on train "
                   "images) (default: the fastest runtime whose accuracy was verified: int8 OpenVINO when it "
                   "passes the check, else fp32)")


def add_depth(p: argparse.ArgumentParser) -> None:
    """--depth 1..4: UNet++ pruning, the output at X0,d (a deeply supervised model only, for d < 4)."""
    p.add_argument("--depth", type=int, choices=(1, 2, 3, 4), default=None,
                   help="UNet++ pruning: run only the nodes the output X0,DEPTH needs (1 fastest .. 4 full); "
                   "below 4 only for a model trained with --deep-supervision (default: the model's own "
                   "default_depth, else 4)")


def parse_backend_options(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(expected_found("--backend-option", "KEY=VALUE", repr(item)))
        out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else value.strip()
    return out


def make_executor(args: argparse.Namespace, chunk_size: int | None = None) -> Any:
    """LocalExecutor, or a RayExecutor from the shared flags (--threads: per worker, default 1); with --engine
    local the Ray-only flags are an error."""
    from unetpp.core.executors import LocalExecutor, RayExecutor

    if args.engine == "local":
        for flag, value in (("--address", args.address), ("--num-workers", args.num_workers),
                            ("--num-gpus", args.num_gpus or None)):
            if value is not None:
                raise InputError(expected_found(flag, "--engine ray", "--engine local"))
        return LocalExecutor()
    from unetpp.core.ray import RayOptions

    opts = RayOptions(address=args.address, num_workers=args.num_workers, threads=args.threads or 1,
                      num_gpus=args.num_gpus, progress=not args.no_progress)
    return RayExecutor(opts, chunk_size=chunk_size)


def runtime_flags(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    """--threads/--device/--dtype mapped onto the backend's own options (the runtime class says how)."""
    from unetpp.runtimes import runtime_class

    threads = args.threads or (1 if getattr(args, "engine", "local") == "ray" else None)
    flags = runtime_class(backend).map_flags(threads, getattr(args, "device", None), getattr(args, "dtype", None))
    return {**flags, **parse_backend_options(getattr(args, "backend_option", []))}
