"""Building a table on this machine (``ghostnas lut build``) and checking one against end-to-end
timings (``ghostnas lut check``)."""

from __future__ import annotations

import csv
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ...errors import GhostNASError
from .keys import COLUMNS, arch_entries, select_entries, space_entries
from .table import LUT_FORMAT, LatencyModel, fit_calibration, read_rows
from .timing import allocator_for, backend_version, entry_module, measure, measure_arch, measure_reference, require_same_allocator


def build_lut(space, backend: str, out: "str | os.PathLike[str]", threads: int = 1,
              max_entries: int | None = None, calibrate: int = 16, seed: int = 0, clock: str = "auto",
              reference: bool = True, progress: bool = False,
              log: Callable[[str], None] = print) -> LatencyModel:
    """Measure the space's entries (all, or a stratified sample of ``max_entries``), appending
    each to ``out`` as soon as it is measured; an existing file is resumed, not re-measured."""
    from ...device_runner import resolve_clock
    from ...machine import busy_warning, describe

    out = Path(out)
    clock = resolve_clock(clock, threads)
    meta_path = Path(str(out) + ".meta.json")
    if out.exists():
        data = out.read_bytes()
        if data and not data.endswith(b"\n"):  # a row torn by an interruption: drop it
            with open(out, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
    done = read_rows(out) if out.exists() else {}
    entries = select_entries(space, max_entries, seed, measured=set(done))
    todo = [e for e in entries if e.key not in done]
    old = json.loads(meta_path.read_text()) if done and meta_path.exists() else None
    if old is not None:  # resuming: the new entries must be timed like the old ones
        if (old.get("backend"), old.get("threads"), old.get("clock", "wall")) != (backend, threads, clock):
            raise GhostNASError(f"{out} was measured with {old.get('backend')}, {old.get('threads')} "
                                f"thread(s), {old.get('clock', 'wall')} clock; resume with the same "
                                "--backend/--threads/--clock or a new --out")
        require_same_allocator(old, backend, out, "its entries are not comparable; rebuild with a new --out")
        if bool(old.get("reference")) != reference:
            raise GhostNASError(f"{out} was measured {'with' if old.get('reference') else 'without'} the "
                                "reference; resume with the same setting or a new --out")
    log(f"{len(entries)} entries ({len(done)} already measured, {len(todo)} to go); "
        f"backend {backend}, {threads} thread(s)")
    busy = busy_warning()
    if busy:
        log(busy)
    meta = {"format": LUT_FORMAT, "space": space.name, "space_name": space.name, "space_hash": space.digest(),
            "resolution": space.resolution, "backend": backend, "backend_version": backend_version(backend),
            "threads": threads, "clock": clock, "allocator": allocator_for(backend),
            "device": describe(threads=threads),
            "entries_in_space": len(space_entries(space))}
    from ...io import atomic_write_text

    if old is not None:
        meta["overhead_ms"], meta["reference"] = old.get("overhead_ms"), old.get("reference")
        meta["build_seconds"] = old.get("build_seconds", 0.0)
        if old.get("calibration"):  # still usable while the resumed build runs; refitted at the end
            meta["calibration"] = old["calibration"]
    elif reference:
        meta["reference"] = measure_reference(backend, threads, clock)
    ref_ms = (meta.get("reference") or {}).get("ms")
    if meta.get("overhead_ms") is None:
        import torch

        meta["overhead_ms"] = measure(torch.nn.Identity(), (1, 3, 8, 8), backend, threads,
                                      warmup=20, repeats=200, clock=clock, reference_ms=ref_ms)["median_ms"]
    atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    new_file = not out.exists() or out.stat().st_size == 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), unit="entry", desc="lut build")
    t0 = time.perf_counter()
    with open(out, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")  # e.g. raw_median_ms
        if new_file:
            writer.writeheader()
        for n, e in enumerate(todo):
            module, shape = entry_module(e)
            stats = measure(module, shape, backend, threads, clock=clock, reference_ms=ref_ms)
            writer.writerow({"key": e.key, "kind": e.kind, **e.features(),
                             **{k: round(v, 5) for k, v in stats.items()}})
            fh.flush()
            os.fsync(fh.fileno())  # every entry survives an interruption
            if bar:
                bar.update(1)
            elif n == 0 and len(todo) > 1:
                eta = (time.perf_counter() - t0) * (len(todo) - 1)
                log(f"first entry took {time.perf_counter() - t0:.2f} s; ETA ~{eta / 60:.1f} min"
                    + (f", then {calibrate} networks for the calibration" if calibrate else ""))
    if bar:
        bar.close()
    model = LatencyModel(read_rows(out), meta, out)
    if calibrate:
        rng = random.Random(seed + 1)
        networks = []
        log(f"calibration: timing {calibrate} random networks end to end")
        bar = tqdm(total=calibrate, unit="network", desc="calibration") if progress else None
        t_cal = time.perf_counter()
        for n in range(calibrate):
            arch = space.to_arch(space.sample(rng))
            networks.append({"keys": [e.key for e in arch_entries(arch.resolve())],
                             "ms": measure_arch(arch, backend, threads, clock=clock, reference_ms=ref_ms)})
            if bar:
                bar.update(1)
            elif n == 0 and calibrate > 1:
                log(f"first network took {time.perf_counter() - t_cal:.2f} s; "
                    f"ETA ~{(time.perf_counter() - t_cal) * (calibrate - 1) / 60:.1f} min")
        if bar:
            bar.close()
        meta["calibration"] = fit_calibration(model, networks)
    meta["build_seconds"] = round(meta.get("build_seconds", 0.0) + time.perf_counter() - t0, 1)  # all runs
    atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    return LatencyModel(model.rows, meta, out)


def check_lut(model: LatencyModel, space, n: int = 50, seed: int = 1234, times: int = 3,
              progress: bool = False) -> dict[str, Any]:
    """Predicted vs measured end-to-end latency of ``n`` random Archs of the LUT's space; each
    measured value is the median of ``times`` separate timings, so the check's own noise does not
    count as prediction error."""
    from scipy.stats import kendalltau

    from ...machine import load_1min

    backend, threads = model.meta["backend"], int(model.meta["threads"])
    require_same_allocator(model.meta, backend, model.path,
                           "rebuild the table with `ghostnas lut build` before checking it")
    load_at_start = load_1min()
    rng = random.Random(seed)
    per_arch = []
    iterator: Iterator[int] = range(n)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, unit="arch", desc="lut check")
    for i in iterator:
        arch = space.to_arch(space.sample(rng))
        predicted = model.predict_arch(arch)
        measured = model.measure_arch(arch, times)
        per_arch.append({"arch": i, "predicted_ms": round(predicted, 4), "measured_ms": round(measured, 4),
                         "error_pct": round(100 * (predicted - measured) / measured, 2)})
    errs = [abs(p["error_pct"]) / 100 for p in per_arch]
    tau = kendalltau([p["predicted_ms"] for p in per_arch], [p["measured_ms"] for p in per_arch]).statistic
    return {"n": n, "mape": statistics.mean(errs), "within_5pct": sum(e <= 0.05 for e in errs) / n,
            "within_10pct": sum(e <= 0.10 for e in errs) / n, "kendall_tau": float(tau),
            "times": times, "backend": backend, "threads": threads, "clock": model.meta.get("clock", "wall"),
            "referenced": bool(model.meta.get("reference")), "load_1min": load_at_start,
            "lut": str(model.path), "per_arch": per_arch}

