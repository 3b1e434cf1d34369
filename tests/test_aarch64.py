"""The device path on an ARM userland: a few blocks exported as TFLite, timed by ghostnas_runner.py
on an emulated aarch64 Python (qemu-user, Debian arm64, the aarch64 wheels of numpy and
ai-edge-litert), and imported as a table marked as measured under emulation.
scripts/prepare_aarch64.sh prepares the userland (.ci/run runs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("GHOSTNAS_AARCH64", Path.home() / ".cache" / "ghostnas" / "aarch64"))
QEMU = shutil.which("qemu-aarch64-static")
MICRO = str(Path(__file__).parent / "fixtures" / "micro.yaml")  # 5 entries: each is a TFLite conversion

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(QEMU is None, reason="qemu-aarch64-static not installed (apt-get install qemu-user-static)"),
    pytest.mark.skipif(not (CACHE / "READY").exists(),
                       reason=f"no aarch64 userland in {CACHE}: run bash scripts/prepare_aarch64.sh"),
]


def test_the_runner_times_tflite_blocks_on_aarch64_and_lut_import_takes_them(tmp_path):
    pytest.importorskip("litert_torch", reason="exporting TFLite needs the [tflite] extra")
    from ghostnas.cost.lut import export_blocks, import_measurements
    from ghostnas.space import load_space

    folder = export_blocks(load_space(MICRO), "tflite", tmp_path / "dev", networks=2,
                           log=lambda m: None)
    root = CACHE / "root"
    run = subprocess.run([QEMU, "-L", str(root), "-E", f"PYTHONPATH={CACHE / 'site'}",
                          str(root / "usr" / "bin" / "python3.11"), str(folder / "ghostnas_runner.py"), str(folder),
                          "--threads", "1", "--warmup", "1", "--runs", "3",
                          "--no-reference"],  # the reference's 300 runs took ~15 s emulated; tested on x86
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    table = import_measurements(folder, tmp_path / "arm.csv")
    device = table.meta["device"]
    assert device["machine"] == "aarch64" and device["emulated"] is True and table.meta["backend"] == "litert"
    assert len(table.rows) == 5 and all(r["median_ms"] > 0 for r in table.rows.values())
    assert table.meta["calibration"]["networks"]  # the two whole networks (a calibration needs two), timed there too
