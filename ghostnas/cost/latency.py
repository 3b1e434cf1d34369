"""Latency lookup tables (LUTs) built on the target device, and predictions from them.

A LUT is a CSV of measured entries plus a JSON sidecar (``FILE.meta.json``) with the device,
backend and its version, threads, date, space and the end-to-end calibration. No pickles: the
predictor (gradient-boosted trees for entries the table lacks) is refitted from the CSV on load.

Entries are keyed like Once-for-All's, from the resolved dimensions the model is built from:
``block|in:28x28x40|mid:120|out:40|k:3|stride:1|se:32|s:2|d:3``, plus ``stem``, ``final`` and
``head`` entries. Network latency = a * (sum of entries) + b, where a and b are fitted on
end-to-end measurements of random networks timed at build time (separately timed pieces differ
from a whole network in per-call overhead and cache state).

Timing (``measure``): at one thread on the thread's CPU clock, and each run between runs of
``REFERENCE``, reported as ratio x the reference's nominal time. A shared machine's speed drifts
by tens of percent within seconds; entries timed minutes apart are only comparable this way.
The torch backend keeps freed memory for reuse (``keep_freed_memory``): eager torch otherwise
page-faults its activations in on every call, which made timings unsteady and non-additive.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..arch import (UNUSED_K, Arch, ResolvedArch, ResolvedBlock, conv_out, kernel_acts, load_arch,
                    make_divisible, se_channels)
from ..errors import GhostNASError
from .analytic import block_cost

FEATURES = ["h", "cin", "mid", "cout", "k", "stride", "se", "s", "d", "macs", "params"]
COLUMNS = ["key", "kind", *FEATURES, "median_ms", "p10_ms", "p90_ms", "runs"]
LUT_FORMAT = "ghostnas.lut/1"
# Gradient-boosted trees on log(ms) for entries a table did not measure. Against the complete
# default-space table (benchmarks/lut_predictor.py), trained on 4,000 sampled entries: 800 trees of
# depth 4 put 100% of networks' sums within 10% (MAPE 2.3%) vs 98% (2.9%) for 300 of depth 3,
# at about 3x the fit time (~15-30 s, once per process, only for a table that is not complete).
PREDICTOR = {"n_estimators": 800, "max_depth": 4, "learning_rate": 0.05}


# ---- keys ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    kind: str  # block | stem | final | head
    h: int
    cin: int
    mid: int
    cout: int
    k: int = 1
    stride: int = 1
    se: int = 0
    s: int = 0
    d: int = 0
    classes: int = 0

    @property
    def key(self) -> str:
        if self.kind == "block":
            return (f"block|in:{self.h}x{self.h}x{self.cin}|mid:{self.mid}|out:{self.cout}|k:{self.k}"
                    f"|stride:{self.stride}|se:{self.se}|s:{self.s}|d:{self.d}")
        if self.kind == "stem":
            return f"stem|in:{self.h}x{self.h}x3|out:{self.cout}"
        if self.kind == "final":
            return f"final|in:{self.h}x{self.h}x{self.cin}|out:{self.cout}"
        return f"head|in:{self.cin}|hidden:{self.mid}|classes:{self.classes}"

    @classmethod
    def from_key(cls, key: str) -> "Entry":
        kind, *parts = key.split("|")
        fields = dict(p.split(":", 1) for p in parts)
        if kind == "block":
            h, _, cin = fields["in"].split("x")
            return cls("block", int(h), int(cin), int(fields["mid"]), int(fields["out"]), int(fields["k"]),
                       int(fields["stride"]), int(fields["se"]), int(fields["s"]), int(fields["d"]))
        if kind in ("stem", "final"):
            h, _, cin = fields["in"].split("x")
            return cls(kind, int(h), int(cin), 0, int(fields["out"]))
        if kind == "head":
            return cls("head", 1, int(fields["in"]), int(fields["hidden"]), 0, classes=int(fields["classes"]))
        raise GhostNASError(f"unknown LUT key {key!r}")

    def block(self) -> ResolvedBlock:
        return ResolvedBlock(0, 0, self.cin, self.mid, self.cout, self.k, self.stride, self.se,
                             self.s, self.d, self.h, self.h)

    def features(self) -> dict[str, float]:
        if self.kind == "block":
            params, macs = block_cost(self.block())
        elif self.kind == "stem":
            params, macs = 29 * self.cout, conv_out(self.h, 3, 2) ** 2 * 27 * self.cout
        elif self.kind == "final":
            params, macs = self.cin * self.cout + 2 * self.cout, self.h * self.h * self.cin * self.cout
        else:
            params = self.cin * self.mid + self.mid + self.mid * self.classes + self.classes
            macs = self.cin * self.mid + self.mid * self.classes
        return {"h": self.h, "cin": self.cin, "mid": self.mid, "cout": self.cout, "k": self.k,
                "stride": self.stride, "se": self.se, "s": self.s, "d": self.d, "macs": macs,
                "params": params}


def predictor_features(e: Entry) -> list[float]:
    """The table's features plus the work of each part of a block (two Ghost modules' primary and
    cheap convs, the strided depthwise, SE, shortcut) and its activation sizes, raw and log:
    the trees then split on what the runtime actually spends time on (5-fold CV error 9.7% -> 8.6%
    per entry on the default space)."""
    f = e.features()
    base = [float(f[name]) for name in FEATURES]
    if e.kind != "block":
        parts = [0.0] * 10
    else:
        ho = conv_out(e.h, e.k, e.stride)
        init1, init2 = -(-e.mid // e.s), -(-e.cout // e.s)
        projection = e.stride > 1 or e.cin != e.cout
        parts = [e.h * e.h * e.cin * init1, e.h * e.h * init1 * (e.s - 1) * e.d * e.d,
                 ho * ho * e.mid * e.k * e.k if e.stride > 1 else 0, 2 * e.mid * e.se,
                 ho * ho * e.mid * init2, ho * ho * init2 * (e.s - 1) * e.d * e.d,
                 ho * ho * (e.cin * e.cout + e.cin * e.k * e.k) if projection else 0,
                 e.h * e.h * e.cin, e.h * e.h * e.mid, ho * ho * e.cout]
    return base + [float(v) for v in parts] + [math.log1p(v) for v in parts]


def arch_entries(r: ResolvedArch) -> list[Entry]:
    entries = [Entry("stem", r.resolution, 3, 0, r.stem)]
    # a kernel that does not act is keyed as the space enumerates it, so the paper's k=5 on an
    # identity block finds the same (equal) network's entry
    entries += [Entry("block", b.h, b.cin, b.mid, b.cout,
                      b.k if kernel_acts(b.cin, b.cout, b.stride) else UNUSED_K, b.stride, b.se_channels, b.s, b.d)
                for b in r.blocks]
    cin = r.blocks[-1].cout if r.blocks else r.stem
    entries.append(Entry("final", r.final_hw[0], cin, 0, r.final_conv))
    entries.append(Entry("head", 1, r.final_conv, r.head, 0, classes=r.num_classes))
    return entries


def space_entries(space) -> list[Entry]:
    """Every distinct entry the space can produce (order: by width, then network position)."""
    seen: dict[str, Entry] = {}
    for width in space.width:
        w = float(width)
        res = space.resolution
        stem = make_divisible(space.stem * w)
        for e in [Entry("stem", res, 3, 0, stem)]:
            seen.setdefault(e.key, e)
        h = conv_out(res, 3, 2)
        prev_outs = {space.stem}
        for st in space.stages:
            for j in range(max(st.depth)):
                stride = st.stride if j == 0 else 1
                cins = prev_outs if j == 0 else {st.out[j - 1]}
                cout = make_divisible(st.out[j] * w)
                for cin_base in sorted(cins):
                    cin = make_divisible(cin_base * w)
                    k_used = kernel_acts(cin, cout, stride)
                    for ratio in st.exp_ratio:
                        mid = make_divisible(make_divisible(cin_base * ratio) * w)
                        for k in (st.k if k_used else (UNUSED_K,)):
                            for se in st.se:
                                for s in st.s:
                                    for d in st.d:
                                        e = Entry("block", h, cin, mid, cout, k, stride,
                                                  se_channels(mid) if se else 0, s, d)
                                        seen.setdefault(e.key, e)
                h = conv_out(h, 3, stride)
            prev_outs = {st.out[n - 1] for n in st.depth}
        final = make_divisible(space.final_conv * w)
        for cin_base in sorted(prev_outs):
            e = Entry("final", h, make_divisible(cin_base * w), 0, final)
            seen.setdefault(e.key, e)
        e = Entry("head", 1, final, space.head, 0, classes=space.num_classes)
        seen.setdefault(e.key, e)
    return list(seen.values())


# ---- the table and predictions ----------------------------------------------------------------

class LatencyModel:
    """A LUT plus its predictor and calibration; ``predict_arch(arch) -> ms``."""

    def __init__(self, rows: dict[str, dict[str, float]], meta: dict[str, Any], path: Path | None = None,
                 predictor: dict[str, Any] | None = None):
        self.rows = rows
        self.predictor = predictor or PREDICTOR  # tree settings, for entries the table lacks
        self.meta = meta
        self.path = path
        self._model = None
        self._predicted: dict[str, float] = {}  # the search asks for the same entries again and again
        self.overhead = float(meta.get("overhead_ms", 0.0))
        self._ab: tuple[float, float] | None = None

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> "LatencyModel":
        path = Path(path)
        meta_path = Path(str(path) + ".meta.json")
        if not path.exists() or not meta_path.exists():
            raise GhostNASError(f"latency table {path} (and {meta_path.name}) not found; build one "
                                "with `ghostnas lut build --space tiny --out FILE`")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise GhostNASError(f"{meta_path}: corrupt metadata ({exc}); rebuild the LUT") from None
        if meta.get("format") != LUT_FORMAT:
            raise GhostNASError(f"{meta_path}: not a ghostnas LUT (format {meta.get('format')!r})")
        return cls(read_rows(path), meta, path)

    def _fit(self):
        if self._model is None:
            if len(self.rows) < 8:
                raise GhostNASError(f"{self.path}: too few entries ({len(self.rows)}) to predict "
                                    "missing ones; measure more with `ghostnas lut build`")
            from sklearn.ensemble import GradientBoostingRegressor

            x = [predictor_features(Entry.from_key(key)) for key in self.rows]
            y = [math.log(max(r["median_ms"], 1e-6)) for r in self.rows.values()]
            self._model = GradientBoostingRegressor(**self.predictor, random_state=0).fit(x, y)
        return self._model

    def predict_missing(self, entries: list[Entry]) -> None:
        """Predict the entries the table lacks in one batch (one tree walk per batch, not per entry)."""
        todo = list({e.key: e for e in entries
                     if e.key not in self.rows and e.key not in self._predicted}.values())
        if todo:
            for e, y in zip(todo, self._fit().predict([predictor_features(e) for e in todo])):
                self._predicted[e.key] = math.exp(y)

    def entry_ms(self, entry: Entry) -> tuple[float, bool]:
        """(ms, measured?) for one entry: the table's median, or the predictor's estimate."""
        row = self.rows.get(entry.key)
        if row is not None:
            raw, measured = row["median_ms"], True
        else:
            self.predict_missing([entry])
            raw, measured = self._predicted[entry.key], False
        # each entry was timed as its own model: take off the runtime's fixed per-call cost
        return max(raw - self.overhead, 0.01 * raw), measured

    def predict_sum(self, arch: "Arch | str") -> float:
        entries = arch_entries(load_arch(arch).resolve())
        self.predict_missing(entries)
        return sum(self.entry_ms(e)[0] for e in entries)

    def predict_arch(self, arch: "Arch | str") -> float:
        a, b = self.calibration()
        return a * self.predict_sum(arch) + b

    def measure_arch(self, arch: "Arch | str", times: int = 1) -> float:
        """Time ``arch`` end to end here as the table's entries were timed (backend, threads,
        clock, reference), so measured and predicted are like with like; with ``times`` > 1, the
        median of that many separate timings (one timing varies ~3% on a busy machine)."""
        ref_ms = (self.meta.get("reference") or {}).get("ms")
        return measure_arch(load_arch(arch), self.meta["backend"], int(self.meta["threads"]),
                            clock=self.meta.get("clock", "wall"), reference_ms=ref_ms, times=times)

    def why_not_timeable_here(self) -> str | None:
        """Why ``measure_arch`` here would not be like with like with the table, or None when it
        is: the table must have been built on this kind of machine (CPU model, cores,
        architecture; a table imported from a phone is not), with its backend installed here and
        timed with this process's allocator."""
        from ..machine import cpu_model

        device = self.meta.get("device") or {}
        if self.meta.get("imported_from"):
            return f"{self.path} was measured on another device ({device.get('cpu')})"
        here = {"cpu": cpu_model(), "cores": os.cpu_count(), "machine": platform.machine()}
        for key, value in here.items():
            if device.get(key) != value:
                return f"{self.path} was built on another machine ({key} {device.get(key)!r}, here {value!r})"
        backend = self.meta["backend"]
        if not backend_installed(backend):
            return f"its backend {backend!r} is not installed here"
        return allocator_mismatch(self.meta, backend, self.path)

    def space(self):
        """The space the table was built for: its YAML where it was, else the shipped space of
        that name (a LUT built in another checkout or on another machine)."""
        from ..space import load_space

        source = self.meta.get("space")
        return load_space(source if source and Path(source).exists() else self.meta.get("space_name", source))

    def calibration(self) -> tuple[float, float]:
        """(a, b) of whole = a * sum + b: refitted from the calibration networks' entry keys and
        measured times when the metadata has them (so it always matches this predictor), else
        the stored pair."""
        if self._ab is None:
            cal = self.meta.get("calibration") or {}
            if cal.get("networks"):
                fit = fit_calibration(self, cal["networks"])
                self._ab = fit["a"], fit["b"]
            else:
                self._ab = float(cal.get("a", 1.0)), float(cal.get("b", 0.0))
        return self._ab


