"""First use of `unetpp predict` as a new user meets it: a fresh process, an empty private model cache, one image.

    python bench/speed/first_use.py [--data data/dsb2018] [--repeat 3] [--cold-build] [--second-use]

Each run is `python -m unetpp predict ONE.png -o OUT --no-progress` (the first of the guide's val ids unless
--image), with no runtime override (UNETPP_DEFAULT_RUNTIME removed) and UNETPP_CACHE set to a new empty folder; its
whole-process wall time and its peak RSS (resource.getrusage(RUSAGE_CHILDREN).ru_maxrss, read by a separate
launcher process that runs only that one child) are recorded. Rows:
- shipped: the shipped instance model with its shipped int8 build (weights/builds), what `pip install` gives;
- second use (--second-use): the same, the cache left by a first use;
- cold build (--cold-build): UNETPP_SHIPPED_BUILDS=0, i.e. what a checkpoint of one's own costs on first use (the
  int8 build and its accuracy check; minutes and several GB: run it on a quiet machine only).
Writes bench/results/first_use.{json,md} with the machine, its load average before and after, and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
GOAL_S, GOAL_GB = 10.0, 1.5

LAUNCHER = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t0
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": r.returncode, "wall_s": wall, "peak_rss_mb": peak_kb / 1024, "stdout": r.stdout[-2000:],
                  "stderr": r.stderr[-3000:]}))
"""


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    mem = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), None) if Path("/proc/meminfo").exists() else None
    versions = {}
    for pkg in ("openvino", "onnxruntime", "numpy"):
        try:
            from importlib import metadata

            versions[pkg] = metadata.version(pkg)
        except Exception:  # noqa: BLE001 - a missing package is recorded as missing
            versions[pkg] = None
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": mem, "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions, "commit": commit}


def one_run(image: Path, cache: Path, out: Path, extra_env: dict[str, str]) -> dict:
    """One `unetpp predict` in a fresh process (launched by a launcher that measures only it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("UNETPP_DEFAULT_RUNTIME", "UNETPP_NO_OPENVINO",
                                                             "UNETPP_SHIPPED_BUILDS")}
    env.update(UNETPP_CACHE=str(cache), PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]),
               **extra_env)
    cmd = [sys.executable, "-m", "unetpp", "predict", str(image), "-o", str(out), "--no-progress"]
    r = subprocess.run([sys.executable, "-c", LAUNCHER, *cmd], env=env, capture_output=True, text=True, check=True)
    doc = json.loads(r.stdout)
    doc["runtime_line"] = next((s for s in doc["stdout"].splitlines() if s.startswith("runtime:")), None)
    doc["built"] = "building" in doc["stderr"]
    return doc


def first_val_image(data: Path) -> Path:
    ids = [s for s in (data / "val_ids.txt").read_text().split() if s]
    return data / "stage1_train" / ids[0] / "images" / f"{ids[0]}.png"


def measure(image: Path, repeat: int, cold_build: bool, second_use: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="unetpp-first-use-") as tmp:
        work = Path(tmp)
        cases = [("shipped", {}, False)] * repeat
        if second_use:
            cases.append(("second use", {}, True))
        if cold_build:
            cases.append(("cold build (UNETPP_SHIPPED_BUILDS=0)", {"UNETPP_SHIPPED_BUILDS": "0"}, False))
        for i, (name, extra, reuse) in enumerate(cases):
            cache = work / ("cache-0" if reuse else f"cache-{i}")
            if not reuse:
                shutil.rmtree(cache, ignore_errors=True)
            load = os.getloadavg()
            doc = one_run(image, cache, work / f"out-{i}", extra)
            doc.update(case=name, load_before=[round(x, 2) for x in load],
                       load_after=[round(x, 2) for x in os.getloadavg()])
            print(f"{name}: rc {doc['rc']}, {doc['wall_s']:.1f} s, {doc['peak_rss_mb']:.0f} MB peak RSS, "
                  f"load {load[0]:.2f}; {doc['runtime_line']}", flush=True)
            rows.append(doc)
    return rows


def report(rows: list[dict], image: Path, command: str, mach: dict) -> str:
    lines = ["# First use: `unetpp predict one.png` in a fresh process with an empty model cache",
             "",
             f"{mach['cpu']} ({mach['cores']} cores, {mach['memory_mb']} MB; a machine shared with other work: the "
             f"1-min load average before each run is in the table), {time.strftime('%Y-%m-%d %H:%M')} UTC, commit "
             f"{mach['commit']}, OpenVINO {mach['versions'].get('openvino')}. `{command}`. Image: `{image.name}` "
             f"(the first of the guide's 134 val ids). Wall time: the whole `python -m unetpp predict` process "
             f"(interpreter start, imports, model choice, first pass, network, writing); peak RSS: that process's "
             f"(getrusage RUSAGE_CHILDREN in a launcher that runs only it). Goal: <= {GOAL_S:g} s and <= "
             f"{GOAL_GB:g} GB for the shipped model (before the shipped builds: 172 s and 5.7 GB).",
             "",
             "| case | exit | wall s | peak RSS MB | built anything | 1-min load before | runtime |",
             "|---|---:|---:|---:|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['rc']} | {r['wall_s']:.1f} | {r['peak_rss_mb']:.0f} | "
                     f"{'yes' if r['built'] else 'no'} | {r['load_before'][0]:.2f} | {r['runtime_line'] or ''} |")
    shipped = sorted(r["wall_s"] for r in rows if r["case"] == "shipped")
    rss = sorted(r["peak_rss_mb"] for r in rows if r["case"] == "shipped")
    if shipped:
        med, med_rss = shipped[len(shipped) // 2], rss[len(rss) // 2]
        ok = med <= GOAL_S and med_rss <= GOAL_GB * 1024
        lines += ["", f"Shipped model, median of {len(shipped)}: {med:.1f} s, {med_rss:.0f} MB peak RSS "
                      f"({'within' if ok else 'NOT within'} the goal)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("UNETPP_DATA", ROOT / "data" / "dsb2018")))
    p.add_argument("--image", type=Path, default=None)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cold-build", action="store_true")
    p.add_argument("--second-use", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args()
    image = a.image or first_val_image(a.data)
    command = "python bench/speed/first_use.py " + " ".join(sys.argv[1:])
    mach = machine()
    rows = measure(image, a.repeat, a.cold_build, a.second_use)
    a.out.mkdir(parents=True, exist_ok=True)
    doc = {"command": command, "image": str(image), "machine": mach, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "goal": {"wall_s": GOAL_S, "peak_rss_gb": GOAL_GB}, "rows": rows}
    (a.out / "first_use.json").write_text(json.dumps(doc, indent=2) + "\n")
    (a.out / "first_use.md").write_text(report(rows, image, command, mach))
    print(f"wrote {a.out / 'first_use.md'}")
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
