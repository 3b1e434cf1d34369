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


CALIBRATION_IMAGES = 2000  # BatchNorm recalibration per candidate, as Once-for-All (10 batches of 200)
SCORING_BATCH = 250  # 15-25% faster than 500 on the 2-core AMD EPYC at 2 threads (cache-sized)
FINETUNE_LR = 0.02  # the supernet trains at 0.1 decayed to 0; a short fine-tune starts lower


class SupernetEvaluator(Evaluator):
    """Score a candidate by the weights it inherits from a trained supernet: extracted as a plain
    network, its BatchNorm statistics recomputed on a fixed set of training images, then scored on
    the validation split. No training, no seed noise between candidates.

    ``finetune_steps`` > 0 (an experiment for the benchmarks, not a search option): first train the
    inherited network that many SGD steps on the same training images for every candidate (fixed
    seed, the supernet's batch size, lr ``finetune_lr`` decayed to 0), to undo some of what sharing
    weights with every other network costs it. On mnist5k-clutter it did not rank better (tau 0.21
    -> 0.23-0.27, inside the noise) at 3-10x the cost per candidate (docs/supernet.md)."""

    name = "supernet"

    def __init__(self, folder, data, resolution: int, device: str | None = None,
                 finetune_steps: int = 0, finetune_lr: float = FINETUNE_LR) -> None:
        import torch

        from ..data import prepare
        from ..errors import GhostNASError
        from ..supernet import load_supernet
        from ..train import pick_device

        self.net, self.record = load_supernet(folder)
        if self.record["num_classes"] != data.num_classes:
            raise GhostNASError(f"supernet {folder} was trained for {self.record['num_classes']} classes, the data has "
                                f"{data.num_classes}; train a supernet on this data")
        self.device = pick_device(device)
        mean, std = data.stats()
        g = torch.Generator().manual_seed(0)  # the same calibration images for every candidate
        calib = torch.randperm(len(data.y_train), generator=g)[:CALIBRATION_IMAGES]
        # channels_last: it scored candidates 1.9x faster than NCHW on the CPU (docs/supernet.md),
        # on a GPU too (inference only here); the trainers choose per device (Protocol.channels_last)
        self.memory_format = torch.channels_last
        self.x_calib = prepare(data.x_train[calib], resolution, mean, std).to(self.device, memory_format=self.memory_format)
        self.x_val = prepare(data.x_val, resolution, mean, std).to(self.device, memory_format=self.memory_format)
        self.y_val = data.y_val.to(self.device)
        self.data, self.finetune_steps, self.finetune = data, finetune_steps, None
        if finetune_steps:
            from ..train import PROTOCOLS

            batch = self.record["protocol"]["batch_size"]
            # one epoch over steps x batch images (the same seeded, stratified subset for every
            # candidate); the trainer's own scoring is skipped (val_subset 1): recalibrated and
            # scored on the whole validation split below, as without fine-tuning
            self.finetune = PROTOCOLS["proxy"].replace(name="supernet-finetune", epochs=1, batch_size=batch,
                                                       resolution=resolution, train_subset=finetune_steps * batch,
                                                       val_subset=1, lr=finetune_lr, warmup_epochs=0.0)

    def evaluate(self, arch: Arch, report: Report | None = None,
                 weights_path: Path | None = None) -> dict[str, Any]:
        import time

        import torch

        from ..io import atomic_write
        from ..nn.reparam import fold_batchnorm
        from ..supernet import recalibrate
        from ..train import evaluate

        start = time.perf_counter()
        if self.finetune is None:
            model = self.net.extract(arch)
        else:  # the trainer builds the network on the inherited weights (copied in) and tunes it
            from ..train import train

            model = train(arch, self.data, self.finetune, device=str(self.device), keep_model=True,
                          init=self.net.subnet_state(arch)).model
        model = recalibrate(model.to(self.device, memory_format=self.memory_format), self.x_calib)
        if weights_path is not None:  # before folding: the plain create_model(arch) layout
            state = model.state_dict()
            atomic_write(weights_path, lambda tmp: torch.save(state, tmp))
        acc, loss = evaluate(fold_batchnorm(model).to(memory_format=self.memory_format), self.x_val, self.y_val,
                          batch_size=SCORING_BATCH)
        return {"val_acc": acc, "val_loss": round(loss, 5), "seconds": round(time.perf_counter() - start, 2),
                "device": str(self.device), "supernet": self.record["digest"],
                **({"finetune_steps": self.finetune_steps} if self.finetune_steps else {})}