def read_rows(path: Path) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or [c for c in COLUMNS if c not in reader.fieldnames]:
                raise GhostNASError(f"{path}: not a ghostnas LUT (columns {reader.fieldnames}); "
                                    f"expected {COLUMNS}")
            for n, raw in enumerate(reader, start=2):
                try:
                    row = {c: float(raw[c]) for c in FEATURES + ["median_ms", "p10_ms", "p90_ms", "runs"]}
                except (TypeError, ValueError):
                    if fh.read(1) == "":  # a torn last line from an interrupted build: skip it
                        break
                    raise GhostNASError(f"{path}: corrupt row at line {n}; rebuild or delete that line") from None
                row["kind"] = raw["kind"]
                rows[raw["key"]] = row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GhostNASError(f"{path}: unreadable LUT ({exc})") from None
    return rows


# ---- measurement backends ---------------------------------------------------------------------

def entry_module(entry: Entry):
    """A torch module computing exactly one LUT entry, and its input shape."""
    import torch
    from torch import nn

    from ..nn.ghostnet import ConvBnAct, GhostBottleneck

    if entry.kind == "block":
        return GhostBottleneck(entry.block()).eval(), (1, entry.cin, entry.h, entry.h)
    if entry.kind == "stem":
        return nn.Sequential(nn.Conv2d(3, entry.cout, 3, 2, 1, bias=False), nn.BatchNorm2d(entry.cout),
                             nn.ReLU()).eval(), (1, 3, entry.h, entry.h)
    if entry.kind == "final":
        return ConvBnAct(entry.cin, entry.cout).eval(), (1, entry.cin, entry.h, entry.h)

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.conv_head = nn.Conv2d(entry.cin, entry.mid, 1, bias=True)
            self.classifier = nn.Linear(entry.mid, entry.classes)

        def forward(self, x):
            return self.classifier(torch.relu(self.conv_head(self.pool(x))).flatten(1))

    return Head().eval(), (1, entry.cin, 7, 7)


