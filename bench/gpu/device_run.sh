#!/usr/bin/env bash
# One prepared script for a lent GPU machine (H100/H200, ~10 minutes): first sweep the CUDA runtimes with the
# shipped checkpoint, then train several recipes side by side on the one GPU
# (TRAIN_SECONDS=0 skips training). Everything that matters is packed under $OUT as it goes, so a run cut short
# still returns its logs. Needs, carried from the developer machine: .whl (albumentations and its needs, for Python
# 3.12) and .devcarry/dsb2018_96 + .devcarry/{train,val}_ids.txt (prepared with `unetpp prepare`).
#   usage: bash bench/gpu/device_run.sh [TRAIN_SECONDS]
#   dry run here: DEVICE=cpu PYTHON=.venv/bin/python SKIP_WHEELS=1 TRAIN_EXTRA="--limit 8 --epochs 1" BATCHES=1,2 \
#                 REPEATS=1 OUT=/tmp/dry/out WORK=/tmp/dry bash bench/gpu/device_run.sh 5
set -u
TRAIN_S=${1:-240}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
LOG="$OUT/device.log"
exec > >(tee -a "$LOG") 2>&1
DEVICE=${DEVICE:-cuda}          # DEVICE=cpu PYTHON=.venv/bin/python for a dry run on the developer machine
PYTHON=${PYTHON:-python3}
if [ -z "${SKIP_WHEELS:-}" ]; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 3; }
fi
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
$PYTHON -c "import torch, albumentations, cv2; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'albumentations', albumentations.__version__)"

DATA=.devcarry/dsb2018_96
WORK=${WORK:-/tmp/devwork}
RUNS=$WORK/runs
mkdir -p $RUNS
# The CUDA sweep over the val inputs with the shipped checkpoint: 3 rounds round-robin, median round per cell.
$PYTHON -m unetpp preprocess $DATA/images $WORK/val_bin --ids .devcarry/val_ids.txt --no-progress
timeout ${BENCH_S:-300} $PYTHON -m unetpp bench --inputs $WORK/val_bin --masks $DATA/masks/0 \
  --batch-sizes ${BATCHES:-1,4,16,64,256,512} --min-seconds ${MIN_S:-1} --repeats ${REPEATS:-3} --out $WORK/bench_gpu \
  --backends "torch:device=$DEVICE,label=torch-cuda-fp32" "torch:device=$DEVICE,dtype=fp16,channels_last=1,label=torch-cuda-fp16-cl" \
             "torch:device=$DEVICE,dtype=fp16,channels_last=1,cuda_graphs=1,label=torch-cuda-fp16-graphs" \
             "torch:device=$DEVICE,dtype=bf16,channels_last=1,cuda_graphs=1,label=torch-cuda-bf16-graphs"
tar czf "$OUT/bench_gpu.tgz" -C $WORK bench_gpu
[ "$TRAIN_S" = 0 ] && { ls -la "$OUT"; exit 0; }

mkdir -p .devcarry/stage1_train  # --data wants a dataset root; ids come from .devcarry/{train,val}_ids.txt
common="--data .devcarry --prepared $DATA --device $DEVICE \
  --time-limit $TRAIN_S --num-workers 3 --no-progress"
recipe() {  # recipe NAME [train options]: one background training run, its output in $RUNS/NAME.out
  local name=$1; shift
  # shellcheck disable=SC2086
  $PYTHON -m unetpp train $common --out "$RUNS/$name" "$@" ${TRAIN_EXTRA:-} > "$RUNS/$name.out" 2>&1 &
}
# The recipes, side by side (the model is small: one process cannot fill the GPU).
recipe lovasz_sgd --loss LovaszHingeLoss --optimizer SGD --epochs 200          # the guide's checkpoint recipe
recipe bcedice_adam_bnr --loss BCEDiceLoss --optimizer Adam --epochs 200 --bn-recalibrate
recipe lovasz_adam_bnr --loss LovaszHingeLoss --optimizer Adam --epochs 200 --bn-recalibrate
recipe bcedice_adam_short --loss BCEDiceLoss --optimizer Adam --epochs 100 --bn-recalibrate
wait
for r in $RUNS/*/; do echo "$r"; tail -n 3 "$r/log.csv"; done
# Logs of every recipe (no weights) in one file.
tar czf "$OUT/train_logs.tgz" -C $RUNS --exclude='*.pt' .
# The best recipe by the guide's val IoU: its best.pt, split to fit the 16 MiB file limit.
best=$($PYTHON bench/gpu/pick_best.py $RUNS) && echo "best: $best" && cp "$best/best.pt" $WORK/best.pt \
  && split -b 15M -d $WORK/best.pt "$OUT/best.pt.part" && sha256sum $WORK/best.pt | tee "$OUT/best.sha256"

ls -la "$OUT"
