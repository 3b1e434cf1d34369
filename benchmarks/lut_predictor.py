"""How many entries must a latency table measure? The predictor against a complete table.

    python benchmarks/lut_predictor.py [--lut results/luts/ghostnet-v1-onnxruntime-1t.csv]
                                       [--sizes 1000 2000 4000 8000] [--networks 200]

Needs a LUT that measured every entry of its space (the shipped onnxruntime one does). For each
sample size it keeps the stratified sample `lut build --max-entries N` would measure, refits the
predictor on it alone, and scores (a) each left-out entry's prediction against its measurement and
(b) random networks' summed latency with the left-out entries predicted against the same sum with
every entry measured. No timing happens here, so the numbers are free of measurement noise: they
isolate the predictor's share of `lut check`'s error. Writes lut_predictor.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from ghostnas.cost.lut import PREDICTOR, Entry, LatencyModel, arch_entries, select_entries, space_entries
from ghostnas.io import atomic_write_text
from ghostnas.machine import describe


def pct_stats(errors: list[float]) -> dict[str, float]:
    return {"mape": statistics.mean(abs(e) for e in errors),
            "mean_error": statistics.mean(errors),
            "within_5pct": sum(abs(e) <= 0.05 for e in errors) / len(errors),
            "within_10pct": sum(abs(e) <= 0.10 for e in errors) / len(errors)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lut", default="results/luts/ghostnet-v1-onnxruntime-1t.csv")  # complete: every entry measured
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    ap.add_argument("--networks", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--predictor", type=json.loads, action="append", metavar="JSON",
                    help='predictor settings to compare, e.g. \'{"n_estimators": 800, "max_depth": 4}\' '
                         "(repeatable; default: the shipped setting only)")
    ap.add_argument("--out", default="results/benchmarks")
    args = ap.parse_args()
    full = LatencyModel.load(args.lut)
    space = full.space()
    missing = [e.key for e in space_entries(space) if e.key not in full.rows]
    if missing:
        raise SystemExit(f"{args.lut} lacks {len(missing)} of its space's entries; this benchmark "
                         "needs a complete table (`ghostnas lut build` without --max-entries)")
    rng = random.Random(args.seed + 99)
    networks = [arch_entries(space.to_arch(space.sample(rng)).resolve()) for _ in range(args.networks)]
    rows = []
    for settings, size in [(s, n) for s in args.predictor or [{}] for n in args.sizes]:
        predictor = {**PREDICTOR, **settings}
        keys = {e.key for e in select_entries(space, size, args.seed)}
        sampled = LatencyModel({k: full.rows[k] for k in keys}, full.meta, predictor=predictor)
        t = time.perf_counter()
        sampled._fit()
        fit_s = time.perf_counter() - t
        left_out = [Entry.from_key(k) for k in full.rows if k not in keys]
        sampled.predict_missing(left_out)
        entry_err = [sampled.entry_ms(e)[0] / full.entry_ms(e)[0] - 1 for e in left_out]
        net_err, share = [], []
        for net in networks:
            truth = sum(full.entry_ms(e)[0] for e in net)
            parts = [sampled.entry_ms(e) for e in net]
            net_err.append(sum(ms for ms, _ in parts) / truth - 1)
            share.append(sum(ms for ms, measured in parts if not measured) / truth)
        rows.append({"predictor": predictor, "sample": len(keys), "fit_s": round(fit_s, 1),
                     "entries": {k: round(v, 4) for k, v in pct_stats(entry_err).items()},
                     "networks": {k: round(v, 4) for k, v in pct_stats(net_err).items()},
                     "predicted_share": round(statistics.median(share), 3)})
        print(rows[-1], flush=True)
    m = describe(threads=1)
    meta = full.meta
    atomic_write_text(Path(args.out) / "lut_predictor.json",
                      json.dumps({"lut": args.lut, "machine": m, "rows": rows}, indent=1) + "\n")
    lines = ["# Latency predictor vs a complete table (benchmarks/lut_predictor.py)", "",
             f"`{args.lut}`: {len(full.rows)} entries, all measured ({meta['backend']} "
             f"{meta['backend_version']}, {meta['threads']} thread(s), {meta['device']['cpu']}). "
             f"Each row refits the predictor on the stratified sample `lut build --max-entries N` "
             f"measures and predicts the rest; networks: {args.networks} random networks' summed "
             "entries (before calibration), predicted vs all measured. No timing: predictor error only; "
             f"fit times are one process's, at a 1-minute load of {m['load_1min']} on {m['cores']} cores.", "",
             "| predictor (trees, depth) | sample | fit (s) | entry MAPE | entry mean error | entries within 10% | network MAPE | "
             "network mean error | networks within 5% | networks within 10% | predicted share of a network |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e, n = r["entries"], r["networks"]
        tree = f"{r['predictor']['n_estimators']}, {r['predictor']['max_depth']}"
        lines.append(f"| {tree} | {r['sample']} | {r['fit_s']} | {100 * e['mape']:.1f}% | {100 * e['mean_error']:+.1f}% | "
                     f"{100 * e['within_10pct']:.0f}% | {100 * n['mape']:.1f}% | {100 * n['mean_error']:+.1f}% | "
                     f"{100 * n['within_5pct']:.0f}% | {100 * n['within_10pct']:.0f}% | "
                     f"{100 * r['predicted_share']:.0f}% |")
    atomic_write_text(Path(args.out) / "lut_predictor.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
