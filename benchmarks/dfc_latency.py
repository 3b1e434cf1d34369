"""What GhostNetV2's DFC attention costs in time, here: per block (pairs of LUT entries that differ
only in the expansion module, from a complete tiny-v2 table) and end to end (paper-v2-1.0x against
paper-1.0x, the same table otherwise), on every installed backend, 1 thread, batch 1, referenced
timing (see docs/latency.md). Run with nothing else on the machine.

    python benchmarks/dfc_latency.py [--out results/benchmarks] [--backends litert ...]

Writes dfc_latency.{json,md}; ``--backends`` re-measures just those (LiteRT needs the [tflite]
extra, so it may be measured from another environment) and keeps the other rows, each with its
own date.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from ghostnas import count, load_arch
from ghostnas.cost.lut import BACKEND_MODULES, Entry, backend_installed, build_lut, measure_arch, measure_reference
from ghostnas.io import atomic_write_text
from ghostnas.machine import describe
from ghostnas.space import load_space


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--times", type=int, default=3, help="separate end-to-end timings, median taken")
    ap.add_argument("--backends", nargs="+", choices=list(BACKEND_MODULES), help="default: every installed one")
    args = ap.parse_args()
    backends = [b for b in (args.backends or BACKEND_MODULES) if backend_installed(b)]
    if args.backends and len(backends) < len(args.backends):
        raise SystemExit(f"not installed here: {sorted(set(args.backends) - set(backends))}")
    out = Path(args.out)
    last = json.loads((out / "dfc_latency.json").read_text()) if (out / "dfc_latency.json").exists() else {}
    kept = [{"date": last["machine"]["date"], **r} for r in last.get("rows", []) if r["backend"] not in backends]
    rows = []
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            table = build_lut(load_space("tiny-v2"), backend, Path(tmp) / "t.csv", calibrate=0, log=lambda m: None)
        pairs = []
        for key, row in table.rows.items():
            e = Entry.from_key(key)
            if e.kind == "block" and e.attn == "dfc":
                v1 = table.rows.get(Entry(**{**e.__dict__, "attn": "v1"}).key)
                if v1:
                    pairs.append((row["median_ms"], v1["median_ms"], e.h))
        ref = measure_reference(backend, 1, "auto")["ms"]
        ends = {name: measure_arch(load_arch(name), backend, 1, clock="auto", reference_ms=ref, times=args.times)
                for name in ("paper-1.0x", "paper-v2-1.0x")}
        rows.append({"backend": backend, "date": describe(threads=1)["date"], "block_pairs": len(pairs),
                     "block_ratio_median": round(statistics.median(a / b for a, b, _ in pairs), 3),
                     "block_extra_ms_median": round(statistics.median(a - b for a, b, _ in pairs), 4),
                     "v1_ms": round(ends["paper-1.0x"], 3), "v2_ms": round(ends["paper-v2-1.0x"], 3),
                     "end_to_end_ratio": round(ends["paper-v2-1.0x"] / ends["paper-1.0x"], 3)})
        print(json.dumps(rows[-1]), flush=True)
    order = list(BACKEND_MODULES)
    rows = sorted(kept + rows, key=lambda r: order.index(r["backend"]))
    macs = {n: count(n).macs for n in ("paper-1.0x", "paper-v2-1.0x")}
    m = describe(threads=1)
    result = {"machine": m, "macs_ratio": round(macs["paper-v2-1.0x"] / macs["paper-1.0x"], 3), "rows": rows}
    atomic_write_text(out / "dfc_latency.json", json.dumps(result, indent=1) + "\n")
    lines = ["# GhostNetV2's DFC attention: what it costs in time (benchmarks/dfc_latency.py)", "",
             f"{m['cpu']}, {m['cores']} cores, 1 thread, batch 1, referenced timing (each row's date in the JSON). Per block: "
             "pairs of tiny-v2 table entries (64 px space) identical but for the expansion module; end to end: "
             f"paper-v2-1.0x against paper-1.0x at 224 px (MACs x{result['macs_ratio']}), median of "
             f"{args.times} timings each.", "",
             "| backend | block pairs | block time, DFC / V1 (median) | extra ms per block | paper-1.0x ms | "
             "paper-v2-1.0x ms | end to end, V2 / V1 |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['backend']} | {r['block_pairs']} | {r['block_ratio_median']:.2f} | {r['block_extra_ms_median']:.3f} | "
              f"{r['v1_ms']:.2f} | {r['v2_ms']:.2f} | {r['end_to_end_ratio']:.2f} |" for r in rows]
    atomic_write_text(out / "dfc_latency.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
