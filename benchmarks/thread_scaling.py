"""Does a second CPU thread speed up training here? Seconds per step of the three kinds of
training ghostnas does, at each thread count, the counts alternated within one run so that each
sees the same machine:

- stand-alone: paper-1.0x, batch 96 at 32 px (a search trial, `ghostnas train`, the references);
- supernet, largest alone: the progressive recipe's first quarter of the epochs;
- supernet, sandwich: largest + smallest + 2 random networks a step, distilled from the largest.

    python benchmarks/thread_scaling.py [--threads 1 2] [--steps 6] [--rounds 2]

Each round times every kind at every count (a first, untimed round warms up); the table holds
the median over rounds. Writes results/benchmarks/thread_scaling.{json,md}. Only meaningful on
an otherwise idle machine: the load average before the run is recorded next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import BATCH, measure, supernet_steps  # noqa: E402

from ghostnas.data import DEFAULT_DATA, load_data  # noqa: E402
from ghostnas.io import atomic_write_text  # noqa: E402
from ghostnas.machine import describe  # noqa: E402
from ghostnas.space import load_space  # noqa: E402

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=6, help="timed steps per kind and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="results/benchmarks")
    args = ap.parse_args()
    machine = describe()
    space, data = load_space("ghostnet"), load_data(DEFAULT_DATA)
    kinds = ("stand-alone", "supernet, largest alone", "supernet, sandwich")
    times: dict[int, dict[str, list[float]]] = {t: {k: [] for k in kinds} for t in args.threads}
    for r in range(args.rounds + 1):
        for t in args.threads:
            torch.set_num_threads(t)
            stand_alone = BATCH / measure(True, args.steps, BATCH, 32)["train_img_s"]  # the CPU trainers' format
            largest, sandwich = supernet_steps(space, data, args.steps)
            if r == 0:
                continue  # warm-up round
            for k, v in zip(kinds, (stand_alone, largest, sandwich)):
                times[t][k].append(v)
            print(json.dumps({"round": r, "threads": t, **{k: round(v, 3) for k, v in zip(kinds, (stand_alone, largest, sandwich))}}),
                  flush=True)
    median = {t: {k: round(statistics.median(v), 3) for k, v in times[t].items()} for t in args.threads}
    base = args.threads[0]
    res = {"machine": machine, "batch": BATCH, "resolution": 32, "steps": args.steps, "rounds": args.rounds,
           "seconds_per_step": median,
           "speedup_vs_first": {t: {k: round(median[base][k] / median[t][k], 2) for k in kinds} for t in args.threads}}
    out = Path(args.out)
    atomic_write_text(out / "thread_scaling.json", json.dumps(res, indent=1) + "\n")
    head = " | ".join(f"{t} thread(s), s/step" for t in args.threads)
    lines = ["# Thread scaling of training (benchmarks/thread_scaling.py)", "",
             f"{machine['cpu']}, {machine['cores']} cores, torch {machine.get('torch')} CPU, load average "
             f"{machine.get('load_1min')} before the run, {machine['date']}. Batch {BATCH}, 32 px; median of "
             f"{args.rounds} rounds of {args.steps} steps per kind, the thread counts alternated.", "",
             f"| training | {head} | speedup of {args.threads[-1]} over {base} |",
             "|---|" + "---|" * (len(args.threads) + 1)]
    for k in kinds:
        lines.append(f"| {k} | " + " | ".join(f"{median[t][k]:.3f}" for t in args.threads)
                     + f" | {res['speedup_vs_first'][args.threads[-1]][k]:.2f}x |")
    md = "\n".join(lines) + "\n"
    atomic_write_text(out / "thread_scaling.md", md)
    print(md)


if __name__ == "__main__":
    main()
