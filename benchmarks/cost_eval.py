"""Analytic cost vs ultralytics-thop, and eager latency of paper-1.0x.

    python benchmarks/cost_eval.py [--n 100] [--out results/benchmarks]

Same 100 random Archs of the default space, same run: Archs/s of ghostnas.count (params + MACs
from shapes) against thop.profile on the built models (and build + profile), with the ratio and a
check that the numbers are identical. Then paper-1.0x eager forward latency, batch 1, 1 thread,
224x224. Writes cost_eval.json and cost_eval.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from ghostnas import count, create_model
from ghostnas.io import atomic_write_text
from ghostnas.machine import describe
from ghostnas.space import load_space


def thop_count(model: nn.Module, resolution: int) -> tuple[int, int]:
    import thop

    def zero(module, inputs, output):  # thop also counts BN/ReLU/pool; the paper does not
        module.total_ops += torch.zeros(1, dtype=torch.float64)

    macs, params = thop.profile(model, inputs=(torch.zeros(1, 3, resolution, resolution),),
                                verbose=False, custom_ops={nn.BatchNorm2d: zero, nn.ReLU: zero,
                                                           nn.AdaptiveAvgPool2d: zero})
    return int(macs), int(params)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--out", default="results/benchmarks")
    args = ap.parse_args()
    torch.set_num_threads(1)
    space = load_space("ghostnet")
    archs = [space.sample_arch(seed) for seed in range(args.n)]

    t = time.perf_counter()
    first = [count(a) for a in archs]
    cold = args.n / (time.perf_counter() - t)
    rates = []
    for _ in range(50):
        t = time.perf_counter()
        for a in archs:
            count(a)
        rates.append(args.n / (time.perf_counter() - t))
    analytic = statistics.median(rates)

    t = time.perf_counter()
    models = [create_model(a).eval() for a in archs]
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    with torch.no_grad():
        thop_results = [thop_count(m, 224) for m in models]
    thop_s = time.perf_counter() - t
    thop_rate = args.n / thop_s
    thop_build_rate = args.n / (thop_s + build_s)
    identical = all((c.macs, c.params) == r for c, r in zip(first, thop_results))

    model = create_model("paper-1.0x").eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        for _ in range(10):
            model(x)
        times = []
        for _ in range(50):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    result = {
        "machine": describe(threads=1),
        "n_archs": args.n,
        "analytic_archs_per_s_median": round(analytic),
        "analytic_archs_per_s_cold_first_pass": round(cold),
        "thop_archs_per_s_profile_only": round(thop_rate, 2),
        "thop_archs_per_s_build_and_profile": round(thop_build_rate, 2),
        "speedup_vs_thop_profile_only": round(analytic / thop_rate),
        "identical_numbers": identical,
        "paper_1.0x_eager_ms": {"median": round(statistics.median(times), 2),
                                "p10": round(times[len(times) // 10], 2),
                                "p90": round(times[len(times) * 9 // 10], 2),
                                "batch": 1, "threads": 1, "resolution": 224, "runs": 50},
    }
    out = Path(args.out)
    atomic_write_text(out / "cost_eval.json", json.dumps(result, indent=1) + "\n")
    m = result["machine"]
    lat = result["paper_1.0x_eager_ms"]
    md = f"""# Analytic cost vs ultralytics-thop (benchmarks/cost_eval.py)

Machine: {m['cpu']}, {m['cores']} cores, torch {m.get('torch')} (CPU), 1 thread, {m['date']}.
Same {args.n} random Archs of `search_spaces/ghostnet.yaml`, 224x224, one run.

| method | Archs/s |
|---|---|
| `ghostnas.count` (analytic, median of 50 passes) | {result['analytic_archs_per_s_median']:,} |
| `ghostnas.count`, first (cold-cache) pass | {result['analytic_archs_per_s_cold_first_pass']:,} |
| thop.profile on built models | {result['thop_archs_per_s_profile_only']} |
| build model + thop.profile | {result['thop_archs_per_s_build_and_profile']} |

Speed-up of analytic over thop (profile only): **{result['speedup_vs_thop_profile_only']:,}x**;
numbers identical (conv+linear MACs with thop's BN/ReLU/pool counts zeroed, and params):
**{identical}**.

paper-1.0x eager PyTorch forward, batch 1, 1 thread, 224x224: median {lat['median']} ms
(p10 {lat['p10']}, p90 {lat['p90']}, {lat['runs']} runs after 10 warm-up).
"""
    atomic_write_text(out / "cost_eval.md", md)
    print(md)


if __name__ == "__main__":
    main()
