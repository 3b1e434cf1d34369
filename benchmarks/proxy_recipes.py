"""Which proxy recipe ranks networks best on a dataset, at the same cost? Candidate recipes (epochs,
distinct training images, validation images) trained on the networks of proxy_fidelity.py, each
ranked by Kendall tau against that benchmark's reference (the mean of its long runs).

    python benchmarks/proxy_recipes.py --data fashion-mnist [--seeds 2] [--device cuda]
                                       [--shard K/N] [--threads T] [--only NAME,...] [--report-only]

Rows are long-format (network, recipe, seed) and merged as each training finishes, so the run
resumes, and processes running it at once share the work (claims, as in proxy_fidelity.py). The
reference is read from ``proxy_fidelity-<data>[-<device>].csv`` in the same folder
(``--reference`` names another). A recipe's cost is the CPU's: time it here with
``--only paper-1.0x,paper-1.3x --threads 2`` (the costliest networks the search meets often),
which lands in the CPU file beside the GPU one.

``--family reference`` trains variants of the long reference instead (``REFERENCE_RECIPES``,
into ``reference_recipes-*.csv``, no report): each row keeps its per-epoch curve, to see where
a run that ends points below its other seeds went wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import torch
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_fidelity import acc_column, candidates, shard_first, stem_for, tau_interval  # noqa: E402

from ghostnas.data import DEFAULT_DATA, load_data  # noqa: E402
from ghostnas.io import WorkUnit, atomic_write_text, merge_csv_row, run_units  # noqa: E402
from ghostnas.machine import describe  # noqa: E402
from ghostnas.train import get_protocol, pick_device, train  # noqa: E402

# Changes to the "proxy" protocol. Each costs about as many image-passes as today's proxy (2
# epochs x 2,000 images) or up to 1.5x that, and scores on a fixed share of the validation split:
# scoring all 10,000 validation images costs ~10 s for paper-1.0x on one CPU thread.
RECIPES: dict[str, dict] = {
    "proxy": {},
    "e2-n2000-v2000": dict(val_subset=2000),
    "e1-n4000-v2000": dict(epochs=1, train_subset=4000, val_subset=2000),
    "e1-n6000-v2000": dict(epochs=1, train_subset=6000, val_subset=2000),
    "e2-n3000-v2000": dict(epochs=2, train_subset=3000, val_subset=2000),
    "e1-n6000-v5000": dict(epochs=1, train_subset=6000, val_subset=5000),
    # Fashion-MNIST's reference trains at lr 0.1 because 0.2 stalled some runs; a 2-epoch run at
    # 0.2 may stall the same networks. And more, smaller steps over the same images.
    "lr0.1": dict(lr=0.1),
    "b32-lr0.05": dict(batch_size=32, lr=0.05),
    # Once a training step got 1.6x faster (train_speed.md), about 3x the proxy's 4,000
    # image-passes looked affordable: does more training rank better, and does it matter how it is
    # spent (more epochs, more distinct images)? Measured, they take 20-30 s (paper-1.0x/1.3x, 2
    # threads), at or past the 20 s budget; the last spends 7.5x: the trend, not a candidate.
    "e2-n6000-v5000": dict(train_subset=6000, val_subset=5000),
    "e3-n4000-v5000": dict(epochs=3, train_subset=4000, val_subset=5000),
    "e1-n12000-v5000": dict(epochs=1, train_subset=12000, val_subset=5000),
    "e2-n15000-v5000": dict(train_subset=15000, val_subset=5000),
}
# Changes to the "reference" protocol (the yardstick itself, trained on every training image and
# scored on test; ``--family reference``): its seed noise caps every tau measured against it.
REFERENCE_RECIPES: dict[str, dict] = {
    "reference": {},  # lr 0.1 since 2026-11-29
    "lr0.2": dict(lr=0.2),  # the reference before, whose runs sometimes stalled
    "warmup1": dict(warmup_epochs=1.0),
}
FAMILIES = {"proxy": RECIPES, "reference": REFERENCE_RECIPES}
TIMED = ("paper-1.0x", "paper-1.3x")  # a recipe's CPU cost is read from these networks' runs


def measure(args, csv_path: Path, data, device) -> None:
    recipes = FAMILIES[args.family]
    if args.recipes:
        unknown = set(args.recipes.split(",")) - set(recipes)
        if unknown:
            raise SystemExit(f"--recipes: unknown {sorted(unknown)}; {args.family} recipes: {sorted(recipes)}")
        recipes = {k: v for k, v in recipes.items() if k in args.recipes.split(",")}
    only = set(args.only.split(",")) if args.only else None
    networks = shard_first([(n, a) for n, a in candidates(args.n_random) if only is None or n in only], args.shard)

    def done() -> set:
        rows = pd.read_csv(csv_path) if csv_path.exists() else pd.DataFrame(columns=["name", "recipe", "seed"])
        return set(zip(rows.name, rows.recipe, rows.seed.astype(int)))

    def unit(name, arch, recipe, seed) -> WorkUnit:
        protocol = get_protocol(args.family, **recipes[recipe]).replace(seed=seed)

        def run() -> None:
            r = train(arch, data, protocol, device=str(device))
            row = {"name": name, "recipe": recipe, "seed": seed, "acc": r.val_acc,
                   "seconds": round(r.seconds, 2), "threads": torch.get_num_threads(), "device": r.device,
                   "split": r.scored_on, "curve": " ".join(f"{h['val_acc']:.4f}" for h in r.history)}
            merge_csv_row(csv_path, row, ("name", "recipe", "seed"))
            print(json.dumps(row), flush=True)

        return WorkUnit(f"{name} {recipe} {seed}", lambda: (name, recipe, seed) in done(), run)

    # seed-major (a stopped run leaves whole seeds); shared with other workers by claims
    run_units([unit(name, arch, recipe, seed)
               for seed in range(args.seeds) for recipe in recipes for name, arch in networks], csv_path, wait=False)


def cell(tau: float | None) -> str:
    """A tau for the table; "-" where there is none (one seed: no mean of seeds, no seed vs seed)."""
    return "-" if tau is None or tau != tau else f"{tau:.3f}"


def long_runs(paths: list[Path]) -> pd.DataFrame:
    """Every long run of each network in the proxy_fidelity CSVs given (one column per file and
    seed): a GPU run and a CPU run of one seed are two draws of the same training, so the
    reference may pool them."""
    columns = []
    for path in paths:
        df = pd.read_csv(path).set_index("name")
        k = 0
        while acc_column("long", k) in df:
            columns.append(df[acc_column("long", k)].rename(f"{path.stem}:{k}"))
            k += 1
    return pd.concat(columns, axis=1) if columns else pd.DataFrame()


def report(args, csv_path: Path, reference_paths: list[Path], device) -> tuple[dict, list[str]]:
    runs = pd.read_csv(csv_path)
    longs = long_runs(reference_paths)
    if longs.empty:
        raise SystemExit(f"{', '.join(map(str, reference_paths))}: no long runs yet")
    reference = longs.mean(axis=1).dropna()
    cpu_path = csv_path.with_name(csv_path.name.replace(f"-{device.type}.csv", ".csv"))
    cpu = pd.read_csv(cpu_path) if device.type != "cpu" and cpu_path.exists() else runs[runs.device == "cpu"]
    rows, lines = {}, []
    for recipe, changes in RECIPES.items():
        table = runs[runs.recipe == recipe].pivot(index="name", columns="seed", values="acc")
        table = table.join(reference.rename("ref"), how="inner")
        # a seed counts once every network with a reference has it
        seeds = [c for c in table.columns if c != "ref" and table[c].notna().all()]
        if len(table) < 10 or not seeds:
            continue
        single = [kendalltau(table[s], table.ref).statistic for s in seeds]
        row = {"networks": len(table), "seeds": len(seeds), "tau_one_run": round(sum(single) / len(single), 3),
               "tau_one_run_90": [round(v, 3) for v in tau_interval(table[seeds[0]], table.ref)],
               "protocol": get_protocol("proxy", **changes).to_dict()}
        if len(seeds) > 1:
            row["tau_mean_of_seeds"] = round(kendalltau(table[seeds].mean(axis=1), table.ref).statistic, 3)
            row["seed_tau"] = round(kendalltau(table[seeds[0]], table[seeds[1]]).statistic, 3)
        # the cost: the costliest networks the search meets often, at the most threads timed
        timed = cpu[(cpu.recipe == recipe) & cpu.name.isin(TIMED)] if len(cpu) else cpu
        timed = timed[timed.threads == timed.threads.max()] if len(timed) else timed
        if len(timed):
            row["cpu_seconds"] = {n: float(s) for n, s in timed.groupby("name").seconds.median().items()}
            row["cpu_threads"] = sorted(int(t) for t in timed.threads.unique())
        rows[recipe] = row
    per_network = longs.loc[reference.index].notna().sum(axis=1)
    summary = {"reported_on": describe(threads=torch.get_num_threads()), "device": str(device), "data": args.data,
               "reference": {"files": [p.name for p in reference_paths], "networks": len(reference),
                             "long_runs_per_network": {str(k): int(v) for k, v in per_network.value_counts().items()}},
               "recipes": rows}
    runs_note = ", ".join(f"{v} with {k}" for k, v in sorted(summary["reference"]["long_runs_per_network"].items()))
    lines = ["# Proxy recipes (benchmarks/proxy_recipes.py)", "",
             f"`{args.data}`; recipes trained on {device}; reference: the mean of every long run of each network in "
             f"{', '.join(f'`{p.name}`' for p in reference_paths)} ({len(reference)} networks: {runs_note} run(s)). "
             "tau = Kendall tau against it; one run = the mean over seeds of a single run's tau (90% bootstrap "
             "interval of seed 0's). CPU seconds: the recipe timed on this machine's CPU (`--only ... --device cpu`).", "",
             "| recipe | networks | seeds | tau, one run | 90% | tau, mean of seeds | seed vs seed | CPU s (network: median) |",
             "|---|---|---|---|---|---|---|---|"]
    for recipe, r in rows.items():
        secs = ", ".join(f"{n} {s:.1f}" for n, s in r.get("cpu_seconds", {}).items()) or "-"
        if r.get("cpu_threads"):
            secs += f" ({'/'.join(map(str, r['cpu_threads']))} thr)"
        lines.append(f"| {recipe} | {r['networks']} | {r['seeds']} | {r['tau_one_run']:.3f} | "
                     f"{r['tau_one_run_90'][0]:.2f}..{r['tau_one_run_90'][1]:.2f} | "
                     f"{cell(r.get('tau_mean_of_seeds'))} | {cell(r.get('seed_tau'))} | {secs} |")
    return summary, lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--n-random", type=int, default=27)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--only", help="comma-separated network names (e.g. to time recipes on the CPU)")
    ap.add_argument("--family", choices=sorted(FAMILIES), default="proxy",
                    help="proxy (default): candidate proxies; reference: variants of the long reference")
    ap.add_argument("--recipes", help="comma-separated recipe names (default: all of the family)")
    ap.add_argument("--reference", help="comma-separated proxy_fidelity CSVs holding the long runs "
                    "(default: this device's and the CPU's)")
    ap.add_argument("--device", help="cpu, cuda ... (default: a GPU when present)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # a report reads the files of the device named, which need not be here
    device = torch.device(args.device or "cpu") if args.report_only else pick_device(args.device)
    out = Path(args.out)
    csv_path = out / f"{stem_for(f'{args.family}_recipes', args.data, device)}.csv"
    if not args.report_only:
        data = load_data(args.data)
        # the reference trains on train + validation and is scored on test, where there is one
        measure(args, csv_path, data.for_test() if args.family == "reference" and data.x_test is not None else data,
                device)
    if args.only or args.family == "reference":
        return
    if args.reference:
        references = [Path(p) for p in args.reference.split(",")]
    else:  # this device's long runs, and the CPU's when both exist
        references = [p for p in dict.fromkeys([out / f"{stem_for('proxy_fidelity', args.data, device)}.csv",
                                                out / f"{stem_for('proxy_fidelity', args.data, torch.device('cpu'))}.csv"])
                      if p.exists()]
    summary, lines = report(args, csv_path, references, device)
    stem = csv_path.stem
    atomic_write_text(out / f"{stem}.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(out / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
