"""What machine produced a number: CPU model, cores, governor, threads, library versions."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any


def cpu_model() -> str:
    """This machine's CPU, named as the device runner names it (one parser: device_runner.describe_cpu)."""
    from .device_runner import this_cpu

    return this_cpu()["cpu"]


def load_1min() -> float | None:
    """The OS's 1-minute load average (runnable processes), None where it has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def busy_warning(threshold: float = 0.75) -> str | None:
    """A one-line warning when other work is running, for commands that time models.

    Why: a latency table's entries are timed against a small, cache-resident reference block, which
    cancels a machine's speed drift but not contention for memory bandwidth and cache. Entries of
    the default space re-timed on an idle machine ran a median 2% (some 20%) faster than the same
    entries timed next to a training job, which is enough to bias a whole table.
    """
    load = load_1min()
    if load is None or load < threshold:
        return None
    return (f"warning: the machine is busy (1-minute load {load:.1f} on {os.cpu_count()} cores); "
            "timings taken next to other work run slow relative to an idle machine: build and check "
            "latency tables with nothing else running")


def describe(threads: int | None = None, **extra: Any) -> dict[str, Any]:
    from .device_runner import host_info

    info: dict[str, Any] = {
        **host_info(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_1min": load_1min(),
    }
    if threads is not None:
        info["threads"] = threads
    try:
        import torch  # noqa: F401  (only report it when it is already usable)

        info["torch"] = torch.__version__
    except ImportError:
        pass
    info.update(extra)
    return info
