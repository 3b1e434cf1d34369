"""Time exported LUT entries on the target device. Needs numpy and one runtime, no torch.

    python ghostnas_runner.py DIR [--threads 1] [--warmup 10] [--runs 30]

DIR is what ``ghostnas lut export-blocks`` wrote (``manifest.json`` + models). The runner times
every model at batch 1 with the given thread count, appends each result to ``DIR/measured.csv`` as
soon as it has it (an interrupted run resumes where it stopped), and writes ``DIR/device.json``
(CPU, cores, governor, runtime and version). Copy the folder back and run
``ghostnas lut import DIR --out my-device.csv``.

This file is copied into DIR by export-blocks: it must import nothing but the standard library,
numpy and the runtime (onnxruntime, or ai_edge_litert for .tflite).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

FIELDS = ["key", "file", "median_ms", "p10_ms", "p90_ms", "runs"]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def device_info(runtime: str, version: str, threads: int) -> dict:
    cpu = platform.processor() or platform.machine()
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.lower().startswith(("model name", "hardware")):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(),
            "system": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            "runtime": runtime, "runtime_version": version, "threads": threads,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def onnx_runner(path: Path, shape: list[int], threads: int):
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal(shape).astype("float32")}
    return lambda: session.run(None, feed)


def tflite_runner(path: Path, shape: list[int], threads: int):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], np.random.default_rng(0).standard_normal(shape).astype("float32"))
    return interp.invoke


def time_it(run, warmup: int, runs: int) -> dict:
    """Median and spread (p10, p90) in ms after warm-up; the median ignores outliers
    (preemption, page faults)."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return {"median_ms": round(statistics.median(times), 5), "p10_ms": round(times[len(times) // 10], 5),
            "p90_ms": round(times[min(len(times) - 1, len(times) * 9 // 10)], 5), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="time exported ghostnas LUT entries on this device")
    ap.add_argument("folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"ghostnas_runner: error: {folder}/manifest.json unreadable ({exc}); pass the folder "
              "written by `ghostnas lut export-blocks`", file=sys.stderr)
        return 2
    fmt = manifest["format"]
    if fmt == "onnx":
        import onnxruntime

        make, runtime, version = onnx_runner, "onnxruntime", onnxruntime.__version__
    else:
        import ai_edge_litert

        make, runtime = tflite_runner, "litert"
        version = getattr(ai_edge_litert, "__version__", "unknown")
    (folder / "device.json").write_text(json.dumps(device_info(runtime, version, args.threads), indent=1))
    out = folder / "measured.csv"
    done = set()
    if out.exists():
        with open(out, newline="") as fh:
            done = {row["file"] for row in csv.DictReader(fh) if row.get("runs")}
    items = manifest["entries"] + manifest.get("networks", [])
    todo = [item for item in items if item["file"] not in done]
    print(f"{len(items)} models, {len(done)} already timed; {runtime} {version}, {args.threads} thread(s)")
    new = not out.exists()
    with open(out, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        start = time.perf_counter()
        for n, item in enumerate(todo, 1):
            run = make(folder / item["file"], item["input_shape"], args.threads)
            writer.writerow({"key": item["key"], "file": item["file"], **time_it(run, args.warmup, args.runs)})
            fh.flush()
            os.fsync(fh.fileno())
            if n % 20 == 0 or n == len(todo):
                eta = (time.perf_counter() - start) / n * (len(todo) - n)
                print(f"  {n}/{len(todo)} timed, ETA {eta / 60:.1f} min", flush=True)
    print(f"done: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
