"""How well does the default proxy rank networks? Kendall tau between the proxy's accuracy and a
10x longer training (protocol "long"), and each zero-cost scorer's tau against the same.

    python benchmarks/proxy_fidelity.py [--n-random 20] [--data mnist5k] [--proxy-seeds 2]
                                        [--long-seeds 2] [--device cuda]

Networks: the three paper GhostNets plus N random Archs of the default space with 40-300M MACs
(the range the paper's networks span). Each network is trained under the proxy with seeds
0..``--proxy-seeds``-1 (the proxy's own seed noise, and how fast averaging seeds helps) and under
the long protocol with seeds 0..``--long-seeds``-1: the reference is the mean of the long runs,
and their agreement with each other bounds the tau any ranker can reach against it. Each proxy
run also records SoTL, its sum of per-epoch training losses (a training-speed estimator, Ru et
al. 2021), to test whether another reading of the same short training ranks better.

Resumable: each training is merged into results/benchmarks/proxy_fidelity.csv as it finishes and
a rerun fills in only missing columns, so raising ``--proxy-seeds`` or ``--long-seeds`` trains
only the new seeds. Several processes can share the work (``--shard 0/2`` and ``--shard 1/2``,
each with ``--threads 1``: on 2 cores that trains more images per second than one process with 2
threads): each starts on its own shard's networks, then takes any run no live process has claimed,
so none sits idle while another has a queue; a killed worker's run is taken over from its last
epoch's checkpoint. Rows are merged under a file lock. On the 2-core CPU: about 8 minutes per
proxy seed and 65 per long seed (all 23 networks, two shards). ``--device cuda`` trains on a GPU into a
file of its own (``proxy_fidelity-cuda.csv``): a GPU run (mixed precision, other kernels) does not
reproduce the CPU run of the same seed, so the two are never mixed in one table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau

from ghostnas import count, load_arch
from ghostnas.data import DEFAULT_DATA, data_tag, load_data, prepare
from ghostnas.io import WorkUnit, atomic_write_text, merge_csv_row, run_units
from ghostnas.machine import describe
from ghostnas.space import load_space
from ghostnas.train import get_protocol, pick_device, train, train_checkpointed
from ghostnas.zero_cost import SCORERS, score


def candidates(n_random: int):
    for name in ("paper-0.5x", "paper-1.0x", "paper-1.3x"):
        yield name, load_arch(name)
    # V1 modules only: the list was drawn before the default space offered DFC, and its runs stay
    space = load_space("ghostnet").v1_only()
    seed, found = 0, 0
    while found < n_random:
        arch = space.sample_arch(seed)
        if 40e6 <= count(arch).macs <= 300e6:
            found += 1
            yield f"random-{seed}", arch
        seed += 1


def stem_for(kind: str, data: str, device: torch.device) -> str:
    """A benchmark's file stem: proxy_fidelity, proxy_fidelity-fashion-mnist, ...-cuda (a GPU's runs
    are never mixed with the CPU's in one file)."""
    stem = kind + ("" if data == DEFAULT_DATA else f"-{data_tag(data)}")
    return stem + ("" if device.type == "cpu" else f"-{device.type}")


BOOTSTRAP_DRAWS = 2000


def tau_interval(x: pd.Series, y: pd.Series, level: float = 0.9) -> tuple[float, float]:
    """Percentile bootstrap interval of Kendall's tau, resampling networks (seeded)."""
    rng = np.random.default_rng(0)
    xs, ys = x.to_numpy(), y.to_numpy()
    draws = [kendalltau(xs[i], ys[i]).statistic
             for i in (rng.integers(0, len(xs), len(xs)) for _ in range(BOOTSTRAP_DRAWS))]
    lo, hi = np.nanpercentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def partial_tau(x: pd.Series, y: pd.Series, z: pd.Series) -> float:
    """Kendall's partial tau of x and y given z: how well x ranks y beyond what z explains. With
    z = MACs, what a ranker tells apart among networks of equal cost, which is all a search under a
    MACs budget asks of it (the networks here spread over 40-230M MACs, and size alone ranks them)."""
    xy, xz, yz = (kendalltau(a, b).statistic for a, b in ((x, y), (x, z), (y, z)))
    return float((xy - xz * yz) / math.sqrt((1 - xz ** 2) * (1 - yz ** 2)))


