"""Time exported LUT entries on the target device. Needs numpy and one runtime, no torch.

    python ghostnas_runner.py DIR [--threads 1] [--warmup 10] [--runs 30] [--clock auto|wall|cpu]
                              [--no-reference]

DIR is what ``ghostnas lut export-blocks`` wrote (``manifest.json`` + models). The runner times
every model at batch 1 with the given thread count, each run between runs of the folder's
reference model (its ratio to the reference, so a device that speeds up or throttles mid-run
does not skew the table), appends each result to ``DIR/measured.csv`` as
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


CLOCKS = ("auto", "wall", "cpu")


def resolve_clock(clock: str, threads: int) -> str:
    """``auto``: the calling thread's CPU time when the runtime computes on that one thread (1
    thread), wall time otherwise. CPU time is immune to other processes preempting the benchmark
    (on a shared 2-core VM wall medians moved 70%, thread CPU time 5%); with more threads the
    work runs on pool threads this clock cannot see."""
    if clock not in CLOCKS:
        raise ValueError(f"unknown clock {clock!r}; use one of {', '.join(CLOCKS)}")
    return ("cpu" if threads == 1 else "wall") if clock == "auto" else clock


def _stats(times: list[float], scale: float = 1.0) -> dict:
    times = sorted(t * scale for t in times)
    return {"median_ms": round(statistics.median(times), 5), "p10_ms": round(times[len(times) // 10], 5),
            "p90_ms": round(times[min(len(times) - 1, len(times) * 9 // 10)], 5), "runs": len(times)}


def time_it(run, warmup: int, runs: int, clock: str = "wall", reference=None,
            reference_ms: float | None = None) -> dict:
    """Median and spread (p10, p90) in ms after warm-up, on ``clock`` (wall or cpu: see
    ``resolve_clock``); the median ignores outliers (preemption, page faults).

    With ``reference`` (another runner) and its nominal ``reference_ms``, every run is sandwiched
    between two reference runs on each side and the result is the median of run / reference
    ratios times ``reference_ms``: a shared VM's speed drifts by 20-50% within seconds, and the
    ratio to a neighbour in time cancels it (same arch re-timed: +/-20% raw, +/-4% referenced)."""
    now = time.thread_time if clock == "cpu" else time.perf_counter
    for _ in range(warmup):
        run()
        if reference is not None:
            reference()
    if reference is None:
        times = []
        for _ in range(runs):
            t = now()
            run()
            times.append((now() - t) * 1e3)
        return _stats(times)
    ratios, raw = [], []
    for _ in range(runs):
        t0 = now()
        reference()
        reference()
        t1 = now()
        run()
        t2 = now()
        reference()
        reference()
        t3 = now()
        ratios.append((t2 - t1) / max((t1 - t0 + t3 - t2) / 4, 1e-9))
        raw.append((t2 - t1) * 1e3)
    out = _stats(ratios, reference_ms)
    out["raw_median_ms"] = round(statistics.median(raw), 5)
    return out


def nominal_ms(run, clock: str, bursts: int = 15, per_burst: int = 20, pause_s: float = 0.05) -> float:
    """A runner's typical latency: the median of burst medians spread over a few seconds, so one
    fast or slow moment of a drifting machine does not set the scale."""
    medians = []
    for _ in range(bursts):
        medians.append(time_it(run, 2, per_burst, clock)["median_ms"])
        time.sleep(pause_s)
    return round(statistics.median(medians), 5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="time exported ghostnas LUT entries on this device")
    ap.add_argument("folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--clock", choices=CLOCKS, default="auto",
                    help="auto (default): thread CPU time at 1 thread, wall time otherwise")
    ap.add_argument("--no-reference", action="store_true",
                    help="time models alone, not against the reference model (see time_it)")
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
    clock = resolve_clock(args.clock, args.threads)
    info = device_info(runtime, version, args.threads)
    info["clock"] = clock
    ref = ref_ms = None
    if manifest.get("reference") and not args.no_reference:
        item = manifest["reference"]
        ref = make(folder / item["file"], item["input_shape"], args.threads)
        previous = json.loads(_read(str(folder / "device.json")) or "{}")
        ref_ms = previous.get("reference_ms") or nominal_ms(ref, clock)  # a resumed run keeps its scale
        info["reference_ms"] = ref_ms
    (folder / "device.json").write_text(json.dumps(info, indent=1))
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
        writer = csv.DictWriter(fh, fieldnames=FIELDS, extrasaction="ignore")  # e.g. raw_median_ms
        if new:
            writer.writeheader()
        start = time.perf_counter()
        for n, item in enumerate(todo, 1):
            run = make(folder / item["file"], item["input_shape"], args.threads)
            writer.writerow({"key": item["key"], "file": item["file"], **time_it(run, args.warmup, args.runs, clock, ref, ref_ms)})
            fh.flush()
            os.fsync(fh.fileno())
            if n % 20 == 0 or n == len(todo):
                eta = (time.perf_counter() - start) / n * (len(todo) - n)
                print(f"  {n}/{len(todo)} timed, ETA {eta / 60:.1f} min", flush=True)
    print(f"done: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
