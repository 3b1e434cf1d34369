#!/usr/bin/env bash
# The paper-vs-search comparison (benchmarks/reproduce_paper.py) at ImageNet scale, as one command
# for a GPU machine with ImageNet-1k on disk (docs/imagenet.md: its cost, ~5.2 GPU-hours per
# epoch of the evaluation schedule on one H200):
#
#   IMAGENET=/data/imagenet bash benchmarks/imagenet_paper_vs_search.sh
#
# IMAGENET holds train/CLASS/IMAGE and val/CLASS/IMAGE (the 50,000 validation images sorted into
# class folders); it is streamed from the files (ghostnas/stream.py). The search's validation
# split is 10 training images a class; val/ is the test set, read only for the final table.
# Settings (environment): EPOCHS of the stand-alone schedule (default 100), TRIALS per proxy
# search (default 64, protocol imagenet-proxy: 1 epoch over 100 images a class at 160 px),
# SEEDS (default "3 4 5"), LEVELS (default "0.5 1.0 1.3"), WORKERS decoding JPEGs per training
# (default: min(8, cores)), OUT. Latency budgets come from a table built on this machine first
# (onnxruntime, 1 thread, 20 min), or LUT names one built here already.
# Resumable, and shareable: start it once per GPU with CUDA_VISIBLE_DEVICES set; the processes
# take the searches and trainings one at a time and the last writes $OUT/REPORT-imagenet_*.md.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${IMAGENET:?set IMAGENET to a folder with train/CLASS/IMAGE and val/CLASS/IMAGE}"
OUT=${OUT:-results/imagenet}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
LUT=${LUT:-$OUT/ghostnet-onnxruntime-1t.csv}
if [ -n "${WORKERS:-}" ]; then export GHOSTNAS_WORKERS=$WORKERS; fi
if [ ! -f "$LUT" ]; then
    "$PY" -m ghostnas lut build --space ghostnet --backend onnxruntime --threads 1 --out "$LUT"
fi
# shellcheck disable=SC2086
exec "$PY" benchmarks/reproduce_paper.py --data "imagenet:$IMAGENET" --evaluators proxy \
    --search-protocol imagenet-proxy --trials "${TRIALS:-64}" --confirm 3 \
    --eval-protocol imagenet --eval-epochs "${EPOCHS:-100}" --seeds ${SEEDS:-3 4 5} --levels ${LEVELS:-0.5 1.0 1.3} \
    --lut "$LUT" --out "$OUT"
