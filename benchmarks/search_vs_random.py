"""Guided search vs random search at equal trial counts.

    python benchmarks/search_vs_random.py [--trials 16] [--seeds 0 1 2] [--budget 100MFLOPs] [--shard 0/2]
                                          [--objectives single|pareto|both]

Single objective: TPE and regularized evolution vs random sampler (all with the median pruner),
best proxy accuracy within the budget, and (``--confirm K``) the best of each study's top K found
networks re-trained on two more seeds, which discounts a lucky seed. Pareto: NSGA-II vs random with --pareto, hypervolume of the (accuracy, MACs) front
with reference point (accuracy 0, MACs = budget), MACs normalised by the budget. The hand-designed
baseline is enqueued first in every study, so both arms start from it; the margin is what search
adds on top. Each study is an ordinary resumable run under results/runs/bench-*; figures go to
results/benchmarks/search_vs_random.{csv,md}. ``--shard K/N`` splits the studies between processes
(rows are merged under a file lock). Any ``--trials`` other than 16 is a separate experiment: its
studies are named ``bench-...-t<N>`` and its table ``search_vs_random-t<N>.{csv,md}`` (TPE's and
evolution's random start-up length depends on the trial count, so a longer study is not a
continuation of a shorter one).

With ``--supernet DIR`` every candidate is scored by the supernet's inherited weights instead of a
proxy training (single objective; TPE, evolution and random by default; no proxy confirmation), and
each study's best found network is then trained stand-alone (``--eval-protocol``: the
``reference`` protocol scored on the test split when the data has one, else ``long``; on
``--reference-seeds``), so the arms are compared by that, not by the supernet's own numbers. Its
studies end in ``-sn<digest>`` (another supernet is another experiment) and its table is
``search_vs_random-supernet[-DATA][-t<N>].{csv,md}``; stand-alone results are cached in
``search_vs_random-supernet*-evals.json`` (the same cache as reproduce_paper's). Each row records
the supernet's digest and the best found network's choices, written before its stand-alone run, so
a rerun after an interruption there trains only that network (the supernet's folder is still
needed: it names the digest). Rows are keyed by the digest: a seed run with another supernet (say,
retrained on another thread count, which changes its weights) is a row of its own, and the margins
pair the two arms of a seed only under the same supernet.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reproduce_paper import Evals, stand_alone_view  # noqa: E402

from ghostnas.defaults import DEFAULT_DATA  # noqa: E402
from ghostnas.io import atomic_write_text, merge_csv_row  # noqa: E402
from ghostnas.machine import describe  # noqa: E402
from ghostnas.results import load_study, pareto_front, trials_frame  # noqa: E402
from ghostnas.search import SearchConfig, parse_budget, run_search  # noqa: E402


# (pareto?, samplers): each guided sampler against random on the same seeds
ARMS = ((False, ("tpe", "evolution", "random")), (True, ("nsga2", "random")))


def hypervolume(df: pd.DataFrame, budget: float) -> float:
    front = pareto_front(df, "macs").sort_values("macs")
    hv, prev_acc = 0.0, 0.0
    for _, row in front.iterrows():  # along the front accuracy rises with MACs
        hv += (row.val_acc - prev_acc) * (1.0 - row.macs / budget)
        prev_acc = row.val_acc
    return hv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", default="100MFLOPs")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--shard", default="0/1", help="K/N: this process runs the selected studies K, K+N, ...")
    ap.add_argument("--objectives", choices=("single", "pareto", "both"), default="both")
    ap.add_argument("--samplers", nargs="+", help="run only these samplers' studies (the report "
                    "still covers every finished study)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--report-only", action="store_true", help="summarise the studies finished so far")
    ap.add_argument("--confirm", type=int, default=2, metavar="K",
                    help="single objective: re-train each study's K best found networks on 2 more seeds "
                         "(`search --confirm`) and also compare the best mean (default 2; 0 = off)")
    ap.add_argument("--supernet", metavar="DIR", help="score candidates by this supernet's inherited weights, "
                    "then each study's best found network stand-alone (see the module docstring)")
    ap.add_argument("--space", help="the space (default: with --supernet the one it was trained over, else ghostnet)")
    ap.add_argument("--eval-protocol", help="with --supernet: the stand-alone protocol (default: reference "
                    "when the data has a test split, else long)")
    ap.add_argument("--reference-seeds", type=int, nargs="+", default=[0], help="with --supernet (default 0)")
    args = ap.parse_args()
    # also for a stand-alone run resumed without its search (which would set it): thread counts change results
    torch.set_num_threads(args.threads)
    budget = parse_budget(args.budget).limit
    suffix = trials_tag = "" if args.trials == 16 else f"-t{args.trials}"
    arms = [(p, a) for p, a in ARMS if args.objectives == "both" or p == (args.objectives == "pareto")]
    standalone = None
    if args.supernet:
        standalone = StandAlone(args)
        arms = [(False, ARMS[0][1])]
        suffix = f"-supernet{standalone.data_tag}{trials_tag}"
    csv_path = Path(args.out) / f"search_vs_random{suffix}.csv"
    rows = read_rows(csv_path).to_dict("records") if csv_path.exists() else []
    key = ("objective", "sampler", "seed") + (("supernet",) if standalone else ())
    shard, shards = (int(v) for v in args.shard.split("/"))
    # shards split the selected studies only, so `--samplers` does not leave one shard idle
    studies = [(pareto, seed, sampler) for pareto, samplers in arms for seed in args.seeds
               for sampler in samplers if not args.samplers or sampler in args.samplers]
    for n, (pareto, seed, sampler) in enumerate(studies):
        if n % shards != shard:
            continue
        study = f"bench-{'pareto-' if pareto else ''}{sampler}-s{seed}{suffix}"
        if standalone:
            study = f"bench-{sampler}-s{seed}{trials_tag}-sn{standalone.digest}"
        objective = "pareto" if pareto else "single"
        old = next((r for r in rows if r["objective"] == objective and r["sampler"] == sampler
                    and r["seed"] == seed and (not standalone or str(r.get("supernet")) == standalone.digest)), None)
        confirm = 0 if pareto or standalone else args.confirm
        if args.report_only or (old and (not confirm or pd.notna(old.get("confirmed_best_found")))
                                and (not standalone or pd.notna(old.get("reference_acc")))):
            continue
        if standalone and old and pd.notna(old.get("best_found")):
            # the search finished and its best found network is in the table: only its stand-alone run is left
            row = {k: v for k, v in old.items() if pd.notna(v)}
            row.update(standalone.score(json.loads(row["best_found"]), study))
            print(row, flush=True)
            merge_csv_row(csv_path, row, key)
            continue
        t = time.perf_counter()
        cfg = SearchConfig(budgets=(args.budget,), data=args.data, trials=args.trials, seed=seed,
                           sampler=sampler, pareto=pareto, study=study, threads=args.threads,
                           progress=False, confirm=confirm, space=args.space, supernet=args.supernet)
        summary = run_search(cfg)  # a finished study only runs the missing confirmations
        df = trials_frame(load_study(Path(cfg.out) / study))
        done = df[df.state == "complete"]
        row = {"objective": objective, "sampler": sampler,
               "seed": seed, "best_acc": float(done.val_acc.max()),
               "best_found_acc": float(done[~done.baseline].val_acc.max())
               if (~done.baseline).any() else float("nan"),
               "hypervolume": hypervolume(df, budget), "complete": len(done),
               "pruned": int((df.state == "pruned").sum()),
               "seconds": old["seconds"] if old else round(time.perf_counter() - t, 1)}
        confirmed = summary.get("confirmed", {}).get("best_found")
        if confirmed:
            row["confirmed_best_found"] = confirmed["val_acc_mean"]
        if standalone and summary.get("best_found"):
            labels = summary["best_found"]["arch"]
            # written before the long stand-alone run, so an interruption there keeps the search's outcome
            row.update(supernet=standalone.digest, best_found=json.dumps(labels, sort_keys=True))
            merge_csv_row(csv_path, row, key)
            row.update(standalone.score(labels, study))
        print(row, flush=True)
        merge_csv_row(csv_path, row, key)  # other shards write it too
    df = read_rows(csv_path)
    m = describe(threads=args.threads)

    def mean_std(sub: pd.DataFrame, col: str) -> str:
        vals = sub[col].dropna().tolist() if col in sub else []
        if not vals:
            return "-"
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return f"{statistics.mean(vals):.4f} ± {sd:.4f}"

    lines = ["# Guided vs random search (benchmarks/search_vs_random.py)", "",
             f"Budget {args.budget}, {args.trials} evaluated trials per study, {len(df)} studies finished "
             f"(seeds {sorted(int(v) for v in df.seed.unique())}; the table covers every finished study "
             f"in `{csv_path.name}`, whichever run made it), data "
             f"`{args.data}`, "
             + (f"candidates scored by {standalone.describe_supernets(df, args.supernet)}, each best found "
                f"network then trained stand-alone: {standalone.describe(df)}" if standalone else "default proxy protocol")
             + f"; {m['cpu']}, {m['cores']} cores, {args.threads} torch "
             f"thread(s) per study, torch {m.get('torch')} CPU, {m['date']}.", "",
             "| objective | sampler | best score (mean ± sd) | best found, baseline excluded | "
             "confirmed best found (mean of 3 seeds) | hypervolume | best found stand-alone |",
             "|---|---|---|---|---|---|---|"]
    for (obj, sampler), sub in df.groupby(["objective", "sampler"], sort=False):
        lines.append(f"| {obj} | {sampler} | {mean_std(sub, 'best_acc')} | {mean_std(sub, 'best_found_acc')} | "
                     f"{mean_std(sub, 'confirmed_best_found')} | {mean_std(sub, 'hypervolume')} | "
                     f"{mean_std(sub, 'reference_acc')} |")
    lines.append("")


    paired_by = ["seed", "supernet"] if "supernet" in df else ["seed"]
    several_supernets = "supernet" in df and df.supernet.nunique() > 1

    def margin(objective: str, sampler: str, col: str) -> pd.Series:
        """guided - random per seed (and supernet), over the pairs both arms have finished."""
        sub = df[df.objective == objective].pivot_table(index=paired_by, columns="sampler", values=col)
        if sampler not in sub or "random" not in sub:
            return pd.Series(dtype=float)
        return (sub[sampler] - sub["random"]).dropna()

    def pair_label(index) -> str:
        seed, *supernet = index if isinstance(index, tuple) else (index,)
        return f"s{int(seed)}" + (f" (supernet {supernet[0]})" if several_supernets else "")

    for objective, sampler, name, col, scale, unit in (
            ("single", "tpe", "TPE", "best_found_acc", 100, " points"),
            ("single", "evolution", "evolution", "best_found_acc", 100, " points"),
            ("single", "tpe", "TPE", "confirmed_best_found", 100, " points"),
            ("single", "evolution", "evolution", "confirmed_best_found", 100, " points"),
            ("single", "tpe", "TPE", "reference_acc", 100, " points"),
            ("single", "evolution", "evolution", "reference_acc", 100, " points"),
            ("pareto", "nsga2", "NSGA-II", "hypervolume", 1, "")):
        if col not in df:
            continue
        diff = scale * margin(objective, sampler, col)
        if diff.empty:  # that objective or sampler was not run
            continue
        digits = 2 if scale == 100 else 4
        per_seed = ", ".join(f"{pair_label(index)} {v:+.{digits}f}" for index, v in diff.items())
        # paired t statistic: how far the mean margin stands from zero in units of its standard error
        t = (diff.mean() / (diff.std() / len(diff) ** 0.5)) if len(diff) > 1 and diff.std() > 0 else float("nan")
        lines.append(f"Margin, {objective} ({name} - random, {col.replace('_', ' ')}, paired over "
                     f"{len(diff)} seed(s)): {diff.mean():+.{digits}f}{unit}; per seed {per_seed}; ahead on "
                     f"{int((diff > 0).sum())}, level on {int((diff == 0).sum())}, behind on "
                     f"{int((diff < 0).sum())}; paired t {t:.2f}.")
    lines += ["", f"Per study: `{csv_path.name}`."]
    atomic_write_text(Path(args.out) / f"search_vs_random{suffix}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def read_rows(path: Path) -> pd.DataFrame:
    """The table so far; seeds lists and digests stay text (a lone "0" is not the number 0.0)."""
    return pd.read_csv(path, dtype={"reference_seeds": "string", "supernet": "string"})


class StandAlone:
    """With --supernet: the supernet's identity, and each study's best found network trained
    stand-alone on the reference seeds (results cached, so a rerun trains nothing twice)."""

    def __init__(self, args) -> None:
        from ghostnas.data import data_tag, load_data
        from ghostnas.space import load_space
        from ghostnas.supernet.elastic import read_supernet

        space, record = read_supernet(args.supernet)
        self.digest = record["digest"][:8]
        self.space = load_space(args.space) if args.space else space
        self.data, self.protocol = stand_alone_view(load_data(args.data), args.eval_protocol)
        self.seeds = args.reference_seeds
        self.data_tag = "" if args.data == DEFAULT_DATA else f"-{data_tag(args.data)}"
        self.evals = Evals(Path(args.out) / f"search_vs_random-supernet{self.data_tag}-evals.json", self.data)

    def score(self, labels: dict, study: str) -> dict:
        arch = self.space.to_arch(labels, name=f"found-{study}")
        accs = [self.evals.acc(arch, self.protocol, seed) for seed in self.seeds]
        return {"reference_acc": statistics.mean(accs), "reference_split": self.data.scored_on,
                "reference_seeds": " ".join(map(str, self.seeds)), "supernet": self.digest}

    def describe_supernets(self, df: pd.DataFrame, folder: str) -> str:
        """Which supernet scored which seeds (this run's folder names the one of its own digest)."""
        used = sorted(set(df["supernet"].dropna())) if "supernet" in df else [self.digest]
        if used == [self.digest]:
            return f"the supernet `{folder}` (digest {self.digest})"
        parts = [f"{d} (seeds {sorted(int(s) for s in df[df.supernet == d].seed.unique())}"
                 + (f", `{folder}`)" if d == self.digest else ")") for d in used]
        return ("the supernet " if len(used) == 1 else "the supernets ") + "; ".join(parts)

    def describe(self, df: pd.DataFrame) -> str:
        """The seeds the table's rows were scored on (a --report-only run's own may differ)."""
        used = sorted(set(df["reference_seeds"].dropna().astype(str))) if "reference_seeds" in df else []
        seeds = "; ".join(used) if used else " ".join(map(str, self.seeds))
        return f"`{self.protocol}` protocol, seed(s) {seeds}, scored on {self.data.scored_on}"


if __name__ == "__main__":
    main()
