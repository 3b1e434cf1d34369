"""LUT build time per backend and `lut check` accuracy, on this machine.

    python benchmarks/lut_eval.py [--n 50] [--out results/benchmarks]

Builds the tiny space's complete LUT with the torch and onnxruntime backends (1 thread) into a
temporary folder, checks each on random Archs, and checks the shipped default-space LUTs
(results/luts/ghostnet-*.csv, build time from their metadata) on N random Archs each. Writes
lut_eval.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ghostnas.cost.latency import LatencyModel, build_lut, check_lut
from ghostnas.io import atomic_write_text
from ghostnas.machine import describe
from ghostnas.space import load_space

SHIPPED = sorted(str(p) for p in Path("results/luts").glob("ghostnet-*.csv"))


def summary(report: dict) -> dict:
    out = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.items() if k != "per_arch"}
    errors = [p["error_pct"] for p in report["per_arch"]]  # signed: predicted above measured > 0
    return {**out, "mean_error_pct": round(sum(errors) / len(errors), 2), "errors_pct": errors,
            # kept so a new predictor can be re-scored against these measurements without re-timing
            "measured_ms": [p["measured_ms"] for p in report["per_arch"]]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--out", default="results/benchmarks")
    args = ap.parse_args()
    tiny = load_space("tiny")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("torch", "onnxruntime"):
            t = time.perf_counter()
            model = build_lut(tiny, backend, Path(tmp) / f"tiny-{backend}.csv", threads=1, log=lambda m: None)
            build_s = time.perf_counter() - t
            rows.append({"space": "tiny", "backend": backend, "entries": len(model.rows),
                         "build_s": round(build_s, 1), **summary(check_lut(model, tiny, n=args.n))})
    for path in SHIPPED:
        shipped = LatencyModel.load(path)
        rows.append({"space": "ghostnet", "backend": shipped.meta["backend"], "entries": len(shipped.rows),
                     "build_s": shipped.meta.get("build_seconds"),
                     **summary(check_lut(shipped, load_space("ghostnet"), n=args.n))})
    m = describe(threads=1)
    result = {"machine": m, "rows": rows}
    out = Path(args.out)
    atomic_write_text(out / "lut_eval.json", json.dumps(result, indent=1) + "\n")
    lines = ["# Latency tables: build time and accuracy (benchmarks/lut_eval.py)", "",
             f"{m['cpu']}, {m['cores']} cores, 1 thread, batch 1, {m['date']}; end-to-end measured with the "
             f"LUT's backend on {args.n} random Archs of the LUT's space (each the median of 3 separate "
             "timings of 40 runs, on the LUT's clock, against its reference block when it has one).", "",
             "| space | backend | entries measured | build (s) | MAPE | mean signed error | within 5% | within 10% | Kendall tau |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['space']} | {r['backend']} | {r['entries']} | {r['build_s'] if r['build_s'] else 'n/a'} | "
                     f"{100 * r['mape']:.1f}% | {r['mean_error_pct']:+.1f}% | {100 * r['within_5pct']:.0f}% | {100 * r['within_10pct']:.0f}% | "
                     f"{r['kendall_tau']:.3f} |")
    atomic_write_text(out / "lut_eval.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
