"""How well does a weight-sharing supernet rank networks? Kendall tau between each network's
accuracy with inherited weights (BatchNorm recalibrated, no training) and the stand-alone long
reference of benchmarks/proxy_fidelity.py, on the same networks, next to the 2-epoch proxy's tau.

    python benchmarks/supernet_fidelity.py [--data mnist5k-clutter] [--recipe progressive] [--epochs N] [--v1-only]
                                           [--finetune-steps N [--finetune-lr LR]] [--threads 1]
                                           [--out results/benchmarks]

Resumable: the supernet trains into results/runs/supernets/<data>-<recipe>-e<epochs>/ (checkpointed
every epoch; a rerun continues it), and the evaluations are cheap (seconds each). The networks
and their long runs come from proxy_fidelity-<data>.csv (run that benchmark first): the three
paper networks and its random ones. Also reported: tau within the top half of the networks by the
reference (weight sharing is known to rank the best candidates worst), the seconds per candidate
and the supernet's training minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_fidelity import acc_column, candidates, complete_seeds, partial_tau, tau_interval  # noqa: E402

from ghostnas.data import DEFAULT_DATA, data_tag, load_data  # noqa: E402
from ghostnas.defaults import SUPERNET_RECIPE  # noqa: E402
from ghostnas.io import atomic_write_text  # noqa: E402
from ghostnas.machine import describe  # noqa: E402
from ghostnas.search.evaluators import FINETUNE_LR, SupernetEvaluator  # noqa: E402
from ghostnas.space import load_space  # noqa: E402
from ghostnas.supernet import get_supernet_protocol, train_supernet  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--recipe", default=SUPERNET_RECIPE)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--v1-only", action="store_true",
                    help="train the supernet without the DFC choice (the default space before it had one; "
                         "the mnist5k-clutter supernets were)")
    ap.add_argument("--finetune-steps", type=int, default=0, metavar="N",
                    help="fine-tune each inherited network N SGD steps before scoring (SupernetEvaluator's "
                         "experiment; its rows are their own files, -ft<N>)")
    ap.add_argument("--finetune-lr", type=float, default=FINETUNE_LR)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--nchw", action="store_true",
                    help="train the supernet in NCHW, not the CPU's channels_last (a check that the format, "
                         "which changes rounding, does not change the ranking); its own folder and files")
    ap.add_argument("--out", default="results/benchmarks")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tag = "" if args.data == DEFAULT_DATA else f"-{data_tag(args.data)}"
    fidelity = Path(args.out) / f"proxy_fidelity{tag}.csv"
    if not fidelity.exists():
        raise SystemExit(f"{fidelity}: run benchmarks/proxy_fidelity.py --data {args.data} first")
    ref = pd.read_csv(fidelity).sort_values("name", ignore_index=True)
    # the networks whose first long run is done (a reference still running ranks those so far)
    ref = ref[ref[acc_column("long", 0)].notna()].reset_index(drop=True) if acc_column("long", 0) in ref else ref[:0]
    n_long = complete_seeds(ref, "long")
    if n_long == 0:
        raise SystemExit(f"{fidelity}: no network has a long run yet")
    protocol = get_supernet_protocol(args.recipe, epochs=args.epochs)
    space = load_space("ghostnet").v1_only() if args.v1_only else load_space("ghostnet")
    data = load_data(args.data, seed=protocol.seed, folder_size=protocol.resolution)
    nchw = "-nchw" if args.nchw else ""
    folder = Path("results/runs/supernets") / f"{data_tag(args.data)}-{protocol.name}-e{protocol.epochs}-{space.name}{nchw}"
    t0 = time.perf_counter()
    record = train_supernet(space, data, protocol, folder, resume=True, progress=sys.stderr.isatty(),
                            channels_last=False if args.nchw else None,
                            on_epoch=lambda e, loss: print(json.dumps({"epoch": e, "loss": round(loss, 4)}), flush=True))
    train_minutes = sum(h["seconds"] for h in record["history"]) / 60
    print(f"supernet: {record['epochs_done']} epochs, {train_minutes:.1f} min (this run {(time.perf_counter() - t0) / 60:.1f})")

    evaluator = SupernetEvaluator(folder, data, protocol.resolution, finetune_steps=args.finetune_steps,
                                  finetune_lr=args.finetune_lr)
    archs = dict(candidates(100))  # names are fixed by seed: enough to cover any row of the CSV
    rows = []
    for name in ref.name:
        start = time.perf_counter()
        scored = evaluator.evaluate(archs[name])
        rows.append({"name": name, "supernet_acc": scored["val_acc"], "supernet_loss": scored["val_loss"],
                     "eval_s": round(time.perf_counter() - start, 2)})
    df = ref.merge(pd.DataFrame(rows), on="name")
    if "proxy_acc" not in df:  # the reference ran without proxy seeds: its proxy runs are proxy_recipes'
        df = df.merge(recipe_proxy(Path(args.out), tag), on="name", how="left")
    longs = [df[acc_column("long", k)] for k in range(n_long)]
    reference = sum(longs) / n_long
    top = reference >= reference.median()
    proxy = "proxy (one 2-epoch run, seed 0)"
    has_proxy = df.proxy_acc.notna()
    taus = {"supernet": kendalltau(df.supernet_acc, reference).statistic,
            "supernet, by validation loss": kendalltau(-df.supernet_loss, reference).statistic,
            proxy: kendalltau(df.proxy_acc[has_proxy], reference[has_proxy]).statistic,
            "params": kendalltau(df.params, reference).statistic,
            "macs": kendalltau(df.macs, reference).statistic}
    top_taus = {"supernet": kendalltau(df.supernet_acc[top], reference[top]).statistic,
                proxy: kendalltau(df.proxy_acc[top & has_proxy], reference[top & has_proxy]).statistic}
    given_macs = {"supernet": partial_tau(df.supernet_acc, reference, df.macs),
                  proxy: partial_tau(df.proxy_acc[has_proxy], reference[has_proxy], df.macs[has_proxy]),
                  "params": partial_tau(df.params, reference, df.macs)}
    lo, hi = tau_interval(df.supernet_acc, reference)
    finetune = {"steps": args.finetune_steps, "lr": args.finetune_lr} if args.finetune_steps else None
    finetune_tag = (f"-ft{args.finetune_steps}" + ("" if args.finetune_lr == FINETUNE_LR else f"-lr{args.finetune_lr:g}")
                    if args.finetune_steps else "")
    m = describe(threads=torch.get_num_threads())
    summary = {"data": args.data, "networks": len(df), "supernet_tau": round(taus["supernet"], 3),
               "proxy_tau": rounded(taus[proxy]), "proxy_networks": int(has_proxy.sum()),
               "supernet_loss_tau": round(taus["supernet, by validation loss"], 3),
               "params_tau": round(taus["params"], 3), "macs_tau": round(taus["macs"], 3),
               "supernet_tau_top_half": round(top_taus["supernet"], 3),
               "proxy_tau_top_half": rounded(top_taus[proxy]),
               "supernet_tau_interval_90": [round(lo, 3), round(hi, 3)],
               "supernet_tau_given_macs": round(given_macs["supernet"], 3),
               "proxy_tau_given_macs": rounded(given_macs[proxy]),
               "eval_seconds_per_candidate": round(float(df.eval_s.median()), 2),
               "supernet_train_minutes": round(train_minutes, 1), "long_runs_per_network": n_long,
               "recipe": record["protocol"], "supernet_digest": record["digest"],
               "memory_format": record.get("memory_format", "contiguous"),
               "finetune": finetune, "machine": m}
    out = Path(args.out)
    stem = f"supernet_fidelity{tag}-{protocol.name}-e{protocol.epochs}{finetune_tag}{nchw}"  # one file set per recipe
    columns = ["name", "macs", "params", "supernet_acc", "supernet_loss", "eval_s", "proxy_acc", *[c.name for c in longs]]
    df[columns].to_csv(out / f"{stem}.csv", index=False)
    atomic_write_text(out / f"{stem}.json", json.dumps(summary, indent=1) + "\n")
    lines = ["# Supernet fidelity (benchmarks/supernet_fidelity.py)", "",
             f"{len(df)} networks of proxy_fidelity{tag}.csv on `{args.data}`, reference: the mean of {n_long} long "
             f"run(s) per network. Supernet: recipe {protocol.name!r} ({protocol.rule}, {protocol.epochs} epochs, "
             f"{record['data']['train']} images, {train_minutes:.1f} min, "
             f"{record.get('memory_format', 'contiguous')}, digest {record['digest'][:8]}); each candidate extracted, "
             + (f"fine-tuned {args.finetune_steps} SGD steps (lr {args.finetune_lr} decayed to 0), "
                if args.finetune_steps else "") + "BatchNorm "
             f"recalibrated on 2,000 training images, scored on the {len(data.y_val)} validation images "
             f"({summary['eval_seconds_per_candidate']} s median). {m['cpu']}, {m['cores']} cores, "
             f"{torch.get_num_threads()} thread(s), {m['date']}.", "",
             "| ranker | Kendall tau vs long reference | within the top half | partial tau given MACs |",
             "|---|---|---|---|"]
    lines += [f"| {k} | {v:.3f} | " + (f"{top_taus[k]:.3f}" if k in top_taus else "") + " | "
              + (f"{given_macs[k]:.3f}" if k in given_macs else "") + " |" for k, v in taus.items()]
    lines += ["", f"Supernet tau 90% bootstrap interval (networks resampled): {lo:.2f} to {hi:.2f}. The proxy's "
              f"tau is on the {summary['proxy_networks']} networks that have a proxy run. Partial tau given MACs: "
              "what a ranker tells apart among networks of equal cost (all a search under a MACs budget asks "
              "of it); the reference's own seeds reach it only so far (proxy_fidelity's report).",
              "", f"Per network: `{stem}.csv`."]
    atomic_write_text(out / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    write_overview(out, tag, args.data)


def rounded(tau: float) -> float | None:
    return None if tau != tau else round(tau, 3)  # NaN (too few networks) is null in the JSON


def recipe_proxy(out: Path, tag: str) -> pd.DataFrame:
    """name -> proxy_acc: seed 0 of the "proxy" recipe in proxy_recipes{tag}*.csv (the CPU file
    first, then a GPU one), for references measured without proxy runs of their own."""
    files = sorted(out.glob(f"proxy_recipes{tag}*.csv"), key=lambda p: p.stem != f"proxy_recipes{tag}")
    if not files:
        return pd.DataFrame(columns=["name", "proxy_acc"])
    runs = pd.concat([pd.read_csv(p) for p in files])
    runs = runs[(runs.recipe == "proxy") & (runs.seed == 0)].drop_duplicates("name")
    return runs[["name", "acc"]].rename(columns={"acc": "proxy_acc"})


def finetuned(run: dict) -> str:
    ft = run.get("finetune")
    return f", each candidate fine-tuned {ft['steps']} steps at lr {ft['lr']:g}" if ft else ""


def timed_at(machine: dict) -> str:
    return f"{machine['threads']} thread(s), load {machine.get('load_1min', '?')}"


def write_overview(out: Path, tag: str, data: str) -> None:
    """supernet_fidelity{tag}.{md,json}: every recipe measured so far, one line each."""
    # the default data's glob also meets other datasets' files (supernet_fidelity-fashion-mnist-*)
    runs = [r | {"file": p.stem} for p in sorted(out.glob(f"supernet_fidelity{tag}-*.json"))
            if isinstance(r := json.loads(p.read_text()), dict) and r["data"] == data]
    atomic_write_text(out / f"supernet_fidelity{tag}.json", json.dumps(runs, indent=1) + "\n")
    lines = ["# Supernet fidelity, every recipe measured (benchmarks/supernet_fidelity.py)", "",
             "| recipe | epochs | train min | s per candidate | timed at | supernet tau | top-half tau | given MACs "
             "| proxy tau | networks | report |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['recipe']['name']}{finetuned(r)} | {r['recipe']['epochs']} | {r['supernet_train_minutes']} | "
              f"{r['eval_seconds_per_candidate']} | {timed_at(r['machine'])} | {r['supernet_tau']} | "
              f"{r['supernet_tau_top_half']} | {r.get('supernet_tau_given_macs', '')} | {r['proxy_tau']} | "
              f"{r['networks']} | `{r['file']}.md` |" for r in runs]
    lines += ["", "Times are as each run measured them: threads and the machine's load then (a run beside "
              "another job reads slower; the scoring's cost is the space's, the same for every recipe)."]
    atomic_write_text(out / f"supernet_fidelity{tag}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