_allocator: str | None = None


def keep_freed_memory() -> str:
    """Tell glibc's malloc to keep freed memory for reuse; returns what the torch backend's
    timings ran with, for a table's metadata.

    Why: eager torch allocates every activation anew, and glibc gives blocks over its mmap
    threshold back to the OS when they are freed, so the next call faults them in again. On the
    2-core VM a 112 px block took 1,700-7,000 page faults per call, 18 ms (12-32 ms) against 7 ms
    with the memory kept; networks timed 47-65 ms from one timing to the next, and entries timed
    alone did not add up to whole networks. ONNX Runtime and LiteRT reuse their own arenas and
    never pay this; PyTorch's CPU tuning guide recommends a caching allocator for the same reason.
    Process-wide and permanent (the process keeps its peak memory), so only the timing paths call it.
    """
    global _allocator
    if _allocator is None:
        import ctypes
        import platform

        _allocator = "system default"
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            libc = ctypes.CDLL("libc.so.6")
            m_trim_threshold, m_mmap_max = -1, -4  # mallopt parameters from <malloc.h>
            if libc.mallopt(m_trim_threshold, 2**30) == 1 and libc.mallopt(m_mmap_max, 0) == 1:
                _allocator = "glibc, freed memory kept (mallopt: no mmap, no trim)"
    return _allocator


