"""The ``adb`` latency backend: the export-blocks flow driven from the host for an Android phone.

Each .tflite model of an export-blocks folder is pushed to the phone and timed with TFLite's
``benchmark_model`` (``--num_threads=N --warmup_runs=W --num_runs=R``); its output is parsed and
written to the folder's ``measured.csv`` and ``device.json`` exactly as the on-device runner
writes them, so ``ghostnas lut import`` finishes the job. ``benchmark_model`` reports the mean, not
the median: the mean is stored as ``median_ms`` and the min/max as the spread (said in device.json).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import time
from pathlib import Path

from ...errors import GhostNASError

_AVG = re.compile(r"Inference \(avg\):\s*([\d.e+]+)")
_STATS = re.compile(r"count=(\d+)\s.*?min=([\d.e+]+)\s+max=([\d.e+]+)\s+avg=([\d.e+]+)(?:\s+std=([\d.e+]+))?")


def parse_benchmark_model(text: str) -> dict[str, float]:
    """Timings (ms) from benchmark_model's output: the 'Inference timings in us' summary and the
    last 'count=... min=... max=... avg=... std=...' line (the measured runs, after warm-up)."""
    stats = _STATS.findall(text)
    avg = _AVG.search(text)
    if not stats and not avg:
        raise GhostNASError("benchmark_model printed no timings; run it by hand to see why "
                            f"(output began: {text.strip()[:200]!r})")
    out: dict[str, float] = {}
    if stats:
        count, lo, hi, mean, std = stats[-1]
        out.update(runs=int(count), p10_ms=float(lo) / 1e3, p90_ms=float(hi) / 1e3,
                   median_ms=float(mean) / 1e3, std_ms=float(std or 0) / 1e3)
    if avg:
        out["median_ms"] = float(avg.group(1)) / 1e3
    return out


def _adb(serial: str | None, *args: str, timeout: float = 300) -> str:
    cmd = ["adb", *(["-s", serial] if serial else []), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise GhostNASError("adb not found; install Android platform-tools and connect the phone") from None
    if done.returncode != 0:
        raise GhostNASError(f"{' '.join(cmd)} failed: {(done.stderr or done.stdout).strip()[:300]}")
    return done.stdout


def run_adb(folder: "str | os.PathLike[str]", serial: str | None = None, threads: int = 1,
            warmup: int = 10, runs: int = 50, binary: str = "/data/local/tmp/benchmark_model",
            remote_dir: str = "/data/local/tmp/ghostnas") -> Path:
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest["format"] != "tflite":
        raise GhostNASError("the adb backend times .tflite models: export with --format tflite")
    model = _adb(serial, "shell", "getprop", "ro.product.model").strip()
    cpu = _adb(serial, "shell", "cat", "/proc/cpuinfo")
    hw = next((line.split(":", 1)[1].strip() for line in cpu.splitlines()
               if line.lower().startswith("hardware")), "unknown")
    (folder / "device.json").write_text(json.dumps({
        "cpu": f"{model} ({hw})", "runtime": "tflite-benchmark_model", "runtime_version": binary,
        "threads": threads, "note": "benchmark_model reports the mean: stored as median_ms; p10/p90 = min/max",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=1))
    _adb(serial, "shell", "mkdir", "-p", remote_dir)
    out = folder / "measured.csv"
    done = set()
    if out.exists():
        with open(out, newline="") as fh:
            done = {r["file"] for r in csv.DictReader(fh) if r.get("runs")}
    new = not out.exists()
    with open(out, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["key", "file", "median_ms", "p10_ms", "p90_ms", "runs"])
        if new:
            writer.writeheader()
        for item in manifest["entries"] + manifest.get("networks", []):
            if item["file"] in done:
                continue
            remote = f"{remote_dir}/{Path(item['file']).name}"
            _adb(serial, "push", str(folder / item["file"]), remote)
            text = _adb(serial, "shell", binary, f"--graph={remote}", f"--num_threads={threads}",
                        f"--warmup_runs={warmup}", f"--num_runs={runs}")
            t = parse_benchmark_model(text)
            writer.writerow({"key": item["key"], "file": item["file"], "median_ms": t["median_ms"],
                             "p10_ms": t.get("p10_ms", t["median_ms"]), "p90_ms": t.get("p90_ms", t["median_ms"]),
                             "runs": t.get("runs", runs)})
            fh.flush()
            os.fsync(fh.fileno())
            _adb(serial, "shell", "rm", "-f", remote)
    return out
