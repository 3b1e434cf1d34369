#!/usr/bin/env bash
# An emulated aarch64 Python for testing the device runner (ghostnas_runner.py) as it runs on an ARM
# board: a Debian bookworm arm64 userland with python3.11 (debootstrap's first stage only, its
# packages unpacked with dpkg -x: nothing runs as arm64 during set-up), numpy and ai-edge-litert
# from PyPI's aarch64 wheels, run through qemu-user (qemu-aarch64-static -L ROOT).
#
#   bash scripts/prepare_aarch64.sh [CACHE]     default: ~/.cache/ghostnas/aarch64; about a minute
#
# Resumable: each step is skipped when its result is there; CACHE/READY marks the end. Needs the
# Debian packages debootstrap and qemu-user-static (installed when run as root) and reaches only
# Debian's and PyPI's registries. onnxruntime's aarch64 wheel crashes at import under qemu-user, so
# only the LiteRT runtime is prepared. Times measured under emulation are the emulator's, not an
# ARM board's: tables imported from here are marked "emulated" (see docs/latency.md).
set -euo pipefail
CACHE=${1:-${HOME}/.cache/ghostnas/aarch64}
ROOT="$CACHE/root"
PY=${PYTHON:-python3}
mkdir -p "$CACHE"
if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && apt-get install -y -qq qemu-user-static debootstrap; } >/dev/null
  else
    echo "prepare_aarch64: needs qemu-user-static and debootstrap (apt-get install as root)" >&2; exit 2
  fi
fi
if [ ! -x "$ROOT/usr/bin/python3.11" ]; then
  if [ ! -d "$ROOT/var/cache/apt/archives" ] || ! ls "$ROOT"/var/cache/apt/archives/python3.11_*.deb >/dev/null 2>&1; then
    rm -rf "$ROOT"
    debootstrap --foreign --arch=arm64 --variant=minbase --include=python3 bookworm "$ROOT" \
      http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1
  fi
  for deb in "$ROOT"/var/cache/apt/archives/*.deb; do dpkg -x "$deb" "$ROOT"; done
fi
if [ ! -f "$CACHE/site/.done" ]; then
  rm -rf "$CACHE/wheels" "$CACHE/site"
  if ! "$PY" -m pip --version >/dev/null 2>&1; then  # a Python without pip: a throwaway venv has one
    "$PY" -m venv "$CACHE/pipenv" && PY="$CACHE/pipenv/bin/python"
  fi
  "$PY" -m pip download -q --disable-pip-version-check --only-binary=:all: --python-version 3.11 --implementation cp \
    --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 -d "$CACHE/wheels" numpy ai-edge-litert
  mkdir -p "$CACHE/site"
  for whl in "$CACHE"/wheels/*.whl; do "$PY" -m zipfile -e "$whl" "$CACHE/site/"; done
  touch "$CACHE/site/.done"
fi
qemu-aarch64-static -L "$ROOT" -E PYTHONPATH="$CACHE/site" "$ROOT/usr/bin/python3.11" -c \
  "import platform, numpy, ai_edge_litert.interpreter; assert platform.machine() == 'aarch64'"
touch "$CACHE/READY"
echo "aarch64 userland ready in $CACHE"
