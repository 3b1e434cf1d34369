"""Training a supernet (``ghostnas supernet train``): deterministic, checkpointed every epoch,
resumable bit-identically, with its recipe recorded like the training protocols.

Recipes (``rule``): ``sandwich`` (BigNAS / AttentiveNAS: each step trains the largest subnet on
the labels and the smallest plus ``random_subnets`` random ones, by in-place distillation from
the largest's outputs when ``distill``), or ``uniform`` (SPOS: one uniformly sampled subnet a
step, on the labels). ``largest_share`` first trains the largest network alone for that share of
the epochs, as Once-for-All's progressive shrinking starts (recipe ``progressive``: a quarter,
then the sandwich rule distilling from it; OFA then opens one dimension at a time, here all at
once). Each step's subnets, shuffle and augmentation are seeded by (seed, epoch,
step), so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..data import Dataset, augment, prepare
from ..errors import GhostNASError
from ..io import atomic_write, atomic_write_text, make_dir
from ..nn.weights import load_tensors
from ..space import SearchSpace
from .elastic import SuperNet, distill_loss, sample_archs


@dataclass(frozen=True)
class SupernetProtocol:
    name: str = "sandwich"
    rule: str = "sandwich"  # sandwich | uniform
    epochs: int = 15  # ~25 min on mnist5k-clutter at 1 thread of this CPU (2.5 s per sandwich step)
    batch_size: int = 96
    resolution: int = 32
    lr: float = 0.1
    weight_decay: float = 5e-5
    warmup_epochs: float = 1.0
    random_subnets: int = 2
    distill: bool = True
    train_subset: int | None = None
    seed: int = 0
    largest_share: float = 0.0  # the first round(share * epochs) epochs train the largest network alone

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not d["largest_share"]:  # absent when off: supernets trained before it keep their identity
            del d["largest_share"]
        return d

    def largest_epochs(self) -> int:
        return round(self.largest_share * self.epochs)

    def replace(self, **changes: Any) -> "SupernetProtocol":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


SUPERNET_PROTOCOLS = {
    "sandwich": SupernetProtocol(),
    "uniform": SupernetProtocol(name="uniform", rule="uniform", distill=False),
    "progressive": SupernetProtocol(name="progressive", largest_share=0.25),
    "smoke": SupernetProtocol(name="smoke", epochs=1, train_subset=192, batch_size=64, random_subnets=1),
}


def get_supernet_protocol(name: str, **overrides: Any) -> SupernetProtocol:
    if name not in SUPERNET_PROTOCOLS:
        raise GhostNASError(f"unknown supernet recipe {name!r}; choose one of {sorted(SUPERNET_PROTOCOLS)}")
    p = SUPERNET_PROTOCOLS[name].replace(**overrides)
    if p.epochs < 1 or p.batch_size < 1 or not p.lr > 0 or p.random_subnets < 0 or not 0 <= p.largest_share < 1:
        raise GhostNASError(f"supernet recipe {name!r}: epochs and batch size must be at least 1, lr above 0, "
                            "largest_share in [0, 1)")
    return p


def _subnets(space: SearchSpace, p: SupernetProtocol, epoch: int, step: int):
    rng = random.Random(f"{p.seed}|{epoch}|{step}")
    if epoch <= p.largest_epochs():
        return [("largest", space.to_arch(space.largest_labels()).replace(dropout=0.0))]
    if p.rule == "uniform":
        return [("random", space.to_arch(space.sample(rng)).replace(dropout=0.0))]
    return [(kind, arch.replace(dropout=0.0)) for kind, arch in sample_archs(space, rng, p.random_subnets)]


def _lr(step: int, total: int, warmup: int, base: float) -> float:
    import math

    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_supernet(space: SearchSpace, data: Dataset, protocol: SupernetProtocol, out: "str | Path", *,
                   resume: bool = False, progress: bool = False, device: str | None = None,
                   channels_last: bool | None = None,
                   on_epoch: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Train a supernet of ``space`` on ``data`` into ``out`` (``supernet.pt``, ``supernet.json``,
    ``checkpoint.pt``, ``metrics.csv``); returns the record written to ``supernet.json``.
    ``channels_last`` None: the device's faster memory format (:func:`ghostnas.train.memory_format_for`);
    not part of the recipe."""
    out = Path(out)
    p = protocol
    ckpt = out / "checkpoint.pt"
    if ckpt.exists() and not resume:
        raise GhostNASError(f"{out} already holds a supernet training; add --resume to continue it or give another --out")
    make_dir(out, "--out")
    from ..train import amp_dtype_for, memory_format_for, pick_device

    dev = pick_device(device)
    amp = amp_dtype_for(dev)
    amp = amp if amp == torch.bfloat16 else None  # fp16 would need a loss scaler per subnet: fp32 instead
    torch.manual_seed(p.seed)
    net = SuperNet(space, data.num_classes)
    opt = torch.optim.SGD(net.parameters(), lr=p.lr, momentum=0.9, nesterov=True, weight_decay=p.weight_decay)
    mean, std = data.stats()
    n = len(data.y_train) if p.train_subset is None else min(p.train_subset, len(data.y_train))
    if channels_last is None:
        memory_format = memory_format_for(dev)
    else:
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
    x = prepare(data.x_train[:n], p.resolution, mean, std).to(dev)
    y = data.y_train[:n].to(dev)
    steps = max(1, n // p.batch_size)
    record: dict[str, Any] = {"space": space.to_dict(), "space_name": space.name, "space_hash": space.digest(),
                              "num_classes": data.num_classes, "data": data.describe(), "protocol": p.to_dict(),
                              "history": []}
    first = 1
    if resume and ckpt.exists():
        state = load_tensors(ckpt, "checkpoint")
        if not isinstance(state, dict) or state.get("record_key") != _record_key(record):
            raise GhostNASError(f"{ckpt}: {_resume_mismatch(state, record)}; resume with the settings it was "
                                "trained with, or give another --out")
        net.load_state_dict(state["net"])
        net.to(dev)  # before the optimiser's state, so it lands on the same device
        opt.load_state_dict(state["optimizer"])
        record["history"] = json.loads(state["history"])
        first = int(state["epoch"]) + 1
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps * p.epochs, initial=(first - 1) * steps, unit="step", desc="supernet")
    net.to(dev, memory_format=memory_format).train()
    record["device"] = str(dev)
    record["memory_format"] = "channels_last" if memory_format == torch.channels_last else "contiguous"
    for epoch in range(first, p.epochs + 1):
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(p.seed * 100003 + epoch)
        perm = torch.randperm(n, generator=g).to(dev)
        loss_sum = 0.0
        for b in range(steps):
            for group in opt.param_groups:
                group["lr"] = _lr((epoch - 1) * steps + b, steps * p.epochs, int(p.warmup_epochs * steps), p.lr)
            idx = perm[b * p.batch_size:(b + 1) * p.batch_size]
            xb, yb = (augment(x[idx].cpu(), g).to(dev) if data.natural else x[idx]), y[idx]
            xb = xb.contiguous(memory_format=memory_format)
            opt.zero_grad(set_to_none=True)
            teacher = None
            for kind, arch in _subnets(space, p, epoch, b):
                with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
                    logits = net(xb, arch).float()
                if teacher is None or not p.distill:
                    loss = F.cross_entropy(logits, yb)
                    teacher = logits.detach() if kind == "largest" else teacher
                else:
                    loss = distill_loss(logits, teacher)
                if not torch.isfinite(loss):
                    raise GhostNASError(f"supernet training diverged (loss {loss.item()}) at epoch {epoch}; "
                                        "try a lower --lr")
                loss.backward()
                loss_sum += loss.item()
            opt.step()
            if bar:
                bar.update(1)
        record["history"].append({"epoch": epoch, "loss": round(loss_sum / steps, 5),
                                  "seconds": round(time.perf_counter() - t0, 2)})
        _save(out, net, opt, epoch, record)
        if on_epoch:
            on_epoch(epoch, loss_sum / steps)
    if bar:
        bar.close()
    return json.loads((out / "supernet.json").read_text())


