"""How well does the default proxy rank networks? Kendall tau between the proxy's accuracy and a
10x longer training (protocol "long"), and each zero-cost scorer's tau against the same.

    python benchmarks/proxy_fidelity.py [--n-random 20] [--data mnist5k]

Networks: the three paper GhostNets plus N random Archs of the default space with 40-300M MACs
(the range the paper's networks span). Each network is trained under the proxy with seeds 0 and 1
(the proxy's own seed noise) and under the long protocol; the ``--long-repeats`` cheapest networks
are trained long a second time (the reference's seed noise, which bounds any ranker's tau); with
``--long-repeats`` at least the number of networks, every ranker is also scored against the mean
of the two long runs, a sharper yardstick. Each
proxy run also records SoTL, its sum of per-epoch training losses (a training-speed estimator, Ru
et al. 2021), to test whether another reading of the same short training ranks better.
Resumable: each training is merged into results/benchmarks/proxy_fidelity.csv as it finishes and
a rerun fills in only missing columns. Several processes can share the work (``--shard 0/2`` and
``--shard 1/2``, each with ``--threads 1``: on 2 cores that trains more images per second than
one process with 2 threads); rows are merged under a file lock. About 2 hours on 2 cores, and
about 1.5 hours more for a second long run of every network.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import pandas as pd
import torch
from scipy.stats import kendalltau

from ghostnas import count, load_arch
from ghostnas.data import DEFAULT_DATA, load_data, prepare
from ghostnas.io import atomic_write_text, merge_csv_row
from ghostnas.machine import describe
from ghostnas.space import load_space
from ghostnas.train import get_protocol, train
from ghostnas.zero_cost import SCORERS, score


def candidates(n_random: int):
    for name in ("paper-0.5x", "paper-1.0x", "paper-1.3x"):
        yield name, load_arch(name)
    space = load_space("ghostnet")
    seed, found = 0, 0
    while found < n_random:
        arch = space.sample_arch(seed)
        if 40e6 <= count(arch).macs <= 300e6:
            found += 1
            yield f"random-{seed}", arch
        seed += 1


BOOTSTRAP_DRAWS = 2000


def tau_interval(x: pd.Series, y: pd.Series, level: float = 0.9) -> tuple[float, float]:
    """Percentile bootstrap interval of Kendall's tau, resampling networks (seeded)."""
    import numpy as np

    rng = np.random.default_rng(0)
    xs, ys = x.to_numpy(), y.to_numpy()
    draws = [kendalltau(xs[i], ys[i]).statistic
             for i in (rng.integers(0, len(xs), len(xs)) for _ in range(BOOTSTRAP_DRAWS))]
    lo, hi = np.nanpercentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def sotl_column(proxy_column: str) -> str:
    """proxy_acc -> proxy_sotl, proxy_acc_s1 -> proxy_sotl_s1: where that run's negated sum of
    per-epoch training losses goes (higher = learnt faster, like accuracy)."""
    return proxy_column.replace("proxy_acc", "proxy_sotl")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-random", type=int, default=20)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--report-only", action="store_true", help="summarise the rows measured so far")
    ap.add_argument("--shard", default="0/1", help="K/N: this process takes networks K, K+N, ...")
    ap.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    ap.add_argument("--long-repeats", type=int, default=4, metavar="N",
                    help="the N networks with the cheapest long training also get a seed-1 long run: "
                         "the reference's own seed noise (default 4)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shard, shards = (int(v) for v in args.shard.split("/"))
    out = Path(args.out)
    stem = "proxy_fidelity" + ("" if args.data == DEFAULT_DATA else f"-{args.data.replace(':', '_')}")
    csv_path = out / f"{stem}.csv"
    done = pd.read_csv(csv_path) if csv_path.exists() else pd.DataFrame()
    rows = {r["name"]: r for r in done.to_dict("records")}
    data = load_data(args.data)
    proxy, long = get_protocol("proxy"), get_protocol("long")
    mean, std = data.stats()
    xb = prepare(data.x_train[:64], proxy.resolution, mean, std)
    yb = data.y_train[:64]
    target = 3 + args.n_random
    cheapest = set(done.nsmallest(args.long_repeats, "long_s").name) if "long_s" in done else set()
    # what each network needs (column -> protocol); a resumed run fills in only what is missing
    needs = {"proxy_acc": proxy, "proxy_acc_s1": proxy.replace(seed=1), "long_acc": long}
    # a proxy run also records its sum of training losses (SoTL, a training-speed estimator): a row
    # missing it re-trains that proxy
    for i, (name, arch) in enumerate([] if args.report_only else candidates(args.n_random)):
        row = dict(rows.get(name, {}))
        todo = {c: p for c, p in needs.items()
                if pd.isna(row.get(c)) or (c.startswith("proxy") and pd.isna(row.get(sotl_column(c))))}
        if name in cheapest and pd.isna(row.get("long_acc_s1")):
            todo["long_acc_s1"] = long.replace(seed=1)
        if i % shards != shard or not todo:
            continue
        if "macs" not in row:
            cost = count(arch)
            row.update(name=name, params=cost.params, macs=cost.macs)
            for method in SCORERS:
                t = time.perf_counter()
                row[method] = score(arch, xb, yb, data.num_classes, method)
                row[f"{method}_s"] = round(time.perf_counter() - t, 3)
        for column, protocol in todo.items():
            r = train(arch, data, protocol)
            row.update({column: r.val_acc, column.replace("_acc", "_s"): round(r.seconds, 2)})
            if column.startswith("proxy"):
                row[sotl_column(column)] = round(-sum(h["train_loss"] for h in r.history), 5)
            if column == "proxy_acc":
                row["threads"] = torch.get_num_threads()
            merge_csv_row(csv_path, row, ("name",))  # after each training: shards share the file
        print(json.dumps(row), flush=True)

    df = pd.read_csv(csv_path) if csv_path.exists() else pd.DataFrame(rows)
    taus = {"proxy": kendalltau(df.proxy_acc, df.long_acc).statistic}
    both = df.dropna(subset=["proxy_acc_s1"]) if "proxy_acc_s1" in df else df.iloc[:0]
    noise: dict[str, float] = {}
    if len(both) > 2:
        taus["proxy, seed 1"] = kendalltau(both.proxy_acc_s1, both.long_acc).statistic
        taus["proxy, mean of seeds 0 and 1"] = kendalltau(both.proxy_acc + both.proxy_acc_s1,
                                                          both.long_acc).statistic
        if "proxy_sotl_s1" in both and both.proxy_sotl.notna().all() and both.proxy_sotl_s1.notna().all():
            taus["-SoTL (sum of the proxy's training losses)"] = kendalltau(both.proxy_sotl, both.long_acc).statistic
            taus["-SoTL, seed 1"] = kendalltau(both.proxy_sotl_s1, both.long_acc).statistic
            taus["-SoTL, mean of seeds 0 and 1"] = kendalltau(both.proxy_sotl + both.proxy_sotl_s1,
                                                              both.long_acc).statistic
            noise["sotl_seed_tau"] = kendalltau(both.proxy_sotl, both.proxy_sotl_s1).statistic
        noise.update(proxy_seed_tau=kendalltau(both.proxy_acc, both.proxy_acc_s1).statistic,
                     proxy_seed_sd=float((both.proxy_acc - both.proxy_acc_s1).std() / 2 ** 0.5),
                     proxy_between_sd=float(both.proxy_acc.std()))
    longs = df.dropna(subset=["long_acc_s1"]) if "long_acc_s1" in df else df.iloc[:0]
    if len(longs) > 1:
        # one run's seed noise from pairs of runs; it bounds the tau any ranker can reach against
        # the reference (Gaussian approximation). The RMS sd is at the mercy of one diverged run, so
        # the median-based sd is kept too, and with enough pairs the reliability comes from the two
        # runs' own rank agreement (Greiner: r = sin(pi tau / 2)) rather than from an sd.
        diff = longs.long_acc - longs.long_acc_s1
        sd = float((diff ** 2).mean() ** 0.5 / 2 ** 0.5)
        robust_sd = float(diff.abs().median() / (0.6745 * 2 ** 0.5))
        noise.update(long_pairs=len(longs), long_seed_sd=sd, long_seed_sd_robust=robust_sd)
        if len(longs) >= 10:
            noise["long_seed_tau"] = kendalltau(longs.long_acc, longs.long_acc_s1).statistic
            reliability = max(0.0, math.sin(math.pi * noise["long_seed_tau"] / 2))
        else:
            reliability = max(0.0, 1 - sd ** 2 / float(df.long_acc.var()))
        noise["tau_ceiling"] = 2 / math.pi * math.asin(reliability ** 0.5)
        # the mean of two runs is more reliable (Spearman-Brown)
        noise["tau_ceiling_vs_mean"] = 2 / math.pi * math.asin((2 * reliability / (1 + reliability)) ** 0.5)
    for method in SCORERS:
        taus[method] = kendalltau(df[method], df.long_acc).statistic
    taus["macs"] = kendalltau(df.macs, df.long_acc).statistic
    # every network trained long twice: the same rankers against the 2-run mean, a sharper yardstick
    taus_vs_mean: dict[str, float] = {}
    if len(longs) == len(df) and len(both) == len(df):
        long_mean = (df.long_acc + df.long_acc_s1) / 2
        for k, column in (("proxy", df.proxy_acc), ("proxy, seed 1", df.proxy_acc_s1),
                          ("proxy, mean of seeds 0 and 1", df.proxy_acc + df.proxy_acc_s1),
                          ("-SoTL, mean of seeds 0 and 1", df.proxy_sotl + df.proxy_sotl_s1),
                          *((m, df[m]) for m in SCORERS), ("macs", df.macs),
                          ("long training, seed 0 alone", df.long_acc)):
            taus_vs_mean[k] = kendalltau(column, long_mean).statistic
    # how precisely these networks pin the headline taus: a percentile bootstrap over networks
    intervals = {}
    if taus_vs_mean:
        intervals["proxy vs mean of 2 long runs"] = tau_interval(df.proxy_acc, long_mean)
    if len(both) >= 5:
        intervals["proxy seed 0 vs seed 1"] = tau_interval(both.proxy_acc, both.proxy_acc_s1)
    if "long_seed_tau" in noise:
        intervals["long seed 0 vs seed 1"] = tau_interval(longs.long_acc, longs.long_acc_s1)
    summary = {"machine": describe(threads=torch.get_num_threads()), "data": args.data,
               "n": len(df), "proxy": proxy.to_dict(), "long": long.to_dict(),
               "kendall_tau_vs_long": {k: round(v, 3) for k, v in taus.items()},
               "kendall_tau_vs_long_mean": {k: round(v, 3) for k, v in taus_vs_mean.items()},
               "noise": {k: round(v, 4) for k, v in noise.items()},
               "tau_interval_90": {k: [round(lo, 3), round(hi, 3)] for k, (lo, hi) in intervals.items()},
               "proxy_seconds_median": float(df.proxy_s.median()),
               "proxy_seconds_max": float(df.proxy_s.max()),
               "zero_cost_seconds_max": {m: float(df[f"{m}_s"].max()) for m in SCORERS}}
    atomic_write_text(out / f"{stem}.json", json.dumps(summary, indent=1) + "\n")
    m = summary["machine"]
    acc = float(df.long_acc.mean())
    lines = [
        "# Proxy fidelity (benchmarks/proxy_fidelity.py)", "",
        f"{len(df)} networks (3 paper GhostNets + {len(df) - 3} random Archs of the default space with "
        f"40-300M MACs{'' if len(df) >= target else f'; PARTIAL: {len(df)} of {target} measured, rerun to finish'}) on `{args.data}`; {m['cpu']}, {m['cores']} cores, "
        f"torch {m.get('torch')} CPU, {m['date']}.", "",
        f"- proxy: {proxy.epochs} epochs on {proxy.train_subset} training images at {proxy.resolution} px, "
        f"batch {proxy.batch_size}, SGD lr {proxy.lr} cosine, seed {proxy.seed}; median "
        f"{summary['proxy_seconds_median']:.1f} s, max {summary['proxy_seconds_max']:.1f} s per network "
        f"(torch threads per network: {sorted(set(df.threads.fillna(2).astype(int)))}; seconds are "
        "wall time while other benchmarks shared the cores, not the proxy's cost alone: see train_speed.md)",
        f"- long (reference): {long.epochs} epochs on all training images (10x the images seen)",
        f"- long-training accuracy spans {df.long_acc.min():.3f}-{df.long_acc.max():.3f} (sd {df.long_acc.std():.4f}); "
        f"one validation image is {1 / len(data.y_val):.3f}; the binomial standard error at the mean "
        f"({acc:.3f}) on {len(data.y_val)} images is {(acc * (1 - acc) / len(data.y_val)) ** 0.5:.4f}", "",
        "| ranker | Kendall tau vs long training |", "|---|---|"]
    for k, v in summary["kendall_tau_vs_long"].items():
        lines.append(f"| {k} | {v:.3f} |")
    if taus_vs_mean:
        lines += ["", "Against the mean of two long runs (seeds 0 and 1) of every network:", "",
                  "| ranker | Kendall tau vs mean of 2 long runs |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in summary["kendall_tau_vs_long_mean"].items()]
    if "proxy_seed_tau" in noise:
        lines += ["", f"Proxy seed noise ({len(both)} networks, seeds 0 and 1): Kendall tau between the two "
                  f"seeds {noise['proxy_seed_tau']:.3f}; one run's seed sd {noise['proxy_seed_sd']:.4f} against "
                  f"a spread across networks of {noise['proxy_between_sd']:.4f}."]
        if "sotl_seed_tau" in noise:
            lines[-1] += f" SoTL agrees with itself across the two seeds at tau {noise['sotl_seed_tau']:.3f}"
            lines[-1] += (": about as little as accuracy, so the noise is in the short training, not in which "
                          "of its numbers is read." if abs(noise["sotl_seed_tau"] - noise["proxy_seed_tau"]) < 0.1
                          else ".")
    if "long_seed_sd" in noise:
        agree = (f"the two long runs rank the networks alike at only Kendall tau {noise['long_seed_tau']:.2f}; "
                 if "long_seed_tau" in noise else "")
        worst = longs.assign(gap=(longs.long_acc - longs.long_acc_s1).abs()).nlargest(1, "gap").iloc[0]
        lines += ["", f"Reference seed noise ({noise['long_pairs']} networks trained long twice): {agree}one "
                  f"run's seed sd {noise['long_seed_sd']:.4f} (RMS; {noise['long_seed_sd_robust']:.4f} from the "
                  f"median difference; the largest gap, {worst['name']}, {worst.long_acc:.3f} vs "
                  f"{worst.long_acc_s1:.3f}) against a spread across networks of {df.long_acc.std():.4f}. A ranker "
                  f"that knew each network's expected long accuracy exactly would reach about tau "
                  f"{noise['tau_ceiling']:.2f} against one long run and {noise['tau_ceiling_vs_mean']:.2f} against "
                  "the mean of two (Gaussian approximation; reliability from "
                  + ("the runs' rank agreement)." if "long_seed_tau" in noise else "the sd).")]
    if intervals:
        lines += ["", f"How precisely {len(df)} networks pin these numbers (90% intervals, networks resampled "
                  f"{BOOTSTRAP_DRAWS:,} times): "
                  + "; ".join(f"{k} {lo:.2f} to {hi:.2f}" for k, (lo, hi) in intervals.items())
                  + ". A single tau from this many networks is good to about +/-0.25."]
    lines += ["", f"Per network: `{stem}.csv`."]
    atomic_write_text(out / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
