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


# /proc/cpuinfo's "CPU implementer" and "CPU part" on ARM (Linux's arch/arm64 cputype.h): boards and
# phones often have no "model name" line, and a phone mixes core types
ARM_IMPLEMENTERS = {0x41: "ARM", 0x42: "Broadcom", 0x48: "HiSilicon", 0x51: "Qualcomm", 0x61: "Apple",
                    0xC0: "Ampere"}
ARM_PARTS = {(0x41, 0xD03): "Cortex-A53", (0x41, 0xD04): "Cortex-A35", (0x41, 0xD05): "Cortex-A55",
             (0x41, 0xD07): "Cortex-A57", (0x41, 0xD08): "Cortex-A72", (0x41, 0xD09): "Cortex-A73",
             (0x41, 0xD0A): "Cortex-A75", (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0C): "Neoverse-N1",
             (0x41, 0xD0D): "Cortex-A77", (0x41, 0xD40): "Neoverse-V1", (0x41, 0xD41): "Cortex-A78",
             (0x41, 0xD44): "Cortex-X1", (0x41, 0xD46): "Cortex-A510", (0x41, 0xD47): "Cortex-A710",
             (0x41, 0xD48): "Cortex-X2", (0x41, 0xD49): "Neoverse-N2", (0x41, 0xD4D): "Cortex-A715",
             (0x41, 0xD4E): "Cortex-X3", (0x41, 0xD4F): "Neoverse-V2", (0x41, 0xD80): "Cortex-A520",
             (0x41, 0xD81): "Cortex-A720", (0x41, 0xD82): "Cortex-X4"}
ARM_MACHINES = ("aarch64", "arm64", "armv7l", "armv8l")


def describe_cpu(cpuinfo: str, device_model: str | None = None, machine: str = "") -> dict:
    """The CPU as a person would name it, from /proc/cpuinfo's text (and the device tree's model):
    x86's "model name"; on ARM the board or SoC name with its core types and counts, from the
    implementer and part fields ("Raspberry Pi 5 Model B Rev 1.0 (4x Cortex-A76)"). ``emulated``:
    an ARM Python whose cpuinfo describes an x86 host, as under qemu-user, where times are the
    emulator's, not the board's."""
    fields: dict[str, str] = {}
    cores: list[tuple[int, int]] = []
    core: dict[str, int] = {}
    for line in cpuinfo.splitlines() + [""]:
        key, _, value = (part.strip() for part in line.partition(":"))
        if not key:  # a blank line ends one processor's block
            if "CPU implementer" in core and "CPU part" in core:
                cores.append((core["CPU implementer"], core["CPU part"]))
            core = {}
            continue
        fields.setdefault(key.lower(), value)
        if key in ("CPU implementer", "CPU part"):
            try:
                core[key] = int(value, 0)
            except ValueError:
                pass
    x86 = "model name" in fields and fields.get("vendor_id", "") in ("GenuineIntel", "AuthenticAMD", "")
    emulated = machine in ARM_MACHINES and x86 and "vendor_id" in fields
    names: dict[str, int] = {}
    for impl, part in cores:
        name = ARM_PARTS.get((impl, part), f"{ARM_IMPLEMENTERS.get(impl, hex(impl))} part {part:#x}")
        names[name] = names.get(name, 0) + 1
    kinds = ", ".join(f"{n}x {name}" for name, n in sorted(names.items(), key=lambda kv: -kv[1]))
    model = (device_model or "").strip("\x00 \n") or fields.get("model") or fields.get("hardware")
    if x86:
        cpu = fields["model name"]
    elif model or kinds:
        cpu = f"{model} ({kinds})" if model and kinds else model or kinds
    else:
        cpu = platform.processor() or machine
    out = {"cpu": cpu, "emulated": emulated}
    if cores:
        out["arm_cores"] = [f"{impl:#x}:{part:#x}" for impl, part in cores]
    return out


def this_cpu() -> dict:
    return describe_cpu(_read("/proc/cpuinfo") or "", _read("/proc/device-tree/model"), platform.machine())


def host_info() -> dict:
    """What the machine is (CPU, cores, OS, Python, frequency governor): one description for the
    host's records (machine.describe) and a device's (device_info)."""
    return {**this_cpu(), "cores": os.cpu_count(), "machine": platform.machine(),
            "system": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")}


def device_info(runtime: str, version: str, threads: int) -> dict:
    return {**host_info(), "runtime": runtime, "runtime_version": version, "threads": threads,
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
