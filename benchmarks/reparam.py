"""Re-parameterisable training (GhostNetV3's branches, `ghostnas train --reparam N`) against plain
training of the same network, same protocol, same seeds: accuracy, training time, and the merged
network's agreement with the branched one. Resumable (one CSV row per finished run).

    python benchmarks/reparam.py [--data mnist5k] [--protocol long] [--arch paper-0.5x] \
        [--branches 3] [--seeds 0 1 2] [--threads 1] [--eval val|test]

Writes results/benchmarks/reparam-DATA.{csv,md,json}. Both arms run in the same process and
session, so the time ratio is like with like (machine, threads and backend are recorded).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

import torch

from ghostnas.data import load_data
from ghostnas.io import atomic_write_text, merge_csv_row
from ghostnas.machine import describe
from ghostnas.train import get_protocol, train

FIELDS = ("arch", "branches", "seed")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="mnist5k")
    ap.add_argument("--protocol", default="long")
    ap.add_argument("--arch", default="paper-0.5x")
    ap.add_argument("--branches", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval", choices=("val", "test"), default="val")
    ap.add_argument("--out", default="results/benchmarks")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    stem = Path(args.out) / f"reparam-{args.data.split(':')[0]}"
    csv_path = stem.with_suffix(".csv")
    done = {}
    if csv_path.exists():
        with open(csv_path, newline="") as fh:
            done = {(r["arch"], int(r["branches"]), int(r["seed"])): r for r in csv.DictReader(fh)}
    data = load_data(args.data)
    if args.eval == "test":
        data = data.for_test()
    rows = list(done.values())
    for seed in args.seeds:
        for branches in (0, args.branches):  # interleaved: drift over the run hits both arms alike
            if (args.arch, branches, seed) in done:
                continue
            p = get_protocol(args.protocol, seed=seed, reparam=branches)
            result = train(args.arch, data, p, keep_model=True)
            row = {"arch": args.arch, "branches": branches, "seed": seed, "acc": result.val_acc,
                   "merged_acc": merged_accuracy(result.model, data, p), "seconds": round(result.seconds, 1),
                   "protocol": p.name, "scored_on": result.scored_on, "data": args.data}
            rows = merge_csv_row(csv_path, row, FIELDS)
            print(row, flush=True)
    report(rows, args, stem)


def merged_accuracy(model, data, p) -> float:
    """The saved (merged, plain) network scored on the images the trainer scored the branched one
    on (its seeded validation subset): the two scores must be equal."""
    from ghostnas.data import prepare
    from ghostnas.train import _subset, evaluate

    mean, std = data.stats()
    va = _subset(len(data.y_val), p.val_subset, data.y_val, p.seed + 1)
    acc, _ = evaluate(model, prepare(data.x_val[va], p.resolution, mean, std), data.y_val[va])
    return acc


def report(rows: list[dict], args, stem: Path) -> None:
    arms = {}
    for r in rows:
        if r["arch"] == args.arch:
            arms.setdefault(int(r["branches"]), {})[int(r["seed"])] = r
    plain, rep = arms.get(0, {}), arms.get(args.branches, {})
    seeds = sorted(set(plain) & set(rep))
    if not seeds:
        return
    diffs = [100 * (float(rep[s]["acc"]) - float(plain[s]["acc"])) for s in seeds]
    ratio = statistics.median(float(rep[s]["seconds"]) / float(plain[s]["seconds"]) for s in seeds)
    summary = {"data": args.data, "arch": args.arch, "protocol": args.protocol, "branches": args.branches,
               "seeds": seeds, "plain_acc_mean": statistics.mean(float(plain[s]["acc"]) for s in seeds),
               "reparam_acc_mean": statistics.mean(float(rep[s]["acc"]) for s in seeds),
               "lead_points": round(statistics.mean(diffs), 2),
               "lead_se_points": round(statistics.stdev(diffs) / len(diffs) ** 0.5, 2) if len(diffs) > 1 else None,
               "time_ratio_median": round(ratio, 2),
               "merged_equals_branched": all(abs(float(rep[s]["acc"]) - float(rep[s]["merged_acc"])) < 1e-9
                                             for s in seeds),
               "scored_on": rep[seeds[0]]["scored_on"], "machine": describe(threads=args.threads)}
    lines = [f"# Re-parameterisable training vs plain ({args.arch}, {args.data}, protocol {args.protocol})", "",
             f"benchmarks/reparam.py; {summary['machine']['cpu']}, {args.threads} thread(s), CPU torch "
             f"{torch.__version__}; scored on {summary['scored_on']}; {args.branches} branches per site.", "",
             "| seed | plain | reparam | lead (points) | plain s | reparam s |", "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {float(plain[s]['acc']):.4f} | {float(rep[s]['acc']):.4f} | {d:+.2f} | "
              f"{plain[s]['seconds']} | {rep[s]['seconds']} |" for s, d in zip(seeds, diffs)]
    se = summary["lead_se_points"]
    lines += ["", f"Mean lead {summary['lead_points']:+.2f} points" + (f" (paired SE {se:.2f})" if se is not None else "")
              + f" over {len(seeds)} seed(s); training time {summary['time_ratio_median']:.2f}x plain (median). "
              f"Merged network scores equal to the branched one's: {summary['merged_equals_branched']}."]
    atomic_write_text(stem.with_suffix(".json"), json.dumps(summary, indent=1) + "\n")
    atomic_write_text(stem.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
