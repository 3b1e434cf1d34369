"""Does a latency table built with `lut build`'s defaults hold, here, at the time a user spends?
Builds the default space's table with the defaults (20-minute budget, 1 thread), then runs
`lut check` twice on 50 random networks, minutes apart, and writes
results/benchmarks/lut_default_build[-BACKEND].{json,md}. Run it on an otherwise idle machine (~26 min).

    python benchmarks/lut_default_build.py [--backend onnxruntime] [--work /tmp/lut-default]
    python benchmarks/lut_default_build.py --report-only --work DIR   # DIR/table.csv, DIR/check1.json ...
    python benchmarks/lut_default_build.py --grow 20   # then grow a copy by 20 min (`lut build` rerun) and recheck

Resumable: a finished build or check in ``--work`` is not redone (delete the folder to start over).
Targets (issue 21): build <= 20 min; each check >= 90% of networks within 10%, Kendall tau >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

from ghostnas.cost.lut import LatencyModel, build_lut, check_lut
from ghostnas.cost.lut.build import DEFAULT_BUILD_MINUTES
from ghostnas.io import atomic_write_text
from ghostnas.space import load_space

CHECKS = 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "torch"])
    ap.add_argument("--work", default="/tmp/lut-default")
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--grow", type=float, default=0.0, metavar="MIN",
                    help="also rerun `lut build` on a copy of the table for MIN more minutes and check that")
    args = ap.parse_args()
    work, space = Path(args.work), load_space("ghostnet")
    table = work / "table.csv"
    meta_path = Path(str(table) + ".meta.json")
    grown = work / "grown.csv"  # the table after a second `lut build` run (a user growing it)
    if not args.report_only:
        work.mkdir(parents=True, exist_ok=True)
        if not (meta_path.exists() and json.loads(meta_path.read_text()).get("calibration")):
            build_lut(space, args.backend, table, minutes=DEFAULT_BUILD_MINUTES)
        run_checks(table, space, work, "check")
        if args.grow:
            done = work / "grown.done"
            if not done.exists():
                if not grown.exists():  # copy the metadata last: a torn copy restarts from the table
                    shutil.copyfile(table, grown)
                    shutil.copyfile(meta_path, Path(str(grown) + ".meta.json"))
                build_lut(space, args.backend, grown, minutes=args.grow)
                done.touch()
            run_checks(grown, space, work, "grown-check")
    meta = json.loads(meta_path.read_text())
    rows, drift = check_rows(work, "check")
    summary_grown = None
    if (work / "grown.done").exists() and (work / f"grown-check{CHECKS}.json").exists():
        gmeta = json.loads(Path(str(grown) + ".meta.json").read_text())
        grows, gdrift = check_rows(work, "grown-check")
        summary_grown = {"build_seconds": gmeta["build_seconds"], "entries_measured": gmeta.get("entries_measured"),
                         "checks": grows, "measured_check2_over_check1_median": round(gdrift, 4)}
    summary = {"space": meta["space_name"], "space_hash": meta["space_hash"], "device": meta["device"],
               "backend": meta["backend"], "backend_version": meta.get("backend_version"),
               "threads": meta["threads"], "build_seconds": meta["build_seconds"],
               "entries_measured": meta.get("entries_measured"), "entries_in_space": meta.get("entries_in_space"),
               "calibration_networks": len(meta["calibration"].get("networks", [])),
               "checks": rows, "measured_check2_over_check1_median": round(drift, 4), "grown": summary_grown}
    d = meta["device"]
    lines = ["# A default-space table built with the defaults (benchmarks/lut_default_build.py)", "",
             f"Space {meta['space_name']} (content {meta['space_hash']}); "
             f"{d['cpu']}, {d['cores']} cores, {meta['backend']} {meta.get('backend_version')}, {meta['threads']} thread, "
             f"{d['date']}; nothing else running. Build: {meta['build_seconds'] / 60:.1f} min, "
             f"{summary['entries_measured']:,} of {summary['entries_in_space']:,} entries measured (the predictor "
             f"covers the rest), {summary['calibration_networks']} calibration networks.", "",
             *table_lines(rows)]
    lines += ["", f"The same 50 networks measured {100 * (drift - 1):+.1f}% (median) in check 2 against check 1: "
              "the machine's drift between checks, which moves the mean error."]
    if summary_grown:
        g = summary_grown
        lines += ["", f"## Grown: `lut build` rerun on the table for {args.grow:g} more minutes", "",
                  f"{g['entries_measured']:,} of {summary['entries_in_space']:,} entries measured, "
                  f"{g['build_seconds'] / 60:.1f} min of building in all; calibration refitted; the same 50 networks.", "",
                  *table_lines(g["checks"])]
        lines += ["", f"Drift between its two checks: {100 * (g['measured_check2_over_check1_median'] - 1):+.1f}% (median)."]
    out, stem = Path(args.out), "lut_default_build" + ("" if meta["backend"] == "onnxruntime" else f"-{meta['backend']}")
    atomic_write_text(out / f"{stem}.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(out / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def run_checks(table: Path, space, work: Path, prefix: str) -> None:
    for k in range(1, CHECKS + 1):
        path = work / f"{prefix}{k}.json"
        if not path.exists():
            report = check_lut(LatencyModel.load(table), space, n=50, log=print)
            atomic_write_text(path, json.dumps(report, indent=1) + "\n")


def check_rows(work: Path, prefix: str) -> tuple[list[dict], float]:
    """One summary row per check, and the median measured ratio of check 2 to check 1 (drift)."""
    checks = [json.loads((work / f"{prefix}{k}.json").read_text()) for k in range(1, CHECKS + 1)]
    rows = []
    for k, c in enumerate(checks, start=1):
        errors = [p["error_pct"] for p in c["per_arch"]]
        rows.append({"check": k, "within_10pct": c["within_10pct"], "within_5pct": c["within_5pct"], "mape": c["mape"],
                     "kendall_tau": c["kendall_tau"], "mean_error_pct": round(statistics.mean(errors), 2),
                     "sd_error_pct": round(statistics.stdev(errors), 2), "load_1min": c["load_1min"]})
    drift = statistics.median(b["measured_ms"] / a["measured_ms"]
                              for a, b in zip(checks[0]["per_arch"], checks[1]["per_arch"]))
    return rows, drift


def table_lines(rows: list[dict]) -> list[str]:
    """The checks as a Markdown table, header included."""
    return ["| check | within 10% | within 5% | MAPE | mean error | sd of error | Kendall tau | load |",
            "|---|---|---|---|---|---|---|---|"] + [f"| {r['check']} | {100 * r['within_10pct']:.0f}% | {100 * r['within_5pct']:.0f}% | "
            f"{100 * r['mape']:.1f}% | {r['mean_error_pct']:+.1f}% | {r['sd_error_pct']:.1f}% | "
            f"{r['kendall_tau']:.3f} | {r['load_1min']} |" for r in rows]


if __name__ == "__main__":
    main()
