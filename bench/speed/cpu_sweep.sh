#!/usr/bin/env bash
# The recorded CPU sweep (bench/results/cpu_sweep), from the repository root:
#   bash bench/speed/cpu_sweep.sh [DATA]        # DATA holds stage1_train, val_ids.txt, train_ids.txt (default data/dsb2018)
# Builds in runs/cpu_bench: the shipped checkpoint's ONNX, the 134 val inputs, 200 TRAIN inputs for calibration, the
# int8 artefacts (each refused if its guide-IoU drop on val exceeds 0.005), then sweeps 6 backends x 5 batch sizes,
# 3 rounds round-robin, under an exclusive lock so that nothing else of ours runs meanwhile.
set -euo pipefail
DATA=${1:-data/dsb2018}
U=$PWD/.venv/bin/unetpp
W=runs/cpu_bench
mkdir -p $W
[ -d $W/dsb2018_96 ] || $U prepare "$DATA" $W/dsb2018_96
M=$W/dsb2018_96/masks/0
[ -f $W/model.onnx ] || $U export -o $W/model.onnx
head -200 "$DATA/train_ids.txt" > $W/calib_ids.txt
[ -d $W/val ] || $U preprocess $W/dsb2018_96/images $W/val --ids "$DATA/val_ids.txt"
[ -d $W/calib ] || $U preprocess $W/dsb2018_96/images $W/calib --ids $W/calib_ids.txt
[ -f $W/ort_int8.onnx ] || $U compile $W/model.onnx --backend onnxruntime --int8 --calib $W/calib --val $W/val \
  --masks $M -o $W/ort_int8.onnx
[ -f $W/ov_int8.xml ] || $U compile $W/model.onnx --backend openvino --int8 --calib $W/calib --val $W/val \
  --masks $M -o $W/ov_int8.xml
exec flock -x /tmp/unetpp-cpu.lock $U bench --inputs $W/val --masks $M --model $W/model.onnx \
  --backends torch:label=torch-eager torch:channels_last=1,label=torch-channels-last \
             onnxruntime:label=ort-fp32 openvino:label=ov-fp32 \
             onnxruntime:model=$W/ort_int8.onnx,label=ort-int8 openvino:model=$W/ov_int8.xml,label=ov-int8 \
  --batch-sizes 1,4,8,16,32 --min-seconds 3 --repeats 3 --threads 2 --out bench/results/cpu_sweep
