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
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F

from .arch import Arch, load_arch
from .data import Dataset, augment, prepare
from .errors import GhostNASError
from .io import atomic_write, atomic_write_text, make_dir
from .nn.ghostnet import create_model
from .nn.reparam import add_branches, merge_branches
from .nn.weights import load_tensors
from .stream import StreamDataset


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
    # True: channels_last on every device. False: the device's faster format (memory_format_for).
    # A field of the protocol's identity since before that rule, so it keeps its name and
    # default: recorded runs keep their keys.
    channels_last: bool = False
    seed: int = 0
    # GhostNetV3's re-parameterisable branches (ghostnas.nn.reparam): this many parallel conv + BN
    # per Ghost-module conv and strided depthwise conv while training, merged into the plain
    # network at the end; 0: plain training
    reparam: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not d["reparam"]:  # absent when off: records and checkpoints from before it stay equal
            del d["reparam"]
        return d

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
    # on one 2-core CPU thread; scored on the test set (Dataset.for_test) by the benchmarks. lr 0.1,
    # not the proxy's 0.2: at 0.2, 3 of 10 networks' two runs differed by ~5 points, and two such
    # runs re-trained at 0.1 climbed every epoch and ended 5.6 points higher (docs/proxy-fidelity.md).
    "reference": Protocol(name="reference", epochs=4, train_subset=None, lr=0.1),
    # ImageNet-scale (``--data imagenet:PATH``, streamed; prepared for a GPU, not run here). The
    # paper trained with batch 1024 at lr 0.4 on 8 GPUs; one GPU at batch 256 takes the same lr per
    # image (0.1). Weight decay 4e-5 and label smoothing 0.1, as is common for small ImageNet
    # networks (our choice, not the paper's stated recipe), and the Arch's dropout 0.2. Epochs: the schedule is the user's choice (reproduce_paper's
    # --eval-epochs); 100 is the usual short one.
    "imagenet": Protocol(name="imagenet", epochs=100, batch_size=256, resolution=224, train_subset=None,
                         lr=0.1, weight_decay=4e-5, warmup_epochs=1.0, label_smoothing=0.1, dropout=None,
                         augment="on"),
    # An ImageNet search trial: one epoch over 100 images a class at 160 px, scored on the
    # 10,000-image validation split: ~30 s of compute for paper-1.0x on an H200 (its measured 1,758
    # images/s at 224 px, scaled by the pixels), if enough CPU workers decode the JPEGs.
    "imagenet-proxy": Protocol(name="imagenet-proxy", epochs=1, batch_size=256, resolution=160,
                               train_subset=100_000, lr=0.1, weight_decay=4e-5, warmup_epochs=0.1,
                               label_smoothing=0.1, augment="on"),
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
    """The device to train on: the one named (refused in one line when absent), else a GPU when
    present, else the CPU."""
    if not device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise GhostNASError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise GhostNASError(f"device {device!r} is not supported; use cpu, cuda or cuda:N")
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise GhostNASError(f"device {device!r}: no such CUDA device here "
                            f"({torch.cuda.device_count()} visible); use --device cpu")
    return dev


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


def memory_format_for(device: torch.device, channels_last: bool = False) -> torch.memory_format:
    """The training memory format: channels_last when asked, else the device's faster one by
    measurement: channels_last on the CPU (with the skipped padding taps, a stand-alone step 1.63x
    and a supernet step 2.3-2.5x faster than NCHW, results/benchmarks/train_speed.md), NCHW on
    CUDA (channels_last hurt bf16 there, docs/imagenet.md). It changes rounding, not the sums."""
    return torch.channels_last if channels_last or device.type == "cpu" else torch.contiguous_format


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500,
             amp_dtype: torch.dtype | None = None) -> tuple[float, float]:
    """(top-1 accuracy, mean loss) on prepared tensors."""
    return score_batches(model, ((x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)),
                         amp_dtype)


