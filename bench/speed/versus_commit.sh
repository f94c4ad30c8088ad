#!/bin/bash
# Default `unetpp predict` on the 134 val ids: this tree against an earlier commit, alternated ROUNDS times in one
# run on the same machine (each in its own model cache, built before timing), so a slower machine and a slower
# code are told apart. Prints one line per run: which, round, images/s end to end, network inputs/s, 1-min load.
#   bash bench/speed/versus_commit.sh COMMIT [ROUNDS] [DATA]
# e.g. bash bench/speed/versus_commit.sh 0a6982a 2 /path/to/dsb2018
set -euo pipefail
COMMIT=${1:?an earlier commit}; ROUNDS=${2:-2}; DATA=${3:-${UNETPP_DATA:-data/dsb2018}}
ROOT=$(cd "$(dirname "$0")/../.." && pwd); PY=${PY:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d); trap 'git -C "$ROOT" worktree remove --force "$WORK/old" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
git -C "$ROOT" worktree add -f "$WORK/old" "$COMMIT" >/dev/null 2>&1
IDS=$ROOT/src/unetpp/data/splits/val_ids.txt
run() {  # which src cache out
  UNETPP_CACHE=$3 PYTHONPATH=$2 "$PY" -m unetpp predict "$DATA/stage1_train" --ids "$IDS" -o "$4" --no-progress \
    --overwrite >/dev/null 2>&1
}
run old "$WORK/old/src" "$WORK/cache_old" "$WORK/warm_old"; run new "$ROOT/src" "$WORK/cache_new" "$WORK/warm_new"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(date -u +%F' '%H:%M) UTC"
for k in $(seq "$ROUNDS"); do
  for v in old new; do
    la=$(cut -d' ' -f1 /proc/loadavg)
    out="$WORK/out_${v}_$k"  # a fresh folder each round: nothing to resume
    if [ $v = old ]; then run old "$WORK/old/src" "$WORK/cache_old" "$out"
    else run new "$ROOT/src" "$WORK/cache_new" "$out"; fi
    "$PY" -c "import json;d=json.load(open('$out/predict_summary.json'));print('$v', $k, \
round(d['images_per_s'], 3), round(d['timing']['throughput_compute'], 3), 'load', $la)"
  done
done