def acc_column(kind: str, seed: int) -> str:
    """proxy/long, seed 0 -> proxy_acc / long_acc; seed k -> proxy_acc_sk (the first columns kept
    their names when more seeds were added)."""
    return f"{kind}_acc" if seed == 0 else f"{kind}_acc_s{seed}"


def sotl_column(proxy_column: str) -> str:
    """proxy_acc -> proxy_sotl, proxy_acc_s1 -> proxy_sotl_s1: where that run's negated sum of
    per-epoch training losses goes (higher = learnt faster, like accuracy)."""
    return proxy_column.replace("proxy_acc", "proxy_sotl")


def complete_seeds(df: pd.DataFrame, kind: str) -> int:
    """How many seeds 0, 1, ... of ``kind`` every network has."""
    k = 0
    while acc_column(kind, k) in df and df[acc_column(kind, k)].notna().all():
        k += 1
    return k


def seeds_label(n: int) -> str:
    return "seeds 0 and 1" if n == 2 else f"seeds 0-{n - 1}"


def mean_pair_tau(runs: list[pd.Series]) -> float:
    """Kendall tau between two runs of the same networks, averaged over every pair of runs."""
    return float(np.mean([kendalltau(a, b).statistic for a, b in itertools.combinations(runs, 2)]))


def tau_of_k_seed_means(runs: list[pd.Series], reference: pd.Series) -> dict[int, float]:
    """For k = 1..len(runs): the tau against ``reference`` of the mean of k proxy seeds, averaged
    over every choice of k seeds: what a search that trains each trial k times would get."""
    return {k: float(np.mean([kendalltau(sum(c), reference).statistic
                              for c in itertools.combinations(runs, k)]))
            for k in range(1, len(runs) + 1)}


def measure(args, csv_path: Path, data, long_data, proxy, long) -> None:
    """Train what the CSV lacks, merging each result as it finishes. Processes running this at
    once share the work by claims (``run_units``): each starts on its own shard's networks, then
    takes any other network's run that no live process holds."""
    mean, std = data.stats()
    xb = prepare(data.x_train[:64], proxy.resolution, mean, std)
    yb = data.y_train[:64]
    # seed-major: every network's seed k before any seed k+1, so a run stopped part-way still
    # leaves whole seeds to rank by
    columns = [(acc_column(kind, k), (proxy if kind == "proxy" else long).replace(seed=k))
               for k in range(max(args.proxy_seeds, args.long_seeds))
               for kind, n in (("proxy", args.proxy_seeds), ("long", args.long_seeds)) if k < n]
    networks = shard_first(list(candidates(args.n_random)), args.shard)

    def unit(name, arch, column, protocol) -> WorkUnit:
        return WorkUnit(
            f"{name} {column}", lambda: done(read_rows(csv_path).get(name, {}), column),
            # the row as it is now: another process may have added columns to it
            lambda: run_one(args, csv_path, read_rows(csv_path).get(name, {}), name, arch, column, protocol,
                            data, long_data, xb, yb))

    run_units([unit(name, arch, column, protocol) for column, protocol in columns for name, arch in networks],
              csv_path, wait=False)


def shard_first(items: list, shard: str) -> list:
    """``items`` with shard K/N's share (K, K+N, ...) first: the order a worker takes them in when
    workers share the work by claims (its own share, then whatever the others have not taken)."""
    k, n = (int(v) for v in shard.split("/"))
    return [x for i, x in enumerate(items) if i % n == k] + [x for i, x in enumerate(items) if i % n != k]


def read_rows(csv_path: Path) -> dict[str, dict]:
    done = pd.read_csv(csv_path) if csv_path.exists() else pd.DataFrame()
    return {r["name"]: r for r in done.to_dict("records")}


def done(row: dict, column: str) -> bool:
    # a proxy run also records its SoTL: a row missing it re-trains that proxy
    return not (pd.isna(row.get(column))
                or (column.startswith("proxy") and pd.isna(row.get(sotl_column(column)))))