def score_batches(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                  amp_dtype: torch.dtype | None = None) -> tuple[float, float]:
    """(top-1 accuracy, mean loss) over prepared batches (in memory, or streamed from files)."""
    model.eval()
    correct, loss_sum, seen = 0, 0.0, 0
    with torch.inference_mode():
        for xb, yb in batches:
            with torch.autocast(xb.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(xb)
            loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum").item()
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(yb)
    return correct / seen, loss_sum / seen


@dataclass
class _Session:
    """One training's model, optimiser and prepared tensors (built by :func:`_start`); with data
    streamed from files, the images' indices instead (``stream``, ``train_idx``, ``val_idx``)."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    scaler: Any
    x_train: torch.Tensor | None
    y_train: torch.Tensor
    x_val: torch.Tensor | None
    y_val: torch.Tensor
    device: torch.device
    amp_dtype: torch.dtype | None
    memory_format: torch.memory_format
    augment: bool
    steps_per_epoch: int
    total_steps: int
    warmup: int
    stream: StreamDataset | None = None
    train_idx: torch.Tensor | None = None
    val_idx: torch.Tensor | None = None


def check_protocol(p: Protocol) -> None:
    """Numbers a training cannot run with, refused before anything is built or written."""
    problems = [f"{name} {value!r} (need {need})" for name, value, ok, need in (
        ("epochs", p.epochs, p.epochs >= 1, "at least 1: 0 would score an untrained network"),
        ("batch_size", p.batch_size, p.batch_size >= 1, "at least 1"),
        ("resolution", p.resolution, 8 <= p.resolution <= 4096, "8-4096"),
        ("lr", p.lr, math.isfinite(p.lr) and p.lr > 0, "a positive number"),
        ("train_subset", p.train_subset, p.train_subset is None or p.train_subset >= 1, "at least 1 image"),
        ("val_subset", p.val_subset, p.val_subset is None or p.val_subset >= 1, "at least 1 image"),
        ("seed", p.seed, 0 <= p.seed < 2**32, "0 to 2**32-1"),
        ("reparam", p.reparam, 0 <= p.reparam <= 8, "0 (off) to 8 branches"))
        if not ok]
    if problems:
        raise GhostNASError(f"protocol {p.name!r}: bad {'; '.join(problems)}")


def _start(arch: Arch, data: Dataset, p: Protocol, dev: torch.device,
           init: dict[str, torch.Tensor] | None = None) -> _Session:
    amp_dtype = amp_dtype_for(dev)
    overrides: dict[str, Any] = {"num_classes": data.num_classes}
    if p.dropout is not None:
        overrides["dropout"] = p.dropout
    torch.manual_seed(p.seed)
    model = create_model(arch, **overrides)
    if init is not None:  # e.g. a supernet's inherited weights, fine-tuned from here
        model.load_state_dict(init)
    if p.reparam:
        model = add_branches(model, p.reparam)
    model = model.to(dev)
    memory_format = memory_format_for(dev, p.channels_last)
    model = model.to(memory_format=memory_format)

    tr = _subset(len(data.y_train), p.train_subset, data.y_train, p.seed)
    va = _subset(len(data.y_val), p.val_subset, data.y_val, p.seed + 1)
    stream = data if isinstance(data, StreamDataset) else None
    x_train = x_val = None
    if stream is None:
        mean, std = data.stats()
        x_train = prepare(data.x_train[tr], p.resolution, mean, std).to(dev)
        x_val = prepare(data.x_val[va], p.resolution, mean, std).to(dev).contiguous(memory_format=memory_format)

    params_bn = [q for n, q in model.named_parameters() if q.dim() <= 1]
    params_w = [q for n, q in model.named_parameters() if q.dim() > 1]
    groups = [{"params": params_w, "weight_decay": p.weight_decay}, {"params": params_bn, "weight_decay": 0.0}]
    if p.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=p.lr, momentum=0.9, nesterov=True)
    elif p.optimizer == "adamw":
        opt = torch.optim.AdamW(groups, lr=p.lr)
    else:
        raise GhostNASError(f"protocol: unknown optimizer {p.optimizer!r}; use sgd or adamw")
    steps_per_epoch = max(1, len(tr) // p.batch_size)  # drop the ragged last batch
    return _Session(model, opt, torch.amp.GradScaler(dev.type) if amp_dtype == torch.float16 else None,
                    x_train, data.y_train[tr].to(dev), x_val, data.y_val[va].to(dev), dev, amp_dtype,
                    memory_format, p.augment == "on" or (p.augment == "auto" and data.natural),
                    steps_per_epoch, steps_per_epoch * p.epochs, int(p.warmup_epochs * steps_per_epoch),
                    stream, tr, va)


def _train_epoch(s: _Session, p: Protocol, epoch: int, bar) -> dict[str, float]:
    """One epoch; its shuffle, augmentation and dropout seeded by (seed, epoch)."""
    t_epoch = time.perf_counter()
    s.model.train()
    g = torch.Generator().manual_seed(p.seed * 100003 + epoch)
    torch.manual_seed(p.seed * 100003 + epoch)  # dropout
    perm = torch.randperm(len(s.y_train), generator=g).to(s.device)
    loss_sum, correct, seen = 0.0, 0, 0
    for b, (xb, yb) in enumerate(_train_batches(s, p, epoch, perm, g)):
        step = (epoch - 1) * s.steps_per_epoch + b
        for group in s.opt.param_groups:
            group["lr"] = _lr_at(step, s.total_steps, s.warmup, p.lr)
        xb = xb.contiguous(memory_format=s.memory_format)
        with torch.autocast(s.device.type, dtype=s.amp_dtype, enabled=s.amp_dtype is not None):
            logits = s.model(xb)
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=p.label_smoothing)
        if not torch.isfinite(loss):
            raise TrainingFailed(f"loss became {loss.item()} at epoch {epoch} step {b}")
        s.opt.zero_grad(set_to_none=True)
        if s.scaler:
            s.scaler.scale(loss).backward()
            s.scaler.step(s.opt)
            s.scaler.update()
        else:
            loss.backward()
            s.opt.step()
        loss_sum += loss.item() * len(yb)
        correct += (logits.argmax(1) == yb).sum().item()
        seen += len(yb)
        if bar:
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss_sum / seen:.3f}")
    if s.stream is None:
        val_acc, val_loss = evaluate(s.model, s.x_val, s.y_val, amp_dtype=s.amp_dtype)
    else:
        batches = s.stream.batches("val", s.val_idx, p.resolution, 250, train=False, device=s.device)
        val_acc, val_loss = score_batches(
            s.model, ((xb.contiguous(memory_format=s.memory_format), yb) for xb, yb in batches), s.amp_dtype)
    return {"epoch": epoch, "train_loss": round(loss_sum / seen, 5), "train_acc": round(correct / seen, 5),
            "val_loss": round(val_loss, 5), "val_acc": val_acc, "seconds": round(time.perf_counter() - t_epoch, 3)}


def _train_batches(s: _Session, p: Protocol, epoch: int, perm: torch.Tensor,
                   g: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The epoch's training batches in ``perm``'s order, augmented when the protocol says so."""
    if s.stream is not None:  # decoded and augmented by the loader's workers, seeded per image
        order = s.train_idx[perm.cpu()[:s.steps_per_epoch * p.batch_size]]  # the ragged last batch dropped
        yield from s.stream.batches("train", order, p.resolution, p.batch_size, train=s.augment,
                                    seed=p.seed, epoch=epoch, device=s.device)
        return
    for b in range(s.steps_per_epoch):
        idx = perm[b * p.batch_size:(b + 1) * p.batch_size]
        xb, yb = s.x_train[idx], s.y_train[idx]
        if s.augment:
            xb = augment(xb.cpu(), g).to(s.device)
        yield xb, yb


def train(arch: "Arch | str", data: "Dataset | StreamDataset", protocol: Protocol = PROTOCOLS["proxy"], *,
          on_epoch: Callable[[int, float], None] | None = None, device: str | None = None,
          out_dir: "str | os.PathLike[str] | None" = None, resume: bool = False,
          progress: bool = False, keep_model: bool = False,
          init: dict[str, torch.Tensor] | None = None) -> TrainResult:
    """Train ``arch`` on ``data`` under ``protocol``; return validation top-1 (a fraction).

    ``on_epoch(epoch, val_acc)`` is called after each epoch (1-based) and may raise (e.g. optuna's
    TrialPruned) to stop. With ``out_dir``, a checkpoint (``checkpoint.pt``, written atomically)
    and ``metrics.csv`` are kept each epoch; ``resume=True`` continues from the checkpoint.
    """
    start = time.perf_counter()
    arch = load_arch(arch)
    p = protocol
    check_protocol(p)
    s = _start(arch, data, p, pick_device(device), init)
    history: list[dict[str, float]] = []
    first_epoch = 1
    ckpt_path = Path(out_dir) / "checkpoint.pt" if out_dir else None
    if resume and ckpt_path and ckpt_path.exists():
        state = _load_checkpoint(ckpt_path, arch, p)
        s.model.load_state_dict(state["model"])
        s.opt.load_state_dict(state["optimizer"])
        if s.scaler is not None and state.get("scaler"):  # fp16 loss scale: resume equals uninterrupted
            s.scaler.load_state_dict(state["scaler"])
        history = state["history"]
        first_epoch = int(state["epoch"]) + 1
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=s.total_steps, initial=(first_epoch - 1) * s.steps_per_epoch, unit="step",
                   desc=arch.name or "train", leave=False)
    for epoch in range(first_epoch, p.epochs + 1):
        history.append(_train_epoch(s, p, epoch, bar))
        if out_dir:
            _save_epoch(Path(out_dir), s.model, s.opt, arch, p, epoch, history, s.scaler)
        if on_epoch:
            on_epoch(epoch, history[-1]["val_acc"])
    if bar:
        bar.close()
    model = s.model
    if keep_model and p.reparam:  # what is kept (and saved, exported) is the plain deploy network
        model = merge_branches(s.model.eval())
    return TrainResult(val_acc=history[-1]["val_acc"], epochs=len(history), seconds=time.perf_counter() - start,
                       history=history, protocol=p.to_dict(), device=str(s.device),
                       model=model if keep_model else None, scored_on=data.scored_on)


