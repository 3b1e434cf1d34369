"""Loading tensors from files without running code: ``torch.load(..., weights_only=True)``, with a
file that is not plain tensors (a pickle of objects) refused in one line, never loaded."""

from __future__ import annotations

import os

import torch

from ..errors import GhostNASError


def load_tensors(path: "str | os.PathLike[str]", what: str = "state_dict") -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GhostNASError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - every failure is the same answer: not a file we load
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        why = ("it holds Python objects, not only tensors, so it was not loaded" if "weights_only" in str(exc)
               else first[:200])
        raise GhostNASError(f"{path}: not a readable {what} ({why})") from None
