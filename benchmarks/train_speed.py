"""Training and evaluation throughput of paper-1.0x at 32 px, batch 128, all cores, with and
without channels_last. Writes results/benchmarks/train_speed.{json,md}.

    python benchmarks/train_speed.py [--steps 20]
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


def measure(channels_last: bool, steps: int, batch: int, res: int) -> dict:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = create_model("paper-1.0x", num_classes=10).to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 3, res, res).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    model.train()
    times = []
    for i in range(steps + 3):
        t = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t)
    model.eval()
    eval_times = []
    with torch.inference_mode():
        for i in range(steps + 3):
            t = time.perf_counter()
            model(x)
            if i >= 3:
                eval_times.append(time.perf_counter() - t)
    return {"train_img_s": round(batch / statistics.median(times), 1),
            "eval_img_s": round(batch / statistics.median(eval_times), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default="results/benchmarks")
    args = ap.parse_args()
    threads = torch.get_num_threads()
    res = {"machine": describe(threads=threads), "model": "paper-1.0x", "resolution": 32,
           "batch": 128, "steps": args.steps,
           "contiguous": measure(False, args.steps, 128, 32),
           "channels_last": measure(True, args.steps, 128, 32)}
    out = Path(args.out)
    atomic_write_text(out / "train_speed.json", json.dumps(res, indent=1) + "\n")
    m = res["machine"]
    c, cl = res["contiguous"], res["channels_last"]
    md = f"""# Training throughput (benchmarks/train_speed.py)

paper-1.0x (10 classes), 32x32 input, batch 128, SGD step; {m['cpu']}, {m['cores']} cores,
{threads} torch threads, torch {m.get('torch')} CPU; median of {args.steps} steps after 3 warm-up.

| memory format | train images/s | eval images/s |
|---|---|---|
| contiguous (NCHW) | {c['train_img_s']} | {c['eval_img_s']} |
| channels_last | {cl['train_img_s']} | {cl['eval_img_s']} |

channels_last / contiguous: train {cl['train_img_s'] / c['train_img_s']:.2f}x, eval {cl['eval_img_s'] / c['eval_img_s']:.2f}x.
The proxy protocol keeps the faster one as its default (`Protocol.channels_last`).
"""
    atomic_write_text(out / "train_speed.md", md)
    print(md)


if __name__ == "__main__":
    main()
