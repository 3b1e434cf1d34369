"""Does averaging several trainings of one supernet recipe rank better than one training?

Reads the per-network scores that benchmarks/supernet_fidelity.py wrote for each training of a
recipe (the first training's file and its retrainings: ``-retrain``, ``-nchw``), and compares,
against the same stand-alone reference: each training alone, how much the trainings agree with
each other, and the ensemble (the mean of their inherited accuracies). No training here: seconds.

    python benchmarks/supernet_ensemble.py [--out results/benchmarks]

Writes results/benchmarks/supernet_ensemble.{md,json}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import pandas as pd
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_fidelity import partial_tau  # noqa: E402

from ghostnas.io import atomic_write_text  # noqa: E402

# (data, the first training's stem, its retrainings' suffixes)
RECIPES = [("mnist5k-clutter", "supernet_fidelity-progressive-e15", ["-retrain", "-nchw"]),
           ("fashion-mnist", "supernet_fidelity-fashion-mnist-progressive-e8", ["-retrain"])]


def compare(out: Path, stem: str, suffixes: list[str]) -> dict | None:
    files = [out / f"{stem}{s}.csv" for s in ["", *suffixes]]
    if not all(f.exists() for f in files):
        return None
    runs = [pd.read_csv(f).set_index("name") for f in files]
    names = runs[0].index
    reference = runs[0][[c for c in runs[0].columns if c.startswith("long_acc")]].mean(axis=1)
    scores = [r.loc[names, "supernet_acc"] for r in runs]
    ensemble = sum(scores) / len(scores)
    macs = runs[0].loc[names, "macs"]

    def tau(x: pd.Series) -> float:
        return round(float(kendalltau(x, reference).statistic), 3)

    return {"files": [f.name for f in files], "networks": len(names),
            "single_tau": [tau(s) for s in scores],
            "between_trainings_tau": [round(float(kendalltau(a, b).statistic), 3)
                                      for a, b in itertools.combinations(scores, 2)],
            "ensemble_tau": tau(ensemble),
            "single_tau_given_macs": [round(partial_tau(s, reference, macs), 3) for s in scores],
            "ensemble_tau_given_macs": round(partial_tau(ensemble, reference, macs), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/benchmarks")
    args = ap.parse_args()
    out = Path(args.out)
    results = {data: r for data, stem, suffixes in RECIPES if (r := compare(out, stem, suffixes))}
    atomic_write_text(out / "supernet_ensemble.json", json.dumps(results, indent=1) + "\n")
    lines = ["# Several trainings of one supernet recipe (benchmarks/supernet_ensemble.py)", "",
             "Kendall tau against the stand-alone reference (the mean of its runs), per training of the same "
             "recipe (the first, then its retrainings: same settings, other rounding), between the trainings, "
             "and for the mean of their inherited accuracies.", "",
             "| data | networks | each training | between trainings | ensemble | given MACs: each / ensemble |",
             "|---|---|---|---|---|---|"]
    for data, r in results.items():
        lines.append(f"| {data} | {r['networks']} | {', '.join(map(str, r['single_tau']))} | "
                     f"{', '.join(map(str, r['between_trainings_tau']))} | {r['ensemble_tau']} | "
                     f"{', '.join(map(str, r['single_tau_given_macs']))} / {r['ensemble_tau_given_macs']} |")
    lines += ["", "Files: " + "; ".join(", ".join(f"`{f}`" for f in r["files"]) for r in results.values()) + "."]
    md = "\n".join(lines) + "\n"
    atomic_write_text(out / "supernet_ensemble.md", md)
    print(md)


if __name__ == "__main__":
    main()
