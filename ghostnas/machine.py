"""What machine produced a number: CPU model, cores, governor, threads, library versions."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe(threads: int | None = None, **extra: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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
