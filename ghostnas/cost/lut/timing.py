"""Timing backends (torch, onnxruntime, litert): one module per entry, timed between runs of
``REFERENCE``.

Timing (``measure``): at one thread on the thread's CPU clock, and each run between runs of
``REFERENCE``, reported as ratio x the reference's nominal time. A shared machine's speed drifts
by tens of percent within seconds; entries timed minutes apart are only comparable this way.
The torch backend keeps freed memory for reuse (``keep_freed_memory``): eager torch otherwise
page-faults its activations in on every call, which made timings unsteady and non-additive.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any, Callable

from ...arch import Arch
from ...errors import GhostNASError
from .keys import Entry


def entry_module(entry: Entry):
    """A torch module computing exactly one LUT entry, and its input shape."""
    import torch
    from torch import nn

    from ...nn.ghostnet import ConvBnAct, GhostBottleneck

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

    return Head().eval(), (1, entry.cin, entry.h, entry.h)  # the pool's input: the final feature map


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

        from ...device_runner import tflite_runner
        from ...export import export_tflite

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
    from ...device_runner import nominal_ms, resolve_clock

    ms = nominal_ms(reference_runner(backend, threads), resolve_clock(clock, threads))
    return {"entry": REFERENCE.key, "ms": ms}


def measure(module, shape, backend: str, threads: int, warmup: int = 10, repeats: int = 30,
            clock: str = "auto", reference_ms: float | None = None, times: int = 1) -> dict[str, float]:
    """Time one module; with ``reference_ms``, referenced against ``REFERENCE`` (drift-free). With
    ``times`` > 1, that many separate timings of one runner, reported by their median (one timing
    varies ~3% on a busy machine; the runner is built once: a litert conversion takes seconds)."""
    from ...device_runner import resolve_clock, time_it  # the one timing loop, shared with devices

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
    from ...nn.ghostnet import create_model

    shape = (1, 3, arch.resolution, arch.resolution)
    return measure(create_model(arch).eval(), shape, backend, threads, warmup, repeats, clock,
                   reference_ms, times)["median_ms"]

