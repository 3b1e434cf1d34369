"""Guided vs random search with the supernet evaluator, judged by stand-alone training.

    python benchmarks/supernet_search.py --supernet DIR [--candidates 100] [--seeds 0 1 2 3 4]
                                         [--budget 100MFLOPs] [--shard 0/2] [--threads 1]

For each seed, a TPE study and a random-sampler study of ``--candidates`` networks each score
candidates by inherited weights (`search --supernet`), under the same budget. Each study's best
found network (by its supernet score) is then trained stand-alone under the "long" protocol, and
guided and random are compared on that reference, not on the supernet's own numbers. Resumable
(ordinary studies under results/runs/bench-supernet-*; each long training merged into
results/benchmarks/supernet_search.csv as it finishes); ``--shard K/N`` splits the work.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pandas as pd
import torch

from ghostnas.data import DEFAULT_DATA, load_data
from ghostnas.io import atomic_write_text, merge_csv_row
from ghostnas.machine import describe
from ghostnas.results import ranked_arch
from ghostnas.search import SearchConfig, run_search
from ghostnas.train import get_protocol, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--supernet", required=True)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--budget", default="100MFLOPs")
    ap.add_argument("--space", default="ghostnet")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    csv_path = Path(args.out) / "supernet_search.csv"
    done = {(r["sampler"], r["seed"]) for r in pd.read_csv(csv_path).to_dict("records")} if csv_path.exists() else set()
    shard, shards = (int(v) for v in args.shard.split("/"))
    long = get_protocol("long")
    data = None
    jobs = [(seed, sampler) for seed in args.seeds for sampler in ("tpe", "random")]
    for n, (seed, sampler) in enumerate(jobs):
        if args.report_only or n % shards != shard or (sampler, seed) in done:
            continue
        study = f"bench-supernet-{sampler}-s{seed}-c{args.candidates}"
        cfg = SearchConfig(budgets=(args.budget,), space=args.space, data=args.data, trials=args.candidates, seed=seed,
                           sampler=sampler, study=study, threads=args.threads, progress=False,
                           supernet=args.supernet)
        summary = run_search(cfg)
        found = summary["best_found"]
        arch, _, _ = ranked_arch(Path(cfg.out) / study, 2 if summary["best"]["baseline"] else 1)
        data = data or load_data(args.data, seed=long.seed)
        reference = train(arch, data, long).val_acc
        row = {"sampler": sampler, "seed": seed, "candidates": args.candidates, "trial": found["trial"],
               "supernet_acc": found["val_acc"], "macs": found["macs"], "long_acc": reference}
        print(json.dumps(row), flush=True)
        merge_csv_row(csv_path, row, ("sampler", "seed"))
    if not csv_path.exists():
        raise SystemExit(f"{csv_path}: nothing measured yet")
    df = pd.read_csv(csv_path)
    both = df.pivot(index="seed", columns="sampler", values="long_acc").dropna()
    diff = (both.get("tpe", pd.Series(dtype=float)) - both.get("random", pd.Series(dtype=float))) * 100
    m = describe(threads=args.threads)
    summary = {"seeds": len(diff), "guided_minus_random_points": round(float(diff.mean()), 2) if len(diff) else None,
               "guided_ahead": int((diff > 0).sum()), "per_seed": {int(k): round(float(v), 2) for k, v in diff.items()},
               "candidates": args.candidates, "budget": args.budget, "data": args.data, "machine": m}
    atomic_write_text(Path(args.out) / "supernet_search.json", json.dumps(summary, indent=1) + "\n")
    lines = ["# Guided vs random with the supernet evaluator (benchmarks/supernet_search.py)", "",
             f"{args.candidates} candidates per study scored by inherited weights, budget {args.budget}, `{args.data}`; "
             "each study's best found network then trained stand-alone (protocol long, seed 0) and compared "
             f"on that. {m['cpu']}, {m['cores']} cores, {args.threads} thread(s), {m['date']}.", "",
             "| seed | TPE long acc | random long acc | TPE - random (points) |", "|---|---|---|---|"]
    lines += [f"| {int(s)} | {both.loc[s, 'tpe']:.4f} | {both.loc[s, 'random']:.4f} | {diff[s]:+.2f} |" for s in diff.index]
    if len(diff):
        sd = statistics.stdev(diff) if len(diff) > 1 else 0.0
        lines += ["", f"Mean {diff.mean():+.2f} points (sd {sd:.2f}), TPE ahead on {int((diff > 0).sum())} of {len(diff)} seeds."]
    atomic_write_text(Path(args.out) / "supernet_search.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