CHECKPOINTS = Path("results/runs/checkpoints")  # benchmarks' runs in progress (git-ignored)


def train_checkpointed(arch: "Arch | str", data: Dataset, protocol: Protocol, *,
                       folder: "str | os.PathLike[str]" = CHECKPOINTS, **kwargs: Any) -> TrainResult:
    """:func:`train` with a checkpoint each epoch in a folder named by what the run is (arch,
    protocol, data, split), resumed from it if present: a long run stopped part-way (a session
    that ends, a killed shard) loses at most one epoch, and the resumed run equals an
    uninterrupted one. The folder is removed when the run finishes. ``seconds`` is the sum of the
    epochs' times over every session, not this session's share."""
    import hashlib
    import shutil

    arch = load_arch(arch)
    what = json.dumps([arch.to_json(), protocol.to_dict(), data.describe()], sort_keys=True)
    run_dir = Path(folder) / f"{arch.name or 'arch'}-{hashlib.sha1(what.encode()).hexdigest()[:12]}"
    make_dir(run_dir, "checkpoint folder")
    result = train(arch, data, protocol, out_dir=run_dir, resume=True, **kwargs)
    shutil.rmtree(run_dir, ignore_errors=True)
    return dataclasses.replace(result, seconds=sum(h["seconds"] for h in result.history))


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
    state = load_tensors(path, "checkpoint")
    if not isinstance(state, dict):
        raise GhostNASError(f"{path}: not a ghostnas checkpoint; delete it to start over")
    if state.get("arch") != arch.to_json() or state.get("protocol") != json.dumps(p.to_dict()):
        raise GhostNASError(f"{path}: checkpoint is for another arch or protocol; use a new --out "
                            "or drop --resume")
    return state


