"""Does a uniform-sampling supernet rank better once its largest network is trained every step?

    python benchmarks/supernet_finetune.py [--data fashion-mnist] [--supernet DIR] [--epochs 2] [--lr 0.02]
                                           [--threads 1] [--out results/benchmarks]

The question behind it: the Fashion-MNIST uniform supernet scores large networks too low against
their stand-alone reference (its accuracies follow parameter count at tau 0.27, the reference at
0.55), as if the wide channels, trained only when a wide network is drawn, lagged behind. So the
trained supernet is fine-tuned with two networks a step, the largest and one uniformly drawn, both
on the labels (SGD, lr cosine from ``--lr`` to 0), and after each epoch the networks of
proxy_fidelity-<data>.csv whose reference is done are scored as ``supernet_fidelity.py`` scores
them. Per network and epoch: ``supernet_finetune[-<data>].csv``; taus: ``supernet_finetune[-<data>].json``.
The fine-tuned weights go to ``<supernet>-ft-largest-e<epochs>/`` (not resumable: ~15 min an
epoch at 1 thread).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_fidelity import acc_column, candidates, stem_for  # noqa: E402

from ghostnas.data import load_data, prepare  # noqa: E402
from ghostnas.io import atomic_write_text, make_dir  # noqa: E402
from ghostnas.machine import describe  # noqa: E402
from ghostnas.search.evaluators import SupernetEvaluator  # noqa: E402
from ghostnas.supernet import load_supernet  # noqa: E402
from ghostnas.supernet.training import weights_digest  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--supernet", default="results/runs/supernets/fashion-mnist-uniform-e20-ghostnet")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--batch-size", type=int, default=96)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="results/benchmarks")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    ref = pd.read_csv(Path(args.out) / f"{stem_for('proxy_fidelity', args.data, cpu)}.csv")
    ref = ref[ref[acc_column("long", 0)].notna()].reset_index(drop=True)
    net, record = load_supernet(args.supernet)
    space, resolution = net.space, record["protocol"]["resolution"]
    data = load_data(args.data, seed=record["protocol"]["seed"], folder_size=resolution)
    mean, std = data.stats()
    x, y = prepare(data.x_train, resolution, mean, std), data.y_train
    folder = make_dir(f"{args.supernet.rstrip('/')}-ft-largest-e{args.epochs}", "fine-tuned supernet folder")
    archs = dict(candidates(100))
    largest = space.to_arch(space.largest_labels()).replace(dropout=0.0)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-5)
    steps = len(y) // args.batch_size
    rows, summary = [], {"data": args.data, "supernet": record["digest"], "epochs": args.epochs, "lr": args.lr,
                         "rule": "largest + 1 uniform, labels", "after": []}

    def score(epoch: int) -> None:
        torch.save(net.state_dict(), folder / "supernet.pt")
        (folder / "supernet.json").write_text(json.dumps({**record, "digest": weights_digest(net.state_dict())}))
        evaluator = SupernetEvaluator(folder, data, resolution)
        scored = [{"name": n, "epoch": epoch, **{k: v for k, v in evaluator.evaluate(archs[n]).items()
                                                 if k in ("val_acc", "val_loss")}} for n in ref.name]
        df = ref.merge(pd.DataFrame(scored), on="name")
        reference = df[acc_column("long", 0)]
        rows.extend(scored)
        summary["after"].append({
            "epoch": epoch, "networks": len(df),
            "supernet_tau": round(kendalltau(df.val_acc, reference).statistic, 3),
            "supernet_loss_tau": round(kendalltau(-df.val_loss, reference).statistic, 3),
            "supernet_vs_params_tau": round(kendalltau(df.val_acc, df.params).statistic, 3),
            "reference_vs_params_tau": round(kendalltau(reference, df.params).statistic, 3)})
        print(json.dumps(summary["after"][-1]), flush=True)

    score(0)
    for epoch in range(1, args.epochs + 1):
        net.train()
        t0, loss_sum = time.perf_counter(), 0.0
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1000 + epoch))
        for b in range(steps):
            step = (epoch - 1) * steps + b
            for group in opt.param_groups:
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / (steps * args.epochs)))
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            opt.zero_grad(set_to_none=True)
            drawn = space.to_arch(space.sample(random.Random(f"ft|{epoch}|{b}"))).replace(dropout=0.0)
            for arch in (largest, drawn):
                loss = F.cross_entropy(net(x[idx], arch), y[idx])
                loss.backward()
                loss_sum += loss.item()
            opt.step()
        print(json.dumps({"epoch": epoch, "loss": round(loss_sum / (2 * steps), 4),
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
        score(epoch)
    summary["machine"] = describe(threads=torch.get_num_threads())
    stem = Path(args.out) / stem_for("supernet_finetune", args.data, cpu)
    pd.DataFrame(rows).to_csv(stem.with_suffix(".csv"), index=False)
    atomic_write_text(stem.with_suffix(".json"), json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
