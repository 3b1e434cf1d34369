"""Training and evaluation throughput of paper-1.0x at 32 px, batch 128, all cores, with and
without channels_last. Writes results/benchmarks/train_speed.{json,md}.

    python benchmarks/train_speed.py [--steps 20] [--device cuda]

With ``--device cuda`` it times the GPU in fp32 and in the trainer's mixed precision (bf16, or
fp16 where the GPU lacks bf16), each with and without channels_last, against the same machine's
CPU (contiguous, all cores) measured in the same run, into train_speed-cuda.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ghostnas import create_model
from ghostnas.io import atomic_write_text
from ghostnas.machine import describe
from ghostnas.train import amp_dtype_for, pick_device


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = ap.parse_args()
    device = pick_device(args.device)
    threads = torch.get_num_threads()
    res = {"machine": describe(threads=threads), "model": "paper-1.0x", "resolution": 32,
           "batch": 128, "steps": args.steps, "device": str(device)}
    if device.type == "cpu":
        res.update(contiguous=measure(False, args.steps, 128, 32), channels_last=measure(True, args.steps, 128, 32))
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
    m, c, cl = res["machine"], res["contiguous"], res["channels_last"]
    return f"""# Training throughput (benchmarks/train_speed.py)

paper-1.0x (10 classes), 32x32 input, batch 128, SGD step; {m['cpu']}, {m['cores']} cores,
{threads} torch threads, torch {m.get('torch')} CPU; median of {steps} steps after 3 warm-up.

| memory format | train images/s | eval images/s |
|---|---|---|
| contiguous (NCHW) | {c['train_img_s']} | {c['eval_img_s']} |
| channels_last | {cl['train_img_s']} | {cl['eval_img_s']} |

channels_last / contiguous: train {cl['train_img_s'] / c['train_img_s']:.2f}x, eval {cl['eval_img_s'] / c['eval_img_s']:.2f}x.
The proxy protocol keeps the faster one as its default (`Protocol.channels_last`).
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
