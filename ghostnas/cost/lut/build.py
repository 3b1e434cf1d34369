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
from typing import Any, Callable

from ...errors import GhostNASError
from ..analytic import count
from .keys import COLUMNS, arch_entries, select_entries, space_entries
from .table import LUT_FORMAT, LatencyModel, fit_calibration, read_rows
from .timing import allocator_for, backend_version, entry_module, measure, measure_arch, measure_reference, require_same_allocator


class Eta:
    """Time left, from the work done so far: each finished item's seconds against its MACs, fitted
    as seconds = a + b * MACs (least squares once a few are done), summed over what is left. Items
    differ a hundredfold in cost (a 112 px block against a 7 px one), so a count-based ETA, or one
    taken from the first item, misleads."""

    def __init__(self, weights: list[float]):
        self.left = list(weights)
        self.done: list[tuple[float, float]] = []  # (MACs, seconds)
        self.started = time.perf_counter()
        self._last = self.started

    def tick(self) -> None:
        now = time.perf_counter()
        self.done.append((self.left.pop(0), now - self._last))
        self._last = now

    def seconds_left(self, deadline: float | None = None) -> float:
        """Seconds until the rest is done, or until ``deadline`` (a perf_counter time) if sooner."""
        cap = float("inf") if deadline is None else max(0.0, deadline - time.perf_counter())
        if not self.done:
            return cap if deadline is not None else float("nan")
        xs, ys = zip(*self.done)
        n, mx, my = len(xs), sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if n >= 5 and sxx > 0 else 0.0
        b = max(b, 0.0)
        a = max(my - b * mx, 0.0)
        return min(cap, sum(a + b * w for w in self.left))

    def line(self, what: str, deadline: float | None = None) -> str:
        total = len(self.done) + len(self.left)
        return (f"{what}: {len(self.done)}/{total} ({100 * len(self.done) / total:.0f}%), "
                f"{(time.perf_counter() - self.started) / 60:.1f} min so far, "
                f"ETA ~{self.seconds_left(deadline) / 60:.1f} min")


def _resume(out: Path, space, backend: str, threads: int, clock: str, reference: bool):
    """(rows already measured, their metadata or None): a torn last row is dropped, and a table
    timed another way or for another space is refused."""
    meta_path = Path(str(out) + ".meta.json")
    if out.exists():
        data = out.read_bytes()
        if data and not data.endswith(b"\n"):  # a row torn by an interruption: drop it
            with open(out, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
    done = read_rows(out) if out.exists() else {}
    old = LatencyModel.load(out).meta if done and meta_path.exists() else None
    if old is None:
        return done, None
    if (old.get("backend"), old.get("threads"), old.get("clock", "wall")) != (backend, threads, clock):
        raise GhostNASError(f"{out} was measured with {old.get('backend')}, {old.get('threads')} "
                            f"thread(s), {old.get('clock', 'wall')} clock; resume with the same "
                            "--backend/--threads/--clock or a new --out")
    require_same_allocator(old, backend, out, "its entries are not comparable; rebuild with a new --out")
    if bool(old.get("reference")) != reference:
        raise GhostNASError(f"{out} was measured {'with' if old.get('reference') else 'without'} the "
                            "reference; resume with the same setting or a new --out")
    LatencyModel(done, old, out).require_space(space)
    return done, old


def _start_meta(space, backend: str, threads: int, clock: str, reference: bool, old: dict | None) -> dict:
    from ...machine import describe

    meta = {"format": LUT_FORMAT, "space": space.name, "space_name": space.name, "space_hash": space.digest(),
            "resolution": space.resolution, "backend": backend, "backend_version": backend_version(backend),
            "threads": threads, "clock": clock, "allocator": allocator_for(backend),
            "device": describe(threads=threads), "entries_in_space": len(space_entries(space))}
    if old is not None:
        meta["overhead_ms"], meta["reference"] = old.get("overhead_ms"), old.get("reference")
        meta["build_seconds"] = old.get("build_seconds", 0.0)
        if old.get("calibration"):  # still usable while the resumed build runs; refitted at the end
            meta["calibration"] = old["calibration"]
        if old.get("calibration_during_build"):  # networks timed before the interruption
            meta["calibration_during_build"] = old["calibration_during_build"]
    elif reference:
        meta["reference"] = measure_reference(backend, threads, clock)
    if meta.get("overhead_ms") is None:
        import torch

        meta["overhead_ms"] = measure(torch.nn.Identity(), (1, 3, 8, 8), backend, threads, warmup=20, repeats=200,
                                      clock=clock, reference_ms=(meta.get("reference") or {}).get("ms"))["median_ms"]
    return meta


def _progress(total: int, what: str, unit: str, show: bool):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, desc=what)


