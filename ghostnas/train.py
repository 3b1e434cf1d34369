"""Proxy training: train an Arch's model briefly under a named, recorded protocol.

Every score says how it was obtained: :class:`Protocol` is frozen data (epochs, subset, input
resolution, batch size, optimiser, schedule, seed) stored beside each result. Proxy resolution may
differ from deployment resolution; costs are always counted at the Arch's deployment resolution.

Determinism: the model is initialised from ``seed``; each epoch's shuffling, augmentation and
dropout come from generators seeded by (seed, epoch). The same seed gives the same result on a CPU
with the same thread count, and a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .arch import Arch, load_arch
from .data import Dataset, augment, prepare
from .errors import GhostNASError
from .io import atomic_write
from .nn.ghostnet import create_model


class TrainingFailed(RuntimeError):
    """A trial that cannot produce a score (NaN loss, out of memory): recorded as failed."""


@dataclass(frozen=True)
class Protocol:
    name: str = "proxy"
    epochs: int = 2
    batch_size: int = 96
    resolution: int = 32
    train_subset: int | None = 2000  # at most this many training images (seeded, stratified)
    val_subset: int | None = None
    optimizer: str = "sgd"  # sgd (Nesterov, momentum 0.9) | adamw
    lr: float = 0.2
    weight_decay: float = 5e-5
    warmup_epochs: float = 0.3
    label_smoothing: float = 0.0
    augment: str = "auto"  # auto: crop+flip on natural images only | on | off
    dropout: float | None = 0.0  # None keeps the Arch's; a short proxy learns better without
    channels_last: bool = False
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "Protocol":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Protocol":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise GhostNASError(f"protocol: unknown field(s) {sorted(unknown)}; allowed {sorted(names)}")
        return cls(**data)


# The default proxy (a search trial) and a 10x longer training of the same recipe (fidelity checks).
PROTOCOLS: dict[str, Protocol] = {
    "proxy": Protocol(),
    "long": Protocol(name="long", epochs=10, train_subset=None),  # 10x the images of "proxy" on mnist5k
    # `ghostnas train`: all the data, the Arch's own dropout
    "train": Protocol(name="train", epochs=10, train_subset=None, dropout=None),
    "smoke": Protocol(name="smoke", epochs=1, train_subset=256, val_subset=128, batch_size=64),
    # The stand-alone yardstick on a large dataset (Fashion-MNIST's 60,000 training images): 4
    # epochs over every image is 240,000 image-passes, 6x "long" on mnist5k, ~8 min for paper-1.0x
    # on one 2-core CPU thread; scored on the test set (Dataset.for_test) by the benchmarks.
    "reference": Protocol(name="reference", epochs=4, train_subset=None),
}


def get_protocol(name: str, **overrides: Any) -> Protocol:
    if name not in PROTOCOLS:
        raise GhostNASError(f"unknown protocol {name!r}; choose one of {sorted(PROTOCOLS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return PROTOCOLS[name].replace(**overrides) if overrides else PROTOCOLS[name]


@dataclass
class TrainResult:
    val_acc: float
    epochs: int
    seconds: float
    history: list[dict[str, float]]
    protocol: dict[str, Any]
    device: str
    model: torch.nn.Module | None = field(default=None, repr=False)
    scored_on: str = "val"  # the split val_acc was measured on: "val", or "test" (Dataset.for_test)

    def to_dict(self) -> dict[str, Any]:
        return {"val_acc": self.val_acc, "scored_on": self.scored_on, "epochs": self.epochs,
                "seconds": round(self.seconds, 3), "history": self.history, "protocol": self.protocol,
                "device": self.device}


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _subset(n: int, limit: int | None, y: torch.Tensor, seed: int) -> torch.Tensor:
    if limit is None or limit >= n:
        return torch.arange(n)
    # stratified: a seeded shuffle, then round-robin over classes keeps class balance
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    ys = y[perm]
    order = torch.argsort(_rank_within_class(ys), stable=True)
    return torch.sort(perm[order[:limit]]).values


def _rank_within_class(y: torch.Tensor) -> torch.Tensor:
    """For each position, how many earlier items share its class (0, 1, 2, ...)."""
    ranks = torch.empty_like(y)
    for c in torch.unique(y):
        idx = (y == c).nonzero().flatten()
        ranks[idx] = torch.arange(len(idx))
    return ranks


def _lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))


def amp_dtype_for(device: torch.device) -> torch.dtype | None:
    """Mixed precision on a GPU: bf16 where supported (no loss scaling), else fp16 with a
    gradient scaler; none on the CPU, whose numbers stay fp32 and bit-reproducible."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500,
             amp_dtype: torch.dtype | None = None) -> tuple[float, float]:
    """(top-1 accuracy, mean loss) on prepared tensors."""
    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.inference_mode():
        for i in range(0, len(y), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(xb)
            loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum").item()
            correct += (logits.argmax(1) == yb).sum().item()
    return correct / len(y), loss_sum / len(y)


def train(arch: "Arch | str", data: Dataset, protocol: Protocol = PROTOCOLS["proxy"], *,
          on_epoch: Callable[[int, float], None] | None = None, device: str | None = None,
          out_dir: "str | os.PathLike[str] | None" = None, resume: bool = False,
          progress: bool = False, keep_model: bool = False) -> TrainResult:
    """Train ``arch`` on ``data`` under ``protocol``; return validation top-1 (a fraction).

    ``on_epoch(epoch, val_acc)`` is called after each epoch (1-based) and may raise (e.g. optuna's
    TrialPruned) to stop. With ``out_dir``, a checkpoint (``checkpoint.pt``, written atomically)
    and ``metrics.csv`` are kept each epoch; ``resume=True`` continues from the checkpoint.
    """
    start = time.perf_counter()
    arch = load_arch(arch)
    dev = pick_device(device)
    amp_dtype = amp_dtype_for(dev)
    p = protocol
    overrides: dict[str, Any] = {"num_classes": data.num_classes}
    if p.dropout is not None:
        overrides["dropout"] = p.dropout
    torch.manual_seed(p.seed)
    model = create_model(arch, **overrides).to(dev)
    memory_format = torch.channels_last if p.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)

    tr = _subset(len(data.y_train), p.train_subset, data.y_train, p.seed)
    va = _subset(len(data.y_val), p.val_subset, data.y_val, p.seed + 1)
    mean, std = data.stats()
    x_train = prepare(data.x_train[tr], p.resolution, mean, std).to(dev)
    y_train = data.y_train[tr].to(dev)
    x_val = prepare(data.x_val[va], p.resolution, mean, std).to(dev).contiguous(memory_format=memory_format)
    y_val = data.y_val[va].to(dev)
    use_aug = p.augment == "on" or (p.augment == "auto" and data.natural)

    params_bn = [q for n, q in model.named_parameters() if q.dim() <= 1]
    params_w = [q for n, q in model.named_parameters() if q.dim() > 1]
    groups = [{"params": params_w, "weight_decay": p.weight_decay}, {"params": params_bn, "weight_decay": 0.0}]
    if p.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=p.lr, momentum=0.9, nesterov=True)
    elif p.optimizer == "adamw":
        opt = torch.optim.AdamW(groups, lr=p.lr)
    else:
        raise GhostNASError(f"protocol: unknown optimizer {p.optimizer!r}; use sgd or adamw")
    scaler = torch.amp.GradScaler(dev.type) if amp_dtype == torch.float16 else None

    steps_per_epoch = max(1, len(y_train) // p.batch_size)  # drop the ragged last batch
    total_steps = steps_per_epoch * p.epochs
    warmup = int(p.warmup_epochs * steps_per_epoch)
    history: list[dict[str, float]] = []
    first_epoch = 1
    ckpt_path = Path(out_dir) / "checkpoint.pt" if out_dir else None
    if resume and ckpt_path and ckpt_path.exists():
        state = _load_checkpoint(ckpt_path, arch, p)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):  # fp16 loss scale: resume equals uninterrupted
            scaler.load_state_dict(state["scaler"])
        history = state["history"]
        first_epoch = int(state["epoch"]) + 1

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=(first_epoch - 1) * steps_per_epoch, unit="step",
                   desc=arch.name or "train", leave=False)
    for epoch in range(first_epoch, p.epochs + 1):
        t_epoch = time.perf_counter()
        model.train()
        g = torch.Generator().manual_seed(p.seed * 100003 + epoch)
        torch.manual_seed(p.seed * 100003 + epoch)  # dropout
        perm = torch.randperm(len(y_train), generator=g).to(dev)
        loss_sum, correct, seen = 0.0, 0, 0
        for b in range(steps_per_epoch):
            step = (epoch - 1) * steps_per_epoch + b
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, total_steps, warmup, p.lr)
            idx = perm[b * p.batch_size:(b + 1) * p.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if use_aug:
                xb = augment(xb.cpu(), g).to(dev)
            xb = xb.contiguous(memory_format=memory_format)
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=p.label_smoothing)
            if not torch.isfinite(loss):
                raise TrainingFailed(f"loss became {loss.item()} at epoch {epoch} step {b}")
            opt.zero_grad(set_to_none=True)
            if scaler:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            loss_sum += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(yb)
            if bar:
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{loss_sum / seen:.3f}")
        val_acc, val_loss = evaluate(model, x_val, y_val, amp_dtype=amp_dtype)
        history.append({"epoch": epoch, "train_loss": round(loss_sum / seen, 5),
                        "train_acc": round(correct / seen, 5), "val_loss": round(val_loss, 5),
                        "val_acc": val_acc, "seconds": round(time.perf_counter() - t_epoch, 3)})
        if out_dir:
            _save_epoch(Path(out_dir), model, opt, arch, p, epoch, history, scaler)
        if on_epoch:
            on_epoch(epoch, val_acc)
    if bar:
        bar.close()
    final = history[-1]["val_acc"] if history else 0.0
    return TrainResult(val_acc=final, epochs=len(history), seconds=time.perf_counter() - start,
                       history=history, protocol=p.to_dict(), device=str(dev),
                       model=model if keep_model else None, scored_on=data.scored_on)


def _save_epoch(out: Path, model, opt, arch: Arch, p: Protocol, epoch: int, history: list,
                scaler=None) -> None:
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
             "history": history, "arch": arch.to_json(), "protocol": json.dumps(p.to_dict()),
             "scaler": scaler.state_dict() if scaler is not None else None}
    atomic_write(out / "checkpoint.pt", lambda tmp: torch.save(state, tmp))

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)

    atomic_write(out / "metrics.csv", write_csv)


def _load_checkpoint(path: Path, arch: Arch, p: Protocol) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GhostNASError(f"{path}: unreadable checkpoint ({exc}); delete it to start over") from None
    if state.get("arch") != arch.to_json() or state.get("protocol") != json.dumps(p.to_dict()):
        raise GhostNASError(f"{path}: checkpoint is for another arch or protocol; use a new --out "
                            "or drop --resume")
    return state