def default_run_dir(arch: Arch, data_spec: str, seed: int, scored_on: str = "val") -> Path:
    """Where `ghostnas train` writes when not told: one folder per (arch, data, split, seed)."""
    tag = data_spec.split(":")[0] + ("_test" if scored_on == "test" else "")
    return Path("results/runs/train") / f"{arch.name or 'arch'}_{tag}_seed{seed}"


def train_run(arch: Arch, data: Dataset, protocol: Protocol, out: "str | os.PathLike[str]", *,
              resume: bool = False, device: str | None = None, progress: bool = False,
              init: dict[str, torch.Tensor] | None = None) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """`ghostnas train`: train into a run folder (``arch.json``, ``checkpoint.pt`` and ``metrics.csv``
    each epoch, ``model.pt`` and ``result.json`` at the end); returns (summary, history).

    Everything that can be refused is refused before a file is written: a folder that holds
    another run (without ``resume``), a checkpoint of another arch or protocol, bad protocol
    numbers, an absent device, a folder that cannot be written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GhostNASError(f"--out {out} is a file; give a folder")
    ckpt = out / "checkpoint.pt"
    if ckpt.exists() and not resume:
        raise GhostNASError(f"{out} already holds a training run; add --resume to continue it or give another --out")
    if resume and ckpt.exists():
        _load_checkpoint(ckpt, arch, protocol)  # another network's run is refused untouched
    check_protocol(protocol)
    pick_device(device)
    make_dir(out, "--out")
    atomic_write_text(out / "arch.json", arch.to_json() + "\n")
    try:
        result = train(arch, data, protocol, out_dir=out, resume=resume, device=device, progress=progress,
                       keep_model=True, init=init)
    except TrainingFailed as exc:
        raise GhostNASError(f"training failed: {exc}; if the loss diverged, try a lower --lr") from None
    atomic_write(out / "model.pt", lambda tmp: torch.save(result.model.state_dict(), tmp))
    summary = {"arch": arch.name, "data": data.describe(), "scored_on": result.scored_on, "val_acc": result.val_acc,
               "epochs": result.epochs, "seconds": round(result.seconds, 2), "device": result.device,
               "protocol": result.protocol, "out": str(out)}
    atomic_write_text(out / "result.json", json.dumps(summary, indent=1) + "\n")
    return summary, result.history
