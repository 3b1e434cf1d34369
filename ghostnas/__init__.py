"""ghostnas: hardware-aware architecture search over GhostNet's Ghost bottlenecks.

``import ghostnas`` stays torch-free; torch-backed names load on first use.
"""

from __future__ import annotations

from typing import Any

from .arch import Arch, Block, load_arch, paper_arch, registered_names, save_arch
from .cost.analytic import Cost, count
from .errors import GhostNASError

__version__ = "0.1.0"

_LAZY = {
    "create_model": ("ghostnas.nn.ghostnet", "create_model"),
    "GhostNet": ("ghostnas.nn.ghostnet", "GhostNet"),
    "SearchSpace": ("ghostnas.space", "SearchSpace"),
    "load_space": ("ghostnas.space", "load_space"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'ghostnas' has no attribute {name!r}")


__all__ = ["Arch", "Block", "Cost", "GhostNASError", "count", "load_arch", "paper_arch",
           "registered_names", "save_arch", *_LAZY]
