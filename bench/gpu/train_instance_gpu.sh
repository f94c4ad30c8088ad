#!/usr/bin/env bash
# One prepared run of the long instance-model schedule on a lent GPU machine (H100/H200, ~10 minutes of
# device time in all). The machine has no package registry and its python3 carries torch, OpenCV, SciPy and tqdm,
# which is all that `unetpp train-instance` needs (it no longer imports albumentations). Carried from here in
# .gpu/ (git-ignored; see bench/results/instance_training.md for how it was made):
#   .gpu/instances_cache.npz   the rescaled fit + selection data (unetpp.train.instance_data's cache, 32 MB)
#   .gpu/data/train_ids.txt    the train ids (the dataset itself does not travel; the cache replaces it)
#   .gpu/init_fp16.pt          the shipped instance model, weights stored as fp16 (the working tree limit)
# What comes back under $OUT (at most 64 MiB): best.pt (fp32, split in 16 MiB parts), the last epoch's weights
# (fp16, split), log.csv and the console log.
#   usage: bash bench/gpu/train_instance_gpu.sh [TRAIN_SECONDS]
#   dry run here: DEVICE=cpu PYTHON=.venv/bin/python EPOCHS=1 CROP=32 CROP_AREA=1e9 CROP_NUCLEI=1000 MAX_CROPS=1 \
#                 VIEW=64 WORKERS=2 OUT=/tmp/dry/out RUN=/tmp/dry/run bash bench/gpu/train_instance_gpu.sh 60
set -u
TRAIN_S=${1:-420}
OUT=${OUT:-/tmp/out}
RUN=${RUN:-/tmp/run18}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/device.log") 2>&1
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
nproc
$PY -c "import torch, cv2, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cv2', cv2.__version__, 'numpy', numpy.__version__)"
mkdir -p .gpu/data/stage1_train
date -u
# The schedule must end inside TRAIN_S: a 30-step probe of the training step on this GPU (synthetic batch) and of
# one core's crop rate gives crops/s = min(GPU, 0.85 x workers x core); epochs = what fits with ~8 s of held-out
# evaluation per epoch (EPOCHS set by hand wins).
if [ -z "${EPOCHS:-}" ]; then
  EPOCHS=$($PY - "$TRAIN_S" "${WORKERS:-14}" "${BATCH:-32}" "${CROP:-128}" <<'PY'
import sys
import time

import numpy as np
import torch

from unetpp.train.appearance_v2 import AppearanceV2
from unetpp.train.instance_data import InstanceData, InstanceCropDataset
from unetpp.train.instance_model import ChannelBCEDice, init_instance_model

budget, workers, batch, crop = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = init_instance_model(".gpu/init_fp16.pt", 1, True).to(dev).to(memory_format=torch.channels_last)
opt, crit = torch.optim.Adam(model.parameters(), 1e-4), ChannelBCEDice(1.0)
x = torch.randn(batch, 3, crop, crop, device=dev).contiguous(memory_format=torch.channels_last)
y = (torch.rand(batch, 2, crop, crop, device=dev) > 0.5).float()
torch.backends.cudnn.benchmark = True


def step():
    with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        fg, border = crit.parts(model(x), y)
    opt.zero_grad(set_to_none=True)
    (fg + border).backward()
    opt.step()


for _ in range(5):
    step()
n = 30 if dev.type == "cuda" else 2
if dev.type == "cuda":
    torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(n):
    step()
if dev.type == "cuda":
    torch.cuda.synchronize()
gpu = n * batch / (time.perf_counter() - t)
rng = np.random.default_rng(0)
img = rng.integers(0, 255, (600, 600, 3), dtype=np.uint8)
tgt = (rng.random((2, 600, 600)) > 0.7).astype(np.uint8)
data = InstanceData(["x"], [img], [], [tgt], np.ones(1), np.ones(1))
ds = InstanceCropDataset(data, 1, crop, (0.8, 1.25), AppearanceV2(), crops=np.array([10_000]))
t, k = time.perf_counter(), 0
while time.perf_counter() - t < 2.0:
    ds[(0, k)]
    k += 1
core = k / (time.perf_counter() - t)
rate = min(gpu, 0.85 * workers * core)
epochs = int((budget - 40) / (20839 / rate + 8))
print(f"probe: GPU step {gpu:.0f} crops/s, one core {core:.0f} crops/s -> {rate:.0f} crops/s, {epochs} epochs",
      file=sys.stderr)
print(max(4, min(epochs, 60)))
PY
)
fi
echo "epochs: $EPOCHS"
timeout $((TRAIN_S + 100)) $PY -m unetpp train-instance --data .gpu/data -o "$RUN" --cache .gpu/instances_cache.npz \
  --init .gpu/init_fp16.pt --selection shipped --deep-supervision --augment-preset v2 \
  --crop "${CROP:-128}" --batch-size "${BATCH:-32}" --crop-area "${CROP_AREA:-2048}" --crop-nuclei "${CROP_NUCLEI:-3}" \
  --max-crops "${MAX_CROPS:-320}" --view-size "${VIEW:-160}" --epochs "$EPOCHS" --lr 1e-3 --min-lr 1e-5 \
  --warmup-epochs 1 --ema 0.999 --bn-recalibrate 256 --device "${DEVICE:-cuda}" --bf16 --workers "${WORKERS:-14}" \
  --prefetch 0 --keep-epochs --time-limit "$TRAIN_S" --no-progress
echo "train-instance exit $?"
date -u
cp "$RUN/log.csv" "$OUT/log.csv" 2>/dev/null
$PY - "$RUN" "$OUT" <<'PY'
import sys
from pathlib import Path

import torch

run, out = Path(sys.argv[1]), Path(sys.argv[2])
part = 16 * 1024 * 1024 - 4096


def split(path: Path, stem: str) -> None:
    data = path.read_bytes()
    for k in range(0, len(data), part):
        (out / f"{stem}.part{k // part}").write_bytes(data[k:k + part])
    print(stem, len(data), "bytes in", -(-len(data) // part), "parts")


if (run / "best.pt").is_file():
    split(run / "best.pt", "best_fp32")
epochs = sorted((run / "epochs").glob("epoch_*.pt"))
best = torch.load(run / "best.pt", map_location="cpu", weights_only=False) if (run / "best.pt").is_file() else None
if epochs:
    last = torch.load(epochs[-1], map_location="cpu", weights_only=False)
    if best is None or last["meta"].get("epoch") != best["meta"].get("epoch"):
        last["state_dict"] = {k: (v.half() if v.is_floating_point() else v) for k, v in last["state_dict"].items()}
        last["meta"]["stored_as"] = "fp16 weights (device transfer limit)"
        torch.save(last, out / "last_fp16.pt")
        split(out / "last_fp16.pt", "last_fp16")
        (out / "last_fp16.pt").unlink()
PY
ls -la "$OUT"