def allocator_for(backend: str) -> str | None:
    """How the backend's memory is managed while timing, recorded in a table's metadata."""
    return keep_freed_memory() if backend == "torch" else None


def allocator_mismatch(meta: dict[str, Any], backend: str, path) -> str | None:
    """Why a table's entries and this process's timings manage memory differently (see
    keep_freed_memory), or None when they agree."""
    if meta.get("allocator") == allocator_for(backend):
        return None
    return (f"{path} was timed with allocator {meta.get('allocator') or 'default'!r}, "
            f"this process times with {allocator_for(backend)!r}")


def require_same_allocator(meta: dict[str, Any], backend: str, path, fix: str) -> None:
    """A table's entries and this process's timings must manage memory alike."""
    why = allocator_mismatch(meta, backend, path)
    if why:
        raise GhostNASError(f"{why}: {fix}")


BACKEND_MODULES = {"torch": ("torch",), "onnxruntime": ("onnxruntime", "onnx"),
                   "litert": ("litert_torch", "ai_edge_litert")}  # litert: the [tflite] extra


def backend_installed(backend: str) -> bool:
    from importlib.util import find_spec

    return all(find_spec(m) is not None for m in BACKEND_MODULES.get(backend, (backend,)))


def make_runner(module, shape: tuple[int, ...], backend: str, threads: int) -> Callable[[], Any]:
    import torch

    x = torch.randn(*shape)
    if backend == "torch":
        keep_freed_memory()
        torch.set_num_threads(threads)

        def run():
            with torch.inference_mode():
                module(x)
        return run
    if backend == "onnxruntime":
        import io

        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime as ort

        buf = io.BytesIO()
        torch.onnx.export(module, (x,), buf, dynamo=False, input_names=["input"], opset_version=17)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
        feed = {"input": x.numpy()}
        return lambda: session.run(None, feed)
    if backend == "litert":  # converted with litert-torch, run by ai-edge-litert (XNNPACK)
        import tempfile

        from ..device_runner import tflite_runner
        from ..export import export_tflite

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "entry.tflite"
            export_tflite(module, x, path)
            return tflite_runner(path, list(shape), threads)  # the interpreter keeps the model loaded
    raise GhostNASError(f"unknown latency backend {backend!r}; use torch, onnxruntime or litert "
                        "(phones: `lut export-blocks --format tflite` + `lut adb`)")


