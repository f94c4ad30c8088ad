"""`unetpp serve`: the model behind an HTTP API and a web page, batched across requests (see docs/serve.md)."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from unetpp.cli.options import count
from unetpp.cli.runtime_options import add_depth, add_precision
from unetpp.runtimes import known_runtimes

if TYPE_CHECKING:
    from unetpp.serve.service import ServeSettings


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve", help="serve the model over HTTP: /v1/segment, /v1/segment.zip, a web page at /",
        description="One process (FastAPI + uvicorn), or replicas on Ray Serve (--engine ray). Requests arriving "
        "close together share runtime calls (dynamic batching). Nothing is written to disk unless --save.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="default 8000")
    p.add_argument("--model", default="instance",
                   help="a shipped model by name (instance, guide), a .pt/.pth checkpoint, .onnx, .xml or a "
                        "bioimage.io package (default: instance)")
    p.add_argument("--backend", choices=known_runtimes(), default=None,
                   help="default: the fastest verified runtime for a checkpoint (see --precision)")
    add_precision(p)
    add_depth(p)
    p.add_argument("--threads", type=count(1), default=None, help="runtime intra-op threads (default: all cores)")
    p.add_argument("--token", default=None,
                   help="require `Authorization: Bearer TOKEN` on every endpoint but /v1/health "
                   "(default: $UNETPP_TOKEN; none: open)")
    p.add_argument("--max-upload-mb", type=float, default=32.0, help="largest request body (default 32)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest image (default 40000000)")
    p.add_argument("--timeout-s", type=float, default=60.0, help="per-request limit → 504 (default 60)")
    p.add_argument("--max-queue", type=int, default=256,
                   help="images waiting or running across requests; a request that would pass it gets 429 with "
                   "Retry-After (default 256)")
    p.add_argument("--batch-size", type=count(1), default=16,
                   help="tiles per runtime call, across requests (default 16)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="run a partial batch once nothing arrived for this long (default 5)")
    p.add_argument("--save", metavar="DIR", default=None, help="also write each image's outputs into DIR")
    g = p.add_argument_group("Ray Serve (--engine ray; pip install 'unetpp[ray]')")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: a Ray Serve deployment of the same app")
    g.add_argument("--address", default=None, help="Ray cluster: auto or HOST:6379 (default: start a local Ray)")
    g.add_argument("--replicas", type=int, default=1, help="Ray Serve replicas (default 1)")
    g.add_argument("--num-cpus-per-replica", type=float, default=1.0, help="CPUs per replica (default 1)")
    return p


MAX_PORT = 65535


def run(args: argparse.Namespace) -> int:
    from unetpp.errors import InputError, expected_found
    from unetpp.serve.inputs import Limits
    from unetpp.serve.service import ServeSettings

    for name, value, low in (("--port", args.port, 0), ("--max-pixels", args.max_pixels, 1),
                             ("--batch-size", args.batch_size, 1), ("--replicas", args.replicas, 1),
                             ("--max-queue", args.max_queue, 1)):
        if value < low:
            raise InputError(expected_found(name, f"an integer >= {low}", value))
    if args.port > MAX_PORT:  # the socket layer would take it modulo 65536, or fail only once the server starts
        raise InputError(expected_found("--port", f"an integer from 0 to {MAX_PORT}", args.port))
    for name, value in (("--max-upload-mb", args.max_upload_mb), ("--timeout-s", args.timeout_s),
                        ("--num-cpus-per-replica", args.num_cpus_per_replica)):
        if not value > 0:
            raise InputError(expected_found(name, "a number > 0", value))
    if args.max_wait_ms < 0:
        raise InputError(expected_found("--max-wait-ms", "a number >= 0", args.max_wait_ms))
    if args.engine == "local" and (args.address or args.replicas != 1):
        raise InputError(expected_found("--address/--replicas", "--engine ray", "--engine local"))
    check_port_free(args.host, args.port)
    from unetpp.compile.fast import choose_runtime

    # an unknown or missing model, or a --depth it cannot run at: refused here, not later; a first-time int8 build
    # and its check run here, once, before the port opens (Ray replicas then find it in the model cache)
    choice = choose_runtime(args.model, args.backend, args.precision, args.depth, threads=args.threads)
    print(f"unetpp serve: runtime {choice.line()}", flush=True)
    if args.save:
        claim_save_folder(args.save)
    settings = ServeSettings(
        host=args.host, port=args.port, model=args.model, backend=args.backend, threads=args.threads,
        precision=args.precision, depth=args.depth,
        token=args.token or os.environ.get("UNETPP_TOKEN") or None,
        limits=Limits(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels),
        timeout_s=args.timeout_s, max_queue=args.max_queue, batch_size=args.batch_size,
        max_wait_ms=args.max_wait_ms, save_dir=args.save)
    if args.engine == "ray":
        from unetpp.serve.ray_serve import serve_on_ray

        return serve_on_ray(settings, args.address, args.replicas, args.num_cpus_per_replica)
    return serve_local(settings)


def check_port_free(host: str, port: int) -> None:
    """Refuse, before loading anything, an address this server could not listen on (a port in use, a host that
    is not this machine's)."""
    import errno
    import socket

    from unetpp.errors import InputError, expected_found

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(expected_found("--host", "an address of this machine", f"{host!r} ({exc.strerror})")) \
            from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a closing socket is no conflict
        try:
            s.bind(addr)
        except OSError as exc:
            found = "a port in use (another server?)" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise InputError(expected_found(f"--port {port} on {host}", "a free port", found,
                                            "Stop the other server or pass another --port")) from None


def claim_save_folder(path: str) -> None:
    """--save DIR: a new, empty or earlier `unetpp serve --save` folder, marked as the server's (its manifest)."""
    from unetpp.core.runfolder import RunFolder

    with RunFolder(path, None, command="serve") as folder:
        folder.finish({})


def serve_local(settings: ServeSettings) -> int:
    """uvicorn in this process until Ctrl-C."""
    import uvicorn

    from unetpp.serve.app import create_app

    print(f"unetpp serve: http://{settings.host}:{settings.port}/ (token {'required' if settings.token else 'off'})",
          flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning",
                access_log=False)
    return 0