def _record_key(record: dict[str, Any]) -> str:
    return json.dumps({k: record[k] for k in ("space_hash", "num_classes", "data", "protocol")}, sort_keys=True)


def _resume_mismatch(state: Any, record: dict[str, Any]) -> str:
    """What differs between a checkpoint's training and the one asked for, in the options' words."""
    try:
        was, now = json.loads(state["record_key"]), json.loads(_record_key(record))
    except (TypeError, KeyError, ValueError):
        return "not a supernet checkpoint this version wrote"
    words = {"space_hash": "another space", "num_classes": "another number of classes", "data": "other data"}
    diff = [words[k] for k in words if was.get(k) != now.get(k)]
    old, new = was.get("protocol") or {}, now["protocol"]
    diff += [f"{'recipe' if k == 'name' else k} {old.get(k)!r} (asked: {new.get(k)!r})"
             for k in sorted(set(old) | set(new), key=lambda k: (k != "name", k)) if old.get(k) != new.get(k)]
    return f"trained with {', '.join(diff)}"


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """A hash of the weights themselves (the file's bytes also hold its temporary name)."""
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _save(out: Path, net: SuperNet, opt, epoch: int, record: dict[str, Any]) -> None:
    """Checkpoint (resume), weights and record; the record last, with the weights' digest."""
    state = {"net": net.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
             "history": json.dumps(record["history"]), "record_key": _record_key(record)}
    atomic_write(out / "checkpoint.pt", lambda tmp: torch.save(state, tmp))
    atomic_write(out / "supernet.pt", lambda tmp: torch.save(net.state_dict(), tmp))
    digest = weights_digest(net.state_dict())
    atomic_write_text(out / "supernet.json", json.dumps({**record, "epochs_done": epoch, "digest": digest},
                                                        indent=1) + "\n")