def backend_version(backend: str) -> str:
    if backend == "onnxruntime":
        import onnxruntime

        return onnxruntime.__version__
    if backend == "litert":
        from importlib.metadata import version

        return f"ai-edge-litert {version('ai-edge-litert')}, litert-torch {version('litert-torch')}"
    import torch

    return torch.__version__


# The yardstick every measurement is timed against (see device_runner.time_it): a mid-network
# Ghost bottleneck, so its mix of 1x1, depthwise and SE work drifts like the entries do.
REFERENCE = Entry("block", 28, 40, 120, 40, 5, 1, 32, 2, 3)
_reference_runners: dict[tuple[str, int], Callable[[], Any]] = {}


def reference_runner(backend: str, threads: int) -> Callable[[], Any]:
    if (backend, threads) not in _reference_runners:
        import torch

        with torch.random.fork_rng():
            torch.manual_seed(0)
            module, shape = entry_module(REFERENCE)
            _reference_runners[backend, threads] = make_runner(module, shape, backend, threads)
    return _reference_runners[backend, threads]


def measure_reference(backend: str, threads: int, clock: str = "auto") -> dict[str, Any]:
    """The reference's nominal latency on this machine, recorded in a LUT's metadata."""
    from ..device_runner import nominal_ms, resolve_clock

    ms = nominal_ms(reference_runner(backend, threads), resolve_clock(clock, threads))
    return {"entry": REFERENCE.key, "ms": ms}


