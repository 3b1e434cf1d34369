"""LUT build time per backend and `lut check` accuracy, on this machine.

    python benchmarks/lut_eval.py [--n 50] [--only tiny:litert ...] [--out results/benchmarks]

Builds the tiny spaces' complete LUTs (tiny, and tiny-v2 with GhostNetV2's DFC choice) with each backend (torch, onnxruntime, and litert when the
[tflite] extra is installed; 1 thread) into a temporary folder, checks each on random Archs, and
checks the shipped ghostnet and ghostnet-v1 LUTs (results/luts/ghostnet-*.csv, build time from their metadata)
on N random Archs each (a table whose backend is not installed here keeps its last row).
``--only SPACE:BACKEND`` re-measures just those rows; every other row is kept from the last
lut_eval.json, each with its own date and load. Writes lut_eval.{json,md}.
Run it with nothing else on the machine: timings taken next to other work are not this machine's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ghostnas.cost.lut import BACKEND_MODULES, LatencyModel, backend_installed, build_lut, check_lut
from ghostnas.io import atomic_write_text
from ghostnas.machine import describe
from ghostnas.space import load_space

SMALL_SPACES = ("tiny", "tiny-v2")  # complete tables built here each run; tiny-v2 adds GhostNetV2's DFC choice
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
    ap.add_argument("--only", nargs="+", metavar="SPACE:BACKEND",
                    help="re-measure only these rows (e.g. tiny:litert ghostnet:torch); keep the others")
    args = ap.parse_args()
    out = Path(args.out)
    wanted = None if args.only is None else {tuple(o.split(":", 1)) for o in args.only}
    old = []
    if (out / "lut_eval.json").exists():
        last = json.loads((out / "lut_eval.json").read_text())
        old = [{"date": last["machine"]["date"], **r} for r in last["rows"]]  # rows written before rows had dates
    fresh: dict[tuple[str, str], dict] = {}

    def chosen(space: str, backend: str) -> bool:
        return wanted is None or (space, backend) in wanted

    backends = [b for b in BACKEND_MODULES if backend_installed(b)]
    with tempfile.TemporaryDirectory() as tmp:
        for name, backend in ((n, b) for n in SMALL_SPACES for b in backends if chosen(n, b)):
            space = load_space(name)
            t = time.perf_counter()
            model = build_lut(space, backend, Path(tmp) / f"{name}-{backend}.csv", threads=1, log=lambda m: None)
            build_s = time.perf_counter() - t
            fresh[name, backend] = {"space": name, "backend": backend, "entries": len(model.rows),
                                    "build_s": round(build_s, 1), "date": describe(threads=1)["date"],
                                    **summary(check_lut(model, space, n=args.n))}
    for path in SHIPPED:
        shipped = LatencyModel.load(path)
        space = shipped.space()  # ghostnet or ghostnet-v1 (the default space before the DFC choice)
        if shipped.meta["backend"] in backends and chosen(space.name, shipped.meta["backend"]):
            fresh[space.name, shipped.meta["backend"]] = {
                "space": space.name, "backend": shipped.meta["backend"], "entries": len(shipped.rows),
                "build_s": shipped.meta.get("build_seconds"), "date": describe(threads=1)["date"],
                **summary(check_lut(shipped, space, n=args.n))}
    if wanted and wanted - set(fresh):
        raise SystemExit(f"nothing to measure for {sorted(wanted - set(fresh))}: "
                         f"backends here {backends}, shipped tables {SHIPPED}")
    rows = [fresh.pop((r["space"], r["backend"]), r) for r in old] + list(fresh.values())
    m = describe(threads=1)
    result = {"machine": m, "rows": rows}
    atomic_write_text(out / "lut_eval.json", json.dumps(result, indent=1) + "\n")
    lines = ["# Latency tables: build time and accuracy (benchmarks/lut_eval.py)", "",
             f"{m['cpu']}, {m['cores']} cores, 1 thread, batch 1; end-to-end measured with the "
             f"LUT's backend on {args.n} random Archs of the LUT's space (each the median of 3 separate "
             "timings of 40 runs, on the LUT's clock, against its reference block when it has one).", "",
             "| space | backend | entries measured | build (s) | MAPE | mean signed error | within 5% | within 10% | Kendall tau | measured |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['space']} | {r['backend']} | {r['entries']} | {r['build_s'] if r['build_s'] else 'n/a'} | "
                     f"{100 * r['mape']:.1f}% | {r['mean_error_pct']:+.1f}% | {100 * r['within_5pct']:.0f}% | {100 * r['within_10pct']:.0f}% | "
                     f"{r['kendall_tau']:.3f} | {r['date'][:16]}, load {r.get('load_1min', 'n/a')} |")
    atomic_write_text(out / "lut_eval.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
