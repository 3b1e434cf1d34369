"""Training and evaluation speed at 32 px on the CPU, by memory format and by whether depthwise
convs skip the kernel taps that only meet zero padding (``ghostnas.nn.ghostnet.DepthwiseConv2d``):
paper-1.0x stand-alone (a search trial, ``ghostnas train``, the references) and the supernet's
two kinds of step (the largest network alone; the sandwich rule's four networks), batch 96, the
four variants alternated round by round so that each sees the same machine. Writes
results/benchmarks/train_speed.{json,md}.

    python benchmarks/train_speed.py [--steps 12] [--rounds 2] [--threads N]

With ``--device cuda`` it times the GPU in fp32 and in the trainer's mixed precision (bf16, or
fp16 where the GPU lacks bf16), each with and without channels_last, against the same machine's
CPU (contiguous, all cores) measured in the same run, into train_speed-cuda.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ghostnas import create_model
from ghostnas.data import DEFAULT_DATA, load_data
from ghostnas.io import atomic_write_text
from ghostnas.machine import describe
from ghostnas.nn.ghostnet import full_kernels
from ghostnas.space import load_space
from ghostnas.supernet import get_supernet_protocol, train_supernet
from ghostnas.train import amp_dtype_for, pick_device

BATCH = 96  # the proxy's and the supernet recipes' batch
# (label, channels_last, skip padding taps); the last is what the trainers do on the CPU
VARIANTS = [("NCHW, full kernels", False, False), ("NCHW, padding taps skipped", False, True),
            ("channels_last, full kernels", True, False), ("channels_last, padding taps skipped", True, True)]
KINDS = ("stand-alone train", "stand-alone eval", "supernet, largest alone", "supernet, sandwich")


def measure(channels_last: bool, steps: int, batch: int, res: int, device: torch.device = torch.device("cpu"),
            amp_dtype: torch.dtype | None = None, num_classes: int = 10) -> dict:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = create_model("paper-1.0x", num_classes=num_classes).to(device, memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 3, res, res, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, num_classes, (batch,), device=device)
    autocast = lambda: torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)  # noqa: E731
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def timed(step) -> float:
        times = []
        for i in range(steps + 3):
            sync()
            t = time.perf_counter()
            step()
            sync()
            if i >= 3:
                times.append(time.perf_counter() - t)
        return round(batch / statistics.median(times), 1)

    def train_step():
        with autocast():
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def eval_step():
        with torch.inference_mode(), autocast():
            model(x)

    model.train()
    train_img_s = timed(train_step)
    model.eval()
    return {"train_img_s": train_img_s, "eval_img_s": timed(eval_step)}


def supernet_steps(space, data, steps: int, channels_last: bool | None = None) -> tuple[float, float]:
    """Seconds per step of a largest-alone epoch and of a sandwich epoch (the recipe's own loop)."""
    protocol = get_supernet_protocol("progressive", epochs=2, largest_share=0.5, train_subset=steps * BATCH)
    with tempfile.TemporaryDirectory() as out:
        history = train_supernet(space, data, protocol, out, channels_last=channels_last)["history"]
    return history[0]["seconds"] / steps, history[1]["seconds"] / steps


def supernet_steps_for(steps: int) -> int:
    return max(2, steps // 2)  # a supernet step costs ~10x a stand-alone one


def measure_cpu_variants(steps: int, rounds: int) -> dict:
    """Seconds per step of every kind under every variant: the median over ``rounds`` (a first,
    untimed round warms up)."""
    space, data = load_space("ghostnet"), load_data(DEFAULT_DATA)
    supernet_n = supernet_steps_for(steps)
    times: dict[str, dict[str, list[float]]] = {v[0]: {k: [] for k in KINDS} for v in VARIANTS}
    for r in range(rounds + 1):
        for label, channels_last, skip in VARIANTS:
            with full_kernels() if not skip else contextlib.nullcontext():
                alone = measure(channels_last, steps, BATCH, 32)
                largest, sandwich = supernet_steps(space, data, supernet_n, channels_last)
            seconds = dict(zip(KINDS, (BATCH / alone["train_img_s"], BATCH / alone["eval_img_s"], largest, sandwich)))
            print(json.dumps({"round": r, "variant": label, **{k: round(v, 4) for k, v in seconds.items()}}), flush=True)
            if r:
                for k, v in seconds.items():
                    times[label][k].append(v)
    return {label: {k: round(statistics.median(v), 4) for k, v in kinds.items()} for label, kinds in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12, help="timed steps per kind (the supernet's: half)")
    ap.add_argument("--rounds", type=int, default=2, help="CPU: timed rounds of every variant")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's, all cores)")
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = ap.parse_args()
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    res = {"machine": describe(threads=threads), "model": "paper-1.0x", "resolution": 32,
           "batch": BATCH if device.type == "cpu" else 128, "steps": args.steps, "device": str(device)}
    if device.type == "cpu":
        res.update(rounds=args.rounds, seconds_per_step=measure_cpu_variants(args.steps, args.rounds))
    else:
        amp = amp_dtype_for(device)
        res["gpu"] = torch.cuda.get_device_name(device)
        res["amp_dtype"] = str(amp).replace("torch.", "")
        res["runs"] = {f"{prec}, {fmt}": measure(fmt == "channels_last", args.steps, 128, 32, device, dtype)
                       for prec, dtype in (("fp32", None), (res["amp_dtype"], amp))
                       for fmt in ("contiguous", "channels_last")}
        res["cpu_baseline"] = measure(False, args.steps, 128, 32)
        # the ImageNet-scale estimate (docs/imagenet.md): the paper's input and classes, the faster
        # memory format of the runs above, model compute only (no JPEG decoding)
        fmt = max(("contiguous", "channels_last"), key=lambda f: res["runs"][f"{res['amp_dtype']}, {f}"]["train_img_s"])
        res["imagenet"] = {"resolution": 224, "batch": 256, "classes": 1000, "memory_format": fmt,
                           **measure(fmt == "channels_last", args.steps, 256, 224, device, amp, num_classes=1000)}
    out = Path(args.out)
    stem = "train_speed" + ("" if device.type == "cpu" else f"-{device.type}")
    atomic_write_text(out / f"{stem}.json", json.dumps(res, indent=1) + "\n")
    md = report_cpu(res, threads, args.steps) if device.type == "cpu" else report_gpu(res, threads, args.steps)
    atomic_write_text(out / f"{stem}.md", md)
    print(md)


def report_cpu(res: dict, threads: int, steps: int) -> str:
    m, t = res["machine"], res["seconds_per_step"]
    base, now = t[VARIANTS[0][0]], t[VARIANTS[-1][0]]
    rows = "\n".join(f"| {label} | " + " | ".join(f"{v[k]:.3f}" for k in KINDS) + " |" for label, v in t.items())
    gains = ", ".join(f"{k} {base[k] / now[k]:.2f}x" for k in KINDS)
    return f"""# Training speed on the CPU (benchmarks/train_speed.py)

{m['cpu']}, {m['cores']} cores, {threads} torch thread(s), torch {m.get('torch')} CPU, load average
{m.get('load_1min')} before the run, {m['date']}. Batch {res['batch']} at 32 px; stand-alone: paper-1.0x
(10 classes), median of {steps} steps after 3 warm-up; supernet: the default space's progressive
recipe on {supernet_steps_for(steps)} steps of each kind. Seconds per step, the median of {res['rounds']} rounds, the
variants alternated within each round.

| variant | {' | '.join(KINDS)} |
|---|---|---|---|---|
{rows}

The trainers' choice on the CPU (channels_last, padding taps skipped) against the old one (NCHW,
full kernels): {gains} faster.
"""


def report_gpu(res: dict, threads: int, steps: int) -> str:
    m, base = res["machine"], res["cpu_baseline"]
    rows = "\n".join(f"| {k} | {v['train_img_s']} | {v['eval_img_s']} | "
                     f"{v['train_img_s'] / base['train_img_s']:.1f}x / {v['eval_img_s'] / base['eval_img_s']:.1f}x |"
                     for k, v in res["runs"].items())
    return f"""# Training throughput on a GPU (benchmarks/train_speed.py --device {res['device']})

paper-1.0x (10 classes), 32x32 input, batch 128, SGD step; {res['gpu']}, torch {m.get('torch')};
median of {steps} steps after 3 warm-up, the GPU synchronised around each. Baseline in the same
run: the machine's CPU ({m['cpu']}, {m['cores']} cores, {threads} torch threads, contiguous),
{base['train_img_s']} train / {base['eval_img_s']} eval images/s.

| precision, memory format | train images/s | eval images/s | vs the CPU (train / eval) |
|---|---|---|---|
{rows}

The trainer uses {res['amp_dtype']} mixed precision on this GPU (`ghostnas.train.amp_dtype_for`).

ImageNet scale (paper-1.0x, 1000 classes, 224x224, batch 256, {res['amp_dtype']}, {res['imagenet']['memory_format']}):
{res['imagenet']['train_img_s']} train / {res['imagenet']['eval_img_s']} eval images/s, model compute alone.
"""


if __name__ == "__main__":
    main()