def measure(module, shape, backend: str, threads: int, warmup: int = 10, repeats: int = 30,
            clock: str = "auto", reference_ms: float | None = None, times: int = 1) -> dict[str, float]:
    """Time one module; with ``reference_ms``, referenced against ``REFERENCE`` (drift-free). With
    ``times`` > 1, that many separate timings of one runner, reported by their median (one timing
    varies ~3% on a busy machine; the runner is built once: a litert conversion takes seconds)."""
    from ..device_runner import resolve_clock, time_it  # the one timing loop, shared with devices

    run = make_runner(module, shape, backend, threads)
    ref = reference_runner(backend, threads) if reference_ms else None
    timings = sorted((time_it(run, warmup, repeats, resolve_clock(clock, threads), reference=ref,
                              reference_ms=reference_ms) for _ in range(times)),
                     key=lambda t: t["median_ms"])
    return {**timings[len(timings) // 2],
            "median_ms": statistics.median(t["median_ms"] for t in timings)}


def measure_arch(arch: Arch, backend: str, threads: int, warmup: int = 5, repeats: int = 40,
                 clock: str = "auto", reference_ms: float | None = None, times: int = 1) -> float:
    """End-to-end ms of ``arch`` (the median of ``times`` timings)."""
    from ..nn.ghostnet import create_model

    shape = (1, 3, arch.resolution, arch.resolution)
    return measure(create_model(arch).eval(), shape, backend, threads, warmup, repeats, clock,
                   reference_ms, times)["median_ms"]


# ---- building ---------------------------------------------------------------------------------

def build_lut(space, backend: str, out: "str | os.PathLike[str]", threads: int = 1,
              max_entries: int | None = None, calibrate: int = 16, seed: int = 0, clock: str = "auto",
              reference: bool = True, progress: bool = False,
              log: Callable[[str], None] = print) -> LatencyModel:
    """Measure the space's entries (all, or a stratified sample of ``max_entries``), appending
    each to ``out`` as soon as it is measured; an existing file is resumed, not re-measured."""
    from ..device_runner import resolve_clock
    from ..machine import busy_warning, describe

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
    meta = {"format": LUT_FORMAT, "space": space.source, "space_name": space.name,
            "resolution": space.resolution, "backend": backend, "backend_version": backend_version(backend),
            "threads": threads, "clock": clock, "allocator": allocator_for(backend),
            "device": describe(threads=threads),
            "entries_in_space": len(space_entries(space))}
    from ..io import atomic_write_text

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

    from ..machine import load_1min

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


# ---- measuring on another device ----------------------------------------------------------------

def select_entries(space, max_entries: int | None, seed: int,
                   measured: "set[str] | frozenset[str]" = frozenset()) -> list[Entry]:
    """All of the space's entries, or a stratified sample: every stem/final/head entry, blocks
    sampled evenly per network position (input size, stride, identity or projection shortcut).

    Each position's blocks are shuffled by their own seeded generator and the first ones taken,
    so a larger ``max_entries`` holds every entry of a smaller one; entries already ``measured``
    (a table being resumed or grown) go first in their position. So raising ``--max-entries`` on an
    existing table measures only the entries it adds."""
    entries = space_entries(space)
    if not max_entries or len(entries) <= max_entries:
        return entries
    fixed = [e for e in entries if e.kind != "block"]
    by_pos: dict[tuple, list[Entry]] = {}
    for e in entries:
        if e.kind == "block":
            by_pos.setdefault((e.h, e.stride, e.cin == e.cout), []).append(e)
    per = max(1, (max_entries - len(fixed)) // len(by_pos))
    chosen = []
    for pos, group in by_pos.items():
        order = list(group)
        random.Random(f"{seed}|{pos}").shuffle(order)
        order.sort(key=lambda e: e.key not in measured)  # stable: the measured first, shuffled order kept
        chosen += order[:per]
    return fixed + chosen


def export_blocks(space, fmt: str, out: "str | os.PathLike[str]", max_entries: int | None = None,
                  networks: int = 16, seed: int = 0, log: Callable[[str], None] = print) -> Path:
    """One small model per entry (and ``networks`` random whole networks for calibration) plus a
    manifest and the torch-free runner, for timing on a device."""
    import shutil

    import torch

    from ..export import export_onnx, export_tflite
    from ..io import atomic_write_text
    from ..nn.ghostnet import create_model

    if fmt not in ("onnx", "tflite"):
        raise GhostNASError(f"unknown format {fmt!r}; use onnx or tflite")
    out = Path(out)
    (out / "models").mkdir(parents=True, exist_ok=True)
    writer = export_onnx if fmt == "onnx" else export_tflite
    entries = select_entries(space, max_entries, seed)
    log(f"exporting {len(entries)} entries and {networks} networks as {fmt} to {out}")
    manifest: dict[str, Any] = {"format": fmt, "space": space.source, "space_name": space.name,
                                "resolution": space.resolution, "entries": [], "networks": []}
    for n, e in enumerate(entries):
        module, shape = entry_module(e)
        path = out / "models" / f"e{n:05d}.{fmt}"
        if not path.exists():
            writer(module, torch.zeros(*shape), path)
        manifest["entries"].append({"key": e.key, "file": str(path.relative_to(out)), "input_shape": list(shape)})
    module, shape = entry_module(REFERENCE)
    path = out / "models" / f"reference.{fmt}"
    if not path.exists():
        writer(module, torch.zeros(*shape), path)
    manifest["reference"] = {"key": REFERENCE.key, "file": str(path.relative_to(out)), "input_shape": list(shape)}
    rng = random.Random(seed + 1)
    for n in range(networks):
        arch = space.to_arch(space.sample(rng))
        path = out / "models" / f"net{n:03d}.{fmt}"
        shape = (1, 3, arch.resolution, arch.resolution)
        if not path.exists():
            writer(create_model(arch).eval(), torch.zeros(*shape), path)
        manifest["networks"].append({"key": "net|" + ",".join(x.key for x in arch_entries(arch.resolve())),
                                     "file": str(path.relative_to(out)), "input_shape": list(shape)})
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    shutil.copy(Path(__file__).resolve().parent.parent / "device_runner.py", out / "ghostnas_runner.py")
    return out


def fit_calibration(model: LatencyModel, networks: list[dict[str, Any]]) -> dict[str, Any]:
    """whole = a * sum + b over networks ``{"keys": [entry keys], "ms": measured whole}``, by
    least squares on relative error (the target is a percentage error, not milliseconds)."""
    xs = [sum(model.entry_ms(Entry.from_key(k))[0] for k in n["keys"]) for n in networks]
    ys = [float(n["ms"]) for n in networks]
    w = [1.0 / y ** 2 for y in ys]
    sw, sx, sy = sum(w), sum(wi * x for wi, x in zip(w, xs)), sum(wi * y for wi, y in zip(w, ys))
    sxx, sxy = sum(wi * x * x for wi, x in zip(w, xs)), sum(wi * x * y for wi, x, y in zip(w, xs, ys))
    det = sw * sxx - sx * sx
    a = (sw * sxy - sx * sy) / det if det > 0 else sy / sx
    b = (sy - a * sx) / sw if det > 0 else 0.0
    return {"a": a, "b": b, "networks": networks}


def import_measurements(folder: "str | os.PathLike[str]", out: "str | os.PathLike[str]") -> LatencyModel:
    """Turn a device's ``measured.csv`` (from the runner) into a LUT with metadata and calibration."""
    from ..io import atomic_write, atomic_write_text

    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        device = json.loads((folder / "device.json").read_text())
        with open(folder / "measured.csv", newline="") as fh:
            measured = [r for r in csv.DictReader(fh) if r.get("runs")]
    except (OSError, json.JSONDecodeError, csv.Error) as exc:
        raise GhostNASError(f"{folder}: needs manifest.json, device.json and measured.csv from the "
                            f"runner ({exc})") from None
    rows, nets = {}, []
    for r in measured:
        if r["key"].startswith("net|"):
            nets.append(r)
            continue
        e = Entry.from_key(r["key"])
        rows[e.key] = {"key": e.key, "kind": e.kind, **e.features(),
                       **{k: float(r[k]) for k in ("median_ms", "p10_ms", "p90_ms", "runs")}}
    out = Path(out)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows.values())

    atomic_write(out, write)
    meta = {"format": LUT_FORMAT, "space": manifest["space"], "space_name": manifest["space_name"],
            "resolution": manifest["resolution"], "backend": device["runtime"],
            "backend_version": device["runtime_version"], "threads": device["threads"],
            "clock": device.get("clock", "wall"), "device": device,
            "reference": {"entry": manifest["reference"]["key"], "ms": device["reference_ms"]}
            if device.get("reference_ms") else None,
            "overhead_ms": 0.0, "entries_in_space": None, "imported_from": str(folder)}
    model = LatencyModel(read_rows(out), meta, out)
    if len(nets) >= 2:
        meta["calibration"] = fit_calibration(model, [{"keys": n["key"][4:].split(","), "ms": float(n["median_ms"])}
                                                      for n in nets])
    atomic_write_text(Path(str(out) + ".meta.json"), json.dumps(meta, indent=1) + "\n")
    return LatencyModel(model.rows, meta, out)