def run_one(args, csv_path: Path, row: dict, name: str, arch, column: str, protocol, data, long_data,
            xb, yb) -> None:
    """One network's training for one column (and its zero-cost scores on its first), merged."""
    new = {"name": name}  # only this run's columns: other workers merge into the same row
    if "macs" not in row:
        cost = count(arch)
        new.update(params=cost.params, macs=cost.macs)
        for method in SCORERS:
            t = time.perf_counter()
            new[method] = score(arch, xb, yb, data.num_classes, method)
            new[f"{method}_s"] = round(time.perf_counter() - t, 3)
    if column.startswith("proxy"):
        r = train(arch, data, protocol, device=args.device)
    else:  # minutes long: checkpointed each epoch, so a stopped worker's run resumes mid-way
        r = train_checkpointed(arch, long_data, protocol, device=args.device)
    new.update({column: r.val_acc, column.replace("_acc", "_s"): round(r.seconds, 2),
                column.replace("_acc", "_split"): r.scored_on})
    if column.startswith("proxy"):
        new[sotl_column(column)] = round(-sum(h["train_loss"] for h in r.history), 5)
    if column == "proxy_acc":
        new["threads"] = torch.get_num_threads()
    merge_csv_row(csv_path, new, ("name",), update=True)
    print(json.dumps({"name": name, column: r.val_acc, "seconds": round(r.seconds, 1)}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-random", type=int, default=20)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--report-only", action="store_true", help="summarise the rows measured so far")
    ap.add_argument("--shard", default="0/1", help="K/N: this process takes networks K, K+N, ...")
    ap.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    ap.add_argument("--proxy-seeds", type=int, default=2, metavar="N",
                    help="proxy runs per network, seeds 0..N-1 (default 2; 0: long runs only, for now)")
    ap.add_argument("--proxy-protocol", default="proxy", help="the search's proxy (default proxy)")
    ap.add_argument("--long-protocol",
                    help="the reference (default: long; reference on data with an official test set, "
                    "which it is then trained on train + validation and scored on)")
    ap.add_argument("--long-seeds", type=int, default=2, metavar="N",
                    help="long runs per network, seeds 0..N-1; the reference is their mean (default 2)")
    ap.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: a GPU when present)")
    args = ap.parse_args()
    if args.proxy_seeds < 0 or args.long_seeds < 1:
        ap.error("--proxy-seeds must be at least 0 and --long-seeds at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    out = Path(args.out)
    stem = stem_for("proxy_fidelity", args.data, device)
    csv_path = out / f"{stem}.csv"
    data = load_data(args.data)
    # On data with an official test set the proxy sees the search's view (train, scored on
    # validation) and the reference trains on every training image and is scored on test.
    long_data = data.for_test() if data.x_test is not None else data
    proxy = get_protocol(args.proxy_protocol)
    long = get_protocol(args.long_protocol or ("reference" if data.x_test is not None else "long"))
    if not args.report_only:
        measure(args, csv_path, data, long_data, proxy, long)
    if not csv_path.exists():
        raise SystemExit(f"{csv_path}: nothing measured yet; run without --report-only")
    if complete_seeds(pd.read_csv(csv_path), "proxy") == 0:
        raise SystemExit(f"{csv_path}: long runs only so far; the report needs proxy runs (--proxy-seeds N)")
    # sorted: shards merge rows in the order they finish, and the bootstrap draws by position
    df = pd.read_csv(csv_path).sort_values("name", kind="stable", ignore_index=True)
    summary, lines = summarise(df, args, long_data, proxy, long, stem, device)
    atomic_write_text(out / f"{stem}.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(out / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


# Published accuracies, for the sanity check beside the paper networks' long runs: the benchmark
# table of the dataset's home page (github.com/zalandoresearch/fashion-mnist), as quoted in issue 17.
PUBLISHED = {"fashion-mnist": "small CNNs 92-93%, MobileNet ~95%, ResNet18 ~94.9%, the best entries ~96-97%"}


def finite(x: float | None, digits: int) -> float | None:
    return None if x is None or x != x else round(x, digits)  # NaN is null in the JSON


def summarise(df: pd.DataFrame, args, data, proxy, long, stem: str, device) -> tuple[dict, list[str]]:
    """The JSON summary and the Markdown report of the rows measured so far."""
    n_proxy, n_long = complete_seeds(df, "proxy"), complete_seeds(df, "long")
    proxies = [df[acc_column("proxy", k)] for k in range(n_proxy)]
    sotls = [df[sotl_column(acc_column("proxy", k))] for k in range(n_proxy)
             if sotl_column(acc_column("proxy", k)) in df]
    longs = [df[acc_column("long", k)] for k in range(n_long)]
    sotls = sotls if len(sotls) == n_proxy and all(s.notna().all() for s in sotls) else []

    def rankers(reference: pd.Series) -> dict[str, float]:
        taus = {("proxy" if k == 0 else f"proxy, seed {k}"): kendalltau(p, reference).statistic
                for k, p in enumerate(proxies)}
        if n_proxy > 1:
            taus["proxy, mean of seeds 0 and 1"] = kendalltau(proxies[0] + proxies[1], reference).statistic
        if n_proxy > 2:
            taus[f"proxy, mean of {seeds_label(n_proxy)}"] = kendalltau(sum(proxies), reference).statistic
        if sotls:
            taus["-SoTL (sum of the proxy's training losses)"] = kendalltau(sotls[0], reference).statistic
            if n_proxy > 1:
                taus[f"-SoTL, mean of {seeds_label(n_proxy)}"] = kendalltau(sum(sotls), reference).statistic
        for method in SCORERS:
            taus[method] = kendalltau(df[method], reference).statistic
        taus["macs"] = kendalltau(df.macs, reference).statistic
        taus["params"] = kendalltau(df.params, reference).statistic
        return taus

    taus = rankers(df.long_acc)
    taus_vs_mean: dict[str, float] = {}
    long_mean = sum(longs) / n_long if n_long else None
    if n_long > 1 and n_proxy:
        taus_vs_mean = rankers(long_mean)
        taus_vs_mean["long training, seed 0 alone"] = kendalltau(df.long_acc, long_mean).statistic
    noise: dict[str, float] = {}
    if n_proxy > 1:
        both = pd.concat(proxies, axis=1)
        noise.update(proxy_seed_tau=kendalltau(proxies[0], proxies[1]).statistic,
                     proxy_seed_sd=float(both.var(axis=1).mean() ** 0.5),  # pooled within-network
                     proxy_between_sd=float(proxies[0].std()))
        if n_proxy > 2:
            noise["proxy_seed_tau_all_pairs"] = mean_pair_tau(proxies)
        if sotls:
            noise["sotl_seed_tau"] = kendalltau(sotls[0], sotls[1]).statistic
    # one run's seed noise from networks trained long at least twice; it bounds the tau any ranker
    # can reach against the reference (Gaussian approximation). The RMS sd is at the mercy of one
    # diverged run, so a median-based sd is kept too, and with enough networks the reliability
    # comes from the runs' own rank agreement (Greiner: r = sin(pi tau / 2)) rather than an sd.
    pairs = df.dropna(subset=["long_acc_s1"]) if "long_acc_s1" in df else df.iloc[:0]
    if len(pairs) > 1:
        runs = pairs[[c for c in (acc_column("long", k) for k in range(max(n_long, 2))) if c in pairs]]
        diff = pairs.long_acc - pairs.long_acc_s1
        sd = float(runs.var(axis=1).mean() ** 0.5)
        noise.update(long_pairs=len(pairs), long_seed_sd=sd,
                     long_seed_sd_robust=float(diff.abs().median() / (0.6745 * 2 ** 0.5)))
        if len(pairs) >= 10:
            noise["long_seed_tau"] = kendalltau(pairs.long_acc, pairs.long_acc_s1).statistic
            agreement = noise["long_seed_tau"]
            if n_long > 2:
                agreement = noise["long_seed_tau_all_pairs"] = mean_pair_tau(longs)
            reliability = max(0.0, math.sin(math.pi * agreement / 2))
        else:
            reliability = max(0.0, 1 - sd ** 2 / float(df.long_acc.var()))
        noise["tau_ceiling"] = 2 / math.pi * math.asin(reliability ** 0.5)
        # the mean of k runs is more reliable (Spearman-Brown)
        k = max(n_long, 2)
        noise["tau_ceiling_vs_mean"] = 2 / math.pi * math.asin((k * reliability / (1 + (k - 1) * reliability)) ** 0.5)
    headline_reference = long_mean if taus_vs_mean else df.long_acc
    given_macs = {k: partial_tau(df[c], headline_reference, df.macs)
                  for k, c in (("proxy", "proxy_acc"), *((m, m) for m in SCORERS), ("params", "params"))}
    if "long_seed_tau" in noise:  # the reference against itself, beyond size: its ceiling here
        given_macs["long training, seed 0 vs seed 1"] = partial_tau(pairs.long_acc, pairs.long_acc_s1, pairs.macs)
    k_seed_taus = tau_of_k_seed_means(proxies, long_mean) if taus_vs_mean and n_proxy > 2 else {}
    # how precisely these networks pin the headline taus: a percentile bootstrap over networks
    intervals = {}
    if taus_vs_mean:
        intervals[f"proxy vs mean of {n_long} long runs"] = tau_interval(df.proxy_acc, long_mean)
    if n_proxy > 1:
        intervals["proxy seed 0 vs seed 1"] = tau_interval(proxies[0], proxies[1])
    if "long_seed_tau" in noise:
        intervals["long seed 0 vs seed 1"] = tau_interval(pairs.long_acc, pairs.long_acc_s1)
    headline = taus_vs_mean or taus  # against the mean of the long runs when there are several
    summary = {"data": args.data, "networks": len(df), "proxy_tau": round(headline["proxy"], 3),
               "proxy_tau_against": f"mean of {n_long} long runs" if taus_vs_mean else "one long run",
               "long_self_tau": finite(noise.get("long_seed_tau_all_pairs", noise.get("long_seed_tau")), 3),
               "long_seed_sd_points": finite(100 * noise["long_seed_sd"] if "long_seed_sd" in noise else None, 2),
               "machine": describe(threads=torch.get_num_threads()), "device": str(device),
               "n": len(df), "proxy_seeds": n_proxy, "long_seeds": n_long,
               "proxy": proxy.to_dict(), "long": long.to_dict(),
               "kendall_tau_vs_long": {k: round(v, 3) for k, v in taus.items()},
               "kendall_tau_vs_long_mean": {k: round(v, 3) for k, v in taus_vs_mean.items()},
               "kendall_tau_of_k_proxy_seeds_vs_long_mean": {k: round(v, 3) for k, v in k_seed_taus.items()},
               "kendall_partial_tau_given_macs": {k: round(v, 3) for k, v in given_macs.items()},
               "noise": {k: round(v, 4) for k, v in noise.items()},
               "tau_interval_90": {k: [round(lo, 3), round(hi, 3)] for k, (lo, hi) in intervals.items()},
               "proxy_seconds_median": float(df.proxy_s.median()),
               "proxy_seconds_max": float(df.proxy_s.max()),
               "zero_cost_seconds_max": {m: float(df[f"{m}_s"].max()) for m in SCORERS}}

    m = summary["machine"]
    target = 3 + args.n_random
    acc = float(df.long_acc.mean())
    lines = [
        "# Proxy fidelity (benchmarks/proxy_fidelity.py)", "",
        f"{len(df)} networks (3 paper GhostNets + {len(df) - 3} random Archs of the default space with "
        f"40-300M MACs{'' if len(df) >= target else f'; PARTIAL: {len(df)} of {target} measured, rerun to finish'}) "
        f"on `{args.data}`; {m['cpu']}, {m['cores']} cores, torch {m.get('torch')} on "
        f"{'the CPU' if device.type == 'cpu' else device}, {m['date']}.", "",
        f"- proxy: {proxy.epochs} epochs on {proxy.train_subset} training images at {proxy.resolution} px, "
        f"batch {proxy.batch_size}, SGD lr {proxy.lr} cosine; {seeds_label(n_proxy) if n_proxy > 1 else 'seed 0'}; median "
        f"{summary['proxy_seconds_median']:.1f} s, max {summary['proxy_seconds_max']:.1f} s per network "
        f"(torch threads per network: {sorted(set(df.threads.fillna(2).astype(int)))}; seconds are "
        "wall time while other benchmarks shared the cores, not the proxy's cost alone: see train_speed.md)",
        f"- long (reference, protocol {long.name!r}): {long.epochs} epochs on all {len(data.y_train):,} training "
        f"images ({long.epochs * len(data.y_train) / (proxy.epochs * (proxy.train_subset or len(data.y_train))):.0f}x "
        f"the images the proxy sees), scored on the {data.scored_on} split; "
        f"{seeds_label(n_long) if n_long > 1 else 'seed 0'}",
        f"- long-training accuracy spans {df.long_acc.min():.3f}-{df.long_acc.max():.3f} (sd {df.long_acc.std():.4f}); "
        f"one {data.scored_on} image is {1 / len(data.y_val):.4f}; the binomial standard error at the mean "
        f"({acc:.3f}) on {len(data.y_val)} images is {(acc * (1 - acc) / len(data.y_val)) ** 0.5:.4f}",
        "- the paper networks after the long training (mean of its runs): "
        + ", ".join(f"{n.removeprefix('paper-')} {v:.3f}" for n, v in zip(df.name, long_mean if long_mean is not None
                                                                     else df.long_acc) if n.startswith("paper-"))
        + (f"; published for this dataset: {PUBLISHED[args.data]} (at 28 px and long schedules; here 32 px, "
           f"{long.epochs} epochs: a sanity check, not a target)" if args.data in PUBLISHED else ""), "",
        "| ranker | Kendall tau vs long training |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in summary["kendall_tau_vs_long"].items()]
    if taus_vs_mean:
        lines += ["", f"Against the mean of {n_long} long runs ({seeds_label(n_long)}) of every network:", "",
                  f"| ranker | Kendall tau vs mean of {n_long} long runs |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in summary["kendall_tau_vs_long_mean"].items()]
    lines += ["", "Beyond size: Kendall's partial tau given MACs, against the "
              + (f"mean of {n_long} long runs" if taus_vs_mean else "long run")
              + " (what each ranker tells apart among networks of equal cost, all a search under a MACs "
              "budget asks of it" + (f"; the last row is the reference's seeds against each other, {len(pairs)} "
                                     "networks" if "long_seed_tau" in noise else "")
              + "):", "", "| ranker | partial tau given MACs |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in summary["kendall_partial_tau_given_macs"].items()]
    if k_seed_taus:
        lines += ["", f"Averaging proxy seeds (each value the mean over every choice of k of the {n_proxy} "
                  f"seeds; a trial that trains k times costs k proxy runs):", "",
                  "| proxy seeds averaged | Kendall tau vs mean of long runs |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in k_seed_taus.items()]
    if "proxy_seed_tau" in noise:
        lines += ["", f"Proxy seed noise ({len(df)} networks, {seeds_label(n_proxy)}): Kendall tau between seeds 0 "
                  f"and 1 {noise['proxy_seed_tau']:.3f}"
                  + (f" ({noise['proxy_seed_tau_all_pairs']:.3f} averaged over every pair of seeds)"
                     if "proxy_seed_tau_all_pairs" in noise else "")
                  + f"; one run's seed sd {noise['proxy_seed_sd']:.4f} (pooled) against a spread across networks "
                  f"of {noise['proxy_between_sd']:.4f}."]
        if "sotl_seed_tau" in noise:
            lines[-1] += f" SoTL agrees with itself across seeds 0 and 1 at tau {noise['sotl_seed_tau']:.3f}"
            lines[-1] += (": about as little as accuracy, so the noise is in the short training, not in which "
                          "of its numbers is read." if abs(noise["sotl_seed_tau"] - noise["proxy_seed_tau"]) < 0.1
                          else ".")
    if "long_seed_sd" in noise:
        agree = (f"seeds 0 and 1 rank the networks alike at only Kendall tau {noise['long_seed_tau']:.2f}"
                 + (f" ({noise['long_seed_tau_all_pairs']:.2f} averaged over every pair of seeds)"
                    if "long_seed_tau_all_pairs" in noise else "") + "; " if "long_seed_tau" in noise else "")
        worst = pairs.assign(gap=(pairs.long_acc - pairs.long_acc_s1).abs()).nlargest(1, "gap").iloc[0]
        lines += ["", f"Reference seed noise ({noise['long_pairs']} networks trained long at least twice): {agree}one "
                  f"run's seed sd {noise['long_seed_sd']:.4f} (pooled; {noise['long_seed_sd_robust']:.4f} from the "
                  f"median seed 0 - seed 1 difference; the largest such gap, {worst['name']}, {worst.long_acc:.3f} vs "
                  f"{worst.long_acc_s1:.3f}) against a spread across networks of {df.long_acc.std():.4f}. A ranker "
                  f"that knew each network's expected long accuracy exactly would reach about tau "
                  f"{noise['tau_ceiling']:.2f} against one long run and {noise['tau_ceiling_vs_mean']:.2f} against "
                  f"the mean of {max(n_long, 2)} (Gaussian approximation; reliability from "
                  + ("the runs' rank agreement)." if "long_seed_tau" in noise else "the sd).")]
    if intervals:
        lines += ["", f"How precisely {len(df)} networks pin these numbers (90% intervals, networks resampled "
                  f"{BOOTSTRAP_DRAWS:,} times): "
                  + "; ".join(f"{k} {lo:.2f} to {hi:.2f}" for k, (lo, hi) in intervals.items())
                  + ". A single tau from this many networks is good to about +/-0.25."]
    lines += ["", f"Per network: `{stem}.csv`."]
    return summary, lines


if __name__ == "__main__":
    main()
