"""Evaluators: what scores a candidate Arch once it is within budget.

An evaluator is one small class with ``name`` (recorded on every trial) and
``evaluate(arch, report, weights_path) -> dict``, whose dict holds at least ``val_acc`` (the
objective, a fraction) and whatever else the trial should record. ``report(epoch, acc)``, when
given, is called with intermediate scores and may raise to stop early (pruning); with
``weights_path`` the evaluator saves the scored network's state dict there (``export best
--with-weights``). A new evaluator (a weight-sharing supernet, a longer protocol) is a class here
and a line in ``context.load_evaluator``; the trial pipeline and every engine use it unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..arch import Arch

Report = Callable[[int, float], None]


class Evaluator:
    name = ""

    def evaluate(self, arch: Arch, report: Report | None = None,
                 weights_path: Path | None = None) -> dict[str, Any]:
        raise NotImplementedError


class ProxyEvaluator(Evaluator):
    """Train the candidate from scratch under a short, named protocol (``train.PROTOCOLS``)."""

    name = "proxy"

    def __init__(self, data, protocol, device: str | None = None) -> None:
        self.data, self.protocol, self.device = data, protocol, device

    def evaluate(self, arch: Arch, report: Report | None = None,
                 weights_path: Path | None = None) -> dict[str, Any]:
        import torch

        from ..io import atomic_write
        from ..train import train

        result = train(arch, self.data, self.protocol, on_epoch=report, device=self.device,
                       keep_model=weights_path is not None)
        if weights_path is not None:
            state = result.model.state_dict()
            atomic_write(weights_path, lambda tmp: torch.save(state, tmp))
        return {"val_acc": result.val_acc, "seconds": round(result.seconds, 2),
                "history": [h["val_acc"] for h in result.history], "device": result.device}