# A fresh `lut build` measures for this long by default, then lets the predictor cover the
# entries left: 20 minutes measured 15,007 of the default space's 19,053 onnxruntime entries on
# a 2-core AMD EPYC, and its two checks put 100% and 96% of networks within 10% (docs/latency.md).
# Machines differ several-fold in seconds per entry, so the default is a time, not a count.
DEFAULT_BUILD_MINUTES = 20.0
# the share of the time budget kept for the calibration networks timed after the entries
CALIBRATION_SHARE = 0.08  # a 20-minute build spent ~66 s after its entries (32 networks, the fit)


def _measure_entries(out: Path, todo: list, meta: dict, log: Callable[[str], None], show: bool,
                     deadline: float | None = None, after_entry: Callable[[int], None] | None = None) -> int:
    """Time each entry in order and append it at once (fsync'd: every entry survives an
    interruption), until ``deadline`` (a perf_counter time) passes; returns how many were timed."""
    backend, threads, clock = meta["backend"], meta["threads"], meta["clock"]
    ref_ms = (meta.get("reference") or {}).get("ms")
    new_file = not out.exists() or out.stat().st_size == 0
    eta, bar = Eta([e.features()["macs"] for e in todo]), _progress(len(todo), "lut build", "entry", show)
    every, logged = max(1, len(todo) // 10), time.perf_counter()  # a line each tenth, or each minute
    with open(out, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")  # e.g. raw_median_ms
        if new_file:
            writer.writeheader()
        n = 0
        for n, e in enumerate(todo, start=1):
            if deadline is not None and time.perf_counter() > deadline:
                n -= 1
                log(f"time budget spent: {n} of {len(todo)} entries timed this run; the predictor covers "
                    "the rest (rerun with more --minutes to grow the table)")
                break
            module, shape = entry_module(e)
            stats = measure(module, shape, backend, threads, clock=clock, reference_ms=ref_ms)
            writer.writerow({"key": e.key, "kind": e.kind, **e.features(), **{k: round(v, 5) for k, v in stats.items()}})
            fh.flush()
            os.fsync(fh.fileno())
            eta.tick()
            if after_entry:
                after_entry(n)
            if bar:
                bar.update(1)
                bar.set_postfix_str(f"ETA ~{eta.seconds_left(deadline) / 60:.1f} min")
            elif n == 1 or n % every == 0 or time.perf_counter() - logged > 60:
                log(eta.line("entries", deadline))
                logged = time.perf_counter()
    if bar:
        bar.close()
    return n


class Calibration:
    """The networks timed end to end to fit whole = a * sum + b, each timed twice: once at its turn
    during the entry phase (spread evenly over it) and once after it, its time the mean of the two.

    On a shared VM the ratio of a whole network to the reference block drifts by ~5% over minutes
    (two checks of one table, minutes apart: mean error +5.6% and +0.7%), and the entries, timed
    over the whole build, average over that drift; networks timed only at the end caught one
    moment of it, and the fit carried that moment's bias into every prediction. Timings done
    during the build are kept in the metadata, so an interrupted build resumes with them."""

    def __init__(self, space, n: int, seed: int, meta: dict, meta_path: Path, todo: int,
                 t0: float, deadline: float | None):
        rng = random.Random(seed + 1)
        self.archs = [space.to_arch(space.sample(rng)) for _ in range(n)]
        self.meta, self.meta_path, self.todo, self.t0, self.deadline = meta, meta_path, todo, t0, deadline
        self.during = {int(i): ms for i, ms in (meta.get("calibration_during_build") or {}).items() if int(i) < n}

    def _time(self, arch) -> float:
        m = self.meta
        return measure_arch(arch, m["backend"], m["threads"], clock=m["clock"],
                            reference_ms=(m.get("reference") or {}).get("ms"))

    def between_entries(self, done: int) -> None:
        """Time the next network if the entry phase has come far enough (by entries or by time)."""
        from ...io import atomic_write_text

        left = [i for i in range(len(self.archs)) if i not in self.during]
        if not left:
            return
        progress = done / self.todo if self.todo else 1.0
        if self.deadline is not None:
            progress = max(progress, (time.perf_counter() - self.t0) / max(self.deadline - self.t0, 1e-9))
        i = left[0]
        if progress >= (len(self.archs) - len(left) + 0.5) / len(self.archs):
            self.during[i] = self._time(self.archs[i])
            self.meta["calibration_during_build"] = {str(k): v for k, v in self.during.items()}
            atomic_write_text(self.meta_path, json.dumps(self.meta, indent=1) + "\n")

    def fit(self, model: LatencyModel, log: Callable[[str], None], show: bool) -> dict:
        n = len(self.archs)
        log(f"calibration: timing {n} random networks end to end ({len(self.during)} timed during the build too)")
        eta, bar = Eta([count(a).macs for a in self.archs]), _progress(n, "calibration", "network", show)
        networks = []
        for i, arch in enumerate(self.archs):
            times = [self._time(arch)] + ([self.during[i]] if i in self.during else [])
            networks.append({"keys": [e.key for e in arch_entries(arch.resolve())], "ms": statistics.mean(times),
                             "timings_ms": [round(t, 5) for t in times]})  # after, then during (if any)
            eta.tick()
            if bar:
                bar.update(1)
            elif len(networks) in (1, n // 2):
                log(eta.line("calibration networks"))
        if bar:
            bar.close()
        self.meta.pop("calibration_during_build", None)
        return fit_calibration(model, networks)


def build_lut(space, backend: str, out: "str | os.PathLike[str]", threads: int = 1,
              max_entries: int | None = None, calibrate: int = 32, seed: int = 0, clock: str = "auto",
              reference: bool = True, progress: bool = False,
              log: Callable[[str], None] = print, minutes: float | None = None) -> LatencyModel:
    """Measure the space's entries in :func:`entry_order` (a stratified sample at every prefix),
    appending each to ``out`` as soon as it is measured, until ``max_entries`` are in the table or
    this run has spent ``minutes`` (entries and calibration together; None or 0: no time limit);
    an existing file is resumed, not re-measured."""
    from ...device_runner import resolve_clock
    from ...io import atomic_write_text, make_dir
    from ...machine import busy_warning

    out = Path(out)
    if out.is_dir():
        raise GhostNASError(f"--out {out} is a folder; give the table's CSV file name")
    make_dir(out.parent, "folder of --out")
    clock = resolve_clock(clock, threads)
    done, old = _resume(out, space, backend, threads, clock, reference)
    entries = select_entries(space, max_entries, seed, measured=set(done))
    todo = [e for e in entries if e.key not in done]
    log(f"{len(entries)} entries ({len(done)} already measured, {len(todo)} to go); "
        f"backend {backend}, {threads} thread(s)" + (f", then {calibrate} networks for the calibration"
                                                     if calibrate else "")
        + (f"; time budget {minutes:g} min" if minutes else ""))
    busy = busy_warning()
    if busy:
        log(busy)
    t0 = time.perf_counter()
    meta = _start_meta(space, backend, threads, clock, reference, old)
    meta_path = Path(str(out) + ".meta.json")
    atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    deadline = t0 + 60 * minutes * (1 - (CALIBRATION_SHARE if calibrate else 0)) if minutes else None
    calibration = Calibration(space, calibrate, seed, meta, meta_path, len(todo), t0, deadline) if calibrate else None
    timed = _measure_entries(out, todo, meta, log, progress, deadline,
                             calibration.between_entries if calibration else None)
    model = LatencyModel(read_rows(out), meta, out)
    meta["entries_measured"] = len(model.rows)
    if minutes:
        meta["last_run"] = {"minutes_budget": minutes, "entries_timed": timed}
    if calibration:
        meta["calibration"] = calibration.fit(model, log, progress)
    meta["build_seconds"] = round(meta.get("build_seconds", 0.0) + time.perf_counter() - t0, 1)  # all runs
    atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    return LatencyModel(model.rows, meta, out)


def check_lut(model: LatencyModel, space, n: int = 50, seed: int = 1234, times: int = 3,
              progress: bool = False, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Predicted vs measured end-to-end latency of ``n`` random Archs of the LUT's space; each
    measured value is the median of ``times`` separate timings, taken in passes over all the
    networks, so the check's own noise and the machine's drift during it do not count as
    prediction error."""
    from scipy.stats import kendalltau

    from ...machine import load_1min

    if n < 2 or times < 1:
        raise GhostNASError(f"lut check: n={n}, times={times}; need at least 2 networks (a rank correlation) "
                            "and 1 timing each")

    backend, threads = model.meta["backend"], int(model.meta["threads"])
    require_same_allocator(model.meta, backend, model.path,
                           "rebuild the table with `ghostnas lut build` before checking it")
    load_at_start = load_1min()
    rng = random.Random(seed)
    archs = [space.to_arch(space.sample(rng)) for _ in range(n)]
    # ``times`` passes over all the networks rather than ``times`` timings in a row: the machine's
    # drift over minutes then moves every network's median alike, and two checks agree
    timings: list[list[float]] = [[] for _ in archs]
    work = [(i, a) for _ in range(times) for i, a in enumerate(archs)]
    eta, bar = Eta([count(a).macs for _, a in work]), _progress(len(work), "lut check", "timing", progress)
    for done, (i, arch) in enumerate(work, start=1):
        timings[i].append(model.measure_arch(arch))
        eta.tick()
        if bar:
            bar.update(1)
            bar.set_postfix_str(f"ETA ~{eta.seconds_left() / 60:.1f} min")
        elif log and (done == 1 or done % max(1, len(work) // 10) == 0):
            log(eta.line("timings"))
    if bar:
        bar.close()
    per_arch = []
    for i, arch in enumerate(archs):
        predicted, measured = model.predict_arch(arch), statistics.median(timings[i])
        per_arch.append({"arch": i, "predicted_ms": round(predicted, 4), "measured_ms": round(measured, 4),
                         "error_pct": round(100 * (predicted - measured) / measured, 2)})
    errs = [abs(p["error_pct"]) / 100 for p in per_arch]
    tau = kendalltau([p["predicted_ms"] for p in per_arch], [p["measured_ms"] for p in per_arch]).statistic
    return {"n": n, "mape": statistics.mean(errs), "within_5pct": sum(e <= 0.05 for e in errs) / n,
            "within_10pct": sum(e <= 0.10 for e in errs) / n, "kendall_tau": float(tau),
            "times": times, "backend": backend, "threads": threads, "clock": model.meta.get("clock", "wall"),
            "referenced": bool(model.meta.get("reference")), "load_1min": load_at_start,
            "lut": str(model.path), "per_arch": per_arch}

