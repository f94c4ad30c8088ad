"""Wall time of `unetpp --help` (the target: under 0.5 s), median of N fresh processes.

    python bench/speed/cli_help_time.py [--runs 10] [--python .venv/bin/python]

Each run is `PYTHON -m unetpp --help` in a new process (interpreter start-up included, as a user sees it), with
this checkout's src/ first on PYTHONPATH. Also times `unetpp infer --help` (imports that command's module only)
and `python -c pass` (the interpreter's own floor). Writes bench/results/cli_help_time.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from unetpp.bench.provenance import provenance, repo_root

REPO = repo_root(__file__)
TARGET_S = 0.5




def time_runs(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    """Wall seconds of `runs` fresh processes (one unmeasured run first, to warm the file cache)."""
    subprocess.run(cmd, env=env, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="measured processes per command (default 10)")
    ap.add_argument("--python", default=sys.executable, help="the interpreter (default: this one)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cli_help_time.md",
                    help="the Markdown report (default: bench/results/cli_help_time.md)")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    commands = [("`unetpp --help`", [args.python, "-m", "unetpp", "--help"]),
                ("`unetpp infer --help`", [args.python, "-m", "unetpp", "infer", "--help"]),
                ("`python -c pass` (floor)", [args.python, "-c", "pass"])]
    rows = []
    for label, cmd in commands:
        t = time_runs(cmd, args.runs, env)
        rows.append((label, statistics.median(t), min(t), max(t)))
        print(f"{label}: median {statistics.median(t):.3f} s (min {min(t):.3f}, max {max(t):.3f})")
    head = rows[0][1]
    verdict = "meets" if head < TARGET_S else "MISSES"
    prov = provenance()
    m, load = prov["machine"], prov["load_average"]["end"]
    lines = [
        "# `unetpp --help` wall time", "",
        f"Median of {args.runs} fresh processes each (one warm-up run first), {prov['date']}, commit "
        f"{prov['commit']}, {m['cpu']}, {m['usable_cores']} cores (load average {load[0]:.1f} at the end: a shared "
        f"machine), Python {m['python']}, {m['os']}.", "",
        "| command | median (s) | min (s) | max (s) |", "|---|---:|---:|---:|",
        *[f"| {label} | {med:.3f} | {lo:.3f} | {hi:.3f} |" for label, med, lo, hi in rows], "",
        f"`unetpp --help` {verdict} the {TARGET_S} s target: it prints a static table of the commands and imports "
        "no command module (`src/unetpp/cli/main.py`).", "",
        f"Command: `{prov['command']}`", "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
