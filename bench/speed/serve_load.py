"""Load on `unetpp serve` over loopback: throughput against `unetpp predict`, latency, batch sizes, a soak.

    flock -x /tmp/unetpp-cpu.lock .venv/bin/python bench/speed/serve_load.py [--soak 2000] [--choose]

On the 134 val images (tile mode, `data/dsb2018/stage1_train/<id>/images/<id>.png`):
1. --choose: a small grid of --batch-size x --max-wait-ms on the first 48 images (16 clients, then 1 client), each
   on a fresh server, to pick the defaults;
2. throughput: 16 concurrent clients, each image once, against `unetpp predict --mode tile` on the same images in
   the same run (its own predict_summary.json seconds, and its whole process);
3. p50/p99 latency at 1, 4 and 16 clients (--latency-requests each);
4. the batch-size distribution of the runtime calls (/metrics) during the throughput run;
5. a soak of --soak requests from 16 clients mixing good images with bad kinds: 5xx count, lost responses (no HTTP
   answer), the server's RSS at the end against after the first 100 requests.
Every number stays on this machine (127.0.0.1). Writes bench/results/serve_load.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from unetpp.bench.provenance import repo_root

REPO = repo_root(__file__)
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProc:
    """`unetpp serve` in a child process (token on), stopped on exit."""

    def __init__(self, extra: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        fd, name = tempfile.mkstemp(prefix="serve_load_", suffix=".log")
        self.log = os.fdopen(fd, "wb")
        self.log_path = Path(name)
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        self.proc = subprocess.Popen([sys.executable, "-m", "unetpp", "serve", "--port", str(self.port), "--token",
                                      TOKEN, *extra], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log_path.read_text()[-2000:])
            try:
                if httpx.get(self.url + "/v1/health", timeout=2).json().get("ready"):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("server not ready in 180 s")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def batch_hist(self) -> dict[str, int]:
        text = httpx.get(self.url + "/metrics", headers=_auth(), timeout=30).text
        out = {}
        for line in text.splitlines():
            if line.startswith("unetpp_batch_size_bucket"):
                le = line.split('le="')[1].split('"')[0]
                out[le] = int(line.split()[-1])
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def drive(url: str, jobs: list[dict[str, Any]], clients: int) -> tuple[float, list[dict[str, Any]]]:
    """Send the jobs from `clients` threads (each its own connection); (wall seconds, one result per job)."""
    local = threading.local()
    results: list[dict[str, Any]] = [{} for _ in jobs]

    def one(i: int) -> None:
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=url, timeout=120)
        job = jobs[i]
        t0 = time.perf_counter()
        try:
            r = local.c.post(job.get("path", "/v1/segment"), files=job["files"], data=job.get("data", {}),
                             headers=job.get("headers", _auth()))
            results[i] = {"status": r.status_code, "s": time.perf_counter() - t0, "kind": job["kind"],
                          "nuclei": r.json().get("nuclei") if r.status_code == 200 else None}
        except Exception as exc:  # noqa: BLE001 - a lost response is what the soak counts
            results[i] = {"status": None, "s": time.perf_counter() - t0, "kind": job["kind"], "error": repr(exc)}

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(len(jobs))))
    return time.perf_counter() - t0, results


INCLUDE = ""  # ?include= on the good requests (--include)


def good(paths: list[Path], data: dict[Path, bytes]) -> list[dict[str, Any]]:
    path = f"/v1/segment?include={INCLUDE}" if INCLUDE else "/v1/segment"
    return [{"kind": "good", "files": {"file": (p.name, data[p])}, "data": {"mode": "tile"}, "path": path}
            for p in paths]


def bad_jobs(sample: bytes) -> list[dict[str, Any]]:
    ok, huge = cv2.imencode(".png", np.zeros((7000, 6000), np.uint8))  # 42 Mpx > the default --max-pixels
    return [
        {"kind": "not_an_image", "files": {"file": ("a.txt", b"plain text, not an image" * 50)}},
        {"kind": "truncated", "files": {"file": ("t.png", sample[: len(sample) // 3])}},
        {"kind": "empty", "files": {"file": ("e.png", b"")}},
        {"kind": "unknown_field", "files": {"file": ("a.png", sample)}, "data": {"colour": "red"}},
        {"kind": "bad_value", "files": {"file": ("a.png", sample)}, "data": {"threshold": "7"}},
        {"kind": "too_many_pixels", "files": {"file": ("h.png", huge.tobytes())}},
        {"kind": "wrong_token", "files": {"file": ("a.png", sample)}, "headers": {"Authorization": "Bearer no"}},
        {"kind": "no_such_path", "files": {"file": ("a.png", sample)}, "path": "/v1/segmentt"},
    ]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def run_predict(paths: list[Path], threads: int | None) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="serve_load_predict_"))
    cmd = [sys.executable, "-m", "unetpp", "predict", *map(str, paths), "-o", str(out), "--mode", "tile",
           "--no-progress"] + (["--threads", str(threads)] if threads else [])
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    wall = time.perf_counter() - t0
    summary = json.loads((out / "predict_summary.json").read_text())
    counts = {Path(r["image"]).name: r["nuclei"] for r in summary["images"]}
    return {"wall_s": wall, "seconds": summary["seconds"], "counts": counts}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO / "data" / "dsb2018")
    ap.add_argument("--batch-size", type=int, default=None, help="server --batch-size (default: the server's)")
    ap.add_argument("--max-wait-ms", type=float, default=None, help="server --max-wait-ms (default: the server's)")
    ap.add_argument("--threads", type=int, default=None, help="runtime threads, server and predict (default: all)")
    ap.add_argument("--latency-requests", type=int, default=64)
    ap.add_argument("--soak", type=int, default=2000)
    ap.add_argument("--choose", action="store_true", help="first run the batch-size x max-wait grid")
    ap.add_argument("--include", default="", help="?include= on the good requests, e.g. labels,mask (PNGs back)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images (a smoke run)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "serve_load")
    args = ap.parse_args()
    global INCLUDE
    INCLUDE = args.include
    from unetpp.bench.provenance import provenance

    ids = [s for s in (args.data / "val_ids.txt").read_text().split() if s]
    paths = [args.data / "stage1_train" / i / "images" / f"{i}.png" for i in ids][: args.limit]
    data = {p: p.read_bytes() for p in paths}
    common = ["--threads", str(args.threads)] if args.threads else []
    report: dict[str, Any] = {"include": args.include, **provenance(),
                              "load_before": os.getloadavg(), "n_images": len(paths), "started": time.ctime()}

    if args.choose:
        grid = []
        for bs, wait in ((4, 2.0), (8, 2.0), (16, 2.0), (16, 10.0), (32, 5.0)):
            srv = ServerProc(common + ["--batch-size", str(bs), "--max-wait-ms", str(wait)])
            try:
                drive(srv.url, good(paths[:8], data), 4)  # settle
                wall16, _ = drive(srv.url, good(paths[:48], data), 16)
                _, res1 = drive(srv.url, good(paths[:16], data), 1)
            finally:
                srv.stop()
            grid.append({"batch_size": bs, "max_wait_ms": wait, "images_per_s_c16": 48 / wall16,
                         "p50_ms_c1": pct([r["s"] for r in res1], 50)})
            print("choose", grid[-1], flush=True)
        report["grid"] = grid

    extra = common + (["--batch-size", str(args.batch_size)] if args.batch_size else []) + (
        ["--max-wait-ms", str(args.max_wait_ms)] if args.max_wait_ms is not None else [])
    srv = ServerProc(extra)
    try:
        drive(srv.url, good(paths[:8], data), 4)  # warm the connections and the caches
        h0 = srv.batch_hist()
        wall, res = drive(srv.url, good(paths, data), 16)
        h1 = srv.batch_hist()
        report["server"] = {"wall_s": wall, "images_per_s": len(paths) / wall,
                            "statuses": sorted({r["status"] for r in res}, key=str),
                            "counts": {p.name: r["nuclei"] for p, r in zip(paths, res)}}
        report["batch_hist_cumulative"] = {k: h1[k] - h0.get(k, 0) for k in h1}
        print("server", report["server"]["images_per_s"], flush=True)
        pred = run_predict(paths, args.threads)
        report["predict"] = {"wall_s": pred["wall_s"], "seconds": pred["seconds"],
                             "images_per_s": len(paths) / pred["seconds"],
                             "images_per_s_whole_process": len(paths) / pred["wall_s"]}
        report["counts_equal_predict"] = pred["counts"] == report["server"].pop("counts")
        report["ratio_vs_predict"] = report["server"]["images_per_s"] / report["predict"]["images_per_s"]
        print("predict", report["predict"], flush=True)
        lat = {}
        for c in (1, 4, 16) if args.latency_requests else ():
            jobs = good([paths[i % len(paths)] for i in range(args.latency_requests)], data)
            w, r = drive(srv.url, jobs, c)
            secs = [x["s"] for x in r if x["status"] == 200]
            lat[c] = {"n": len(r), "ok": len(secs), "p50_ms": pct(secs, 50), "p99_ms": pct(secs, 99),
                      "images_per_s": len(r) / w}
            print("latency", c, lat[c], flush=True)
        report["latency"] = lat
        if not args.soak:
            return finish(report, args.out)
        bad = bad_jobs(data[paths[0]])
        soak = []
        for i in range(args.soak):
            soak.append(bad[(i // 2) % len(bad)] if i % 2 else good([paths[(i // 2) % len(paths)]], data)[0])
        _, first = drive(srv.url, soak[:100], 16)
        rss_100 = srv.rss_mib()
        t0 = time.perf_counter()
        _, rest = drive(srv.url, soak[100:], 16)
        allres = first + rest
        rss_end = srv.rss_mib()
        by_kind: dict[str, dict[str, int]] = {}
        for r in allres:
            by_kind.setdefault(r["kind"], {}).setdefault(str(r["status"]), 0)
            by_kind[r["kind"]][str(r["status"])] += 1
        report["soak"] = {"n": len(allres), "seconds": time.perf_counter() - t0,
                          "n_5xx": sum(1 for r in allres if r["status"] and r["status"] >= 500),
                          "lost": sum(1 for r in allres if r["status"] is None),
                          "rss_mib_after_100": rss_100, "rss_mib_end": rss_end,
                          "rss_change_pct": 100 * (rss_end - rss_100) / rss_100, "by_kind": by_kind,
                          "server_alive": srv.proc.poll() is None}
        print("soak", report["soak"], flush=True)
    finally:
        srv.stop()
    return finish(report, args.out)


def finish(report: dict[str, Any], out: Path) -> int:
    report["load_after"] = os.getloadavg()
    report["finished"] = time.ctime()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    out.with_suffix(".md").write_text(render(report))
    print(render(report))
    return 0


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"# `unetpp serve` under load ({r['started']})", "",
             f"Machine: {m.get('cpu')}, {m.get('usable_cores')} usable cores, {m.get('memory_gib')} GiB; shared "
             f"(load average before {', '.join(f'{x:.2f}' for x in r['load_before'])}, after "
             f"{', '.join(f'{x:.2f}' for x in r['load_after'])}).", "", f"Command: `{r['command']}`", "",
             f"Images: the {r['n_images']} val ids, tile mode (scale auto), shipped model on the default runtime "
             "(serve and predict alike: int8 OpenVINO where verified, see docs/commands.md), "
             "127.0.0.1 only. " + (f"Good requests ask for `?include={r['include']}` (PNGs back, as predict writes "
                                   "them)." if r.get("include") else "Responses are JSON only (no PNGs; `unetpp "
                                   "predict` writes labels/mask PNGs and CSVs)."), ""]
    if "grid" in r:
        lines += ["## Choosing the defaults (48 images at 16 clients; 16 images at 1 client)", "",
                  "| --batch-size | --max-wait-ms | images/s at 16 clients | p50 ms at 1 client |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {g['batch_size']} | {g['max_wait_ms']:g} | {g['images_per_s_c16']:.2f} | {g['p50_ms_c1']:.0f} |"
                  for g in r["grid"]]
        lines.append("")
    s, p = r["server"], r["predict"]
    lines += ["## Throughput, 16 clients, each image once", "",
              "| | images/s |", "|---|---:|",
              f"| `unetpp serve`, 16 concurrent clients | {s['images_per_s']:.2f} |",
              f"| `unetpp predict --mode tile` (its run, from predict_summary.json) | {p['images_per_s']:.2f} |",
              f"| `unetpp predict --mode tile` (whole process, start-up included) | "
              f"{p['images_per_s_whole_process']:.2f} |", "",
              f"Server / predict: **{100 * r['ratio_vs_predict']:.0f} %** (target ≥ 90 %). Nuclei counts equal "
              f"predict's on every image: {r['counts_equal_predict']}. Statuses: {s['statuses']}.", "",
              "## Latency", "", "| clients | requests | p50 ms | p99 ms | images/s |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {c} | {v['n']} | {v['p50_ms']:.0f} | {v['p99_ms']:.0f} | {v['images_per_s']:.2f} |"
              for c, v in r["latency"].items()] or ["| (not run) | | | | |"]
    h = r["batch_hist_cumulative"]
    keys = [k for k in h if k != "+Inf"]
    lines += ["", "## Batch sizes of the runtime calls during the throughput run (tiles per call)", "",
              "| tiles per call ≤ | calls |", "|---:|---:|"]
    prev = 0
    for k in keys:
        lines.append(f"| {k} | {h[k] - prev} |")
        prev = h[k]
    if "soak" not in r:
        return "\n".join(lines + ["", "(no soak in this run)", ""])
    k = r["soak"]
    lines += ["", f"## Soak: {k['n']} requests, 16 clients, half good images, half bad kinds", "",
              f"- 5xx: **{k['n_5xx']}**; lost responses: **{k['lost']}**; server alive at the end: "
              f"{k['server_alive']}; {k['seconds']:.0f} s",
              f"- RSS after the first 100 requests {k['rss_mib_after_100']:.0f} MiB, at the end "
              f"{k['rss_mib_end']:.0f} MiB (**{k['rss_change_pct']:+.1f} %**, limit ±10 %)",
              "- statuses by kind: " + "; ".join(f"{kind} {v}" for kind, v in k["by_kind"].items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
