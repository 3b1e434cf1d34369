"""Text for people: the tables and summaries the commands print when not given --json."""

from __future__ import annotations

import json
from typing import Any


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=1, default=str))


def _n(n: int) -> str:
    return f"{n:,}"


def arch_table(arch, cost) -> list[str]:
    """An Arch's block table with each layer's params and MACs."""
    r = cost.resolved
    header = f"{'layer':<12}{'in':>6}{'exp':>6}{'out':>6}{'k':>3}{'SE':>4}{'str':>4}{'s':>3}{'d':>3}" \
             f"{'input':>9}{'params':>12}{'MACs':>14}"
    layers = cost.layers
    lines = [f"{arch.name or 'arch'}: width {arch.width:g}, input {r.resolution}x{r.resolution}, "
             f"{r.num_classes} classes", header, "-" * len(header),
             f"{'stem':<12}{3:>6}{'':>6}{r.stem:>6}{3:>3}{'':>4}{2:>4}{'':>3}{'':>3}"
             f"{f'{r.resolution}²':>9}{_n(layers[0].params):>12}{_n(layers[0].macs):>14}"]
    for b, layer in zip(r.blocks, layers[1:-2]):
        lines.append(f"{layer.name:<12}{b.cin:>6}{b.mid:>6}{b.cout:>6}{b.k:>3}{'yes' if b.se_channels else '-':>4}"
                     f"{b.stride:>4}{b.s:>3}{b.d:>3}{f'{b.h}²':>9}{_n(layer.params):>12}{_n(layer.macs):>14}")
    fin, head = layers[-2], layers[-1]
    cin = r.blocks[-1].cout if r.blocks else r.stem
    lines += [f"{'final_conv':<12}{cin:>6}{'':>6}{r.final_conv:>6}{1:>3}{'':>4}{1:>4}{'':>3}{'':>3}"
              f"{f'{r.final_hw[0]}²':>9}{_n(fin.params):>12}{_n(fin.macs):>14}",
              f"{'head':<12}{r.final_conv:>6}{'':>6}{r.head:>6}{'':>3}{'':>4}{'':>4}{'':>3}{'':>3}"
              f"{'1²':>9}{_n(head.params):>12}{_n(head.macs):>14}",
              "-" * len(header), f"{'total':<12}{'':>59}{_n(cost.params):>12}{_n(cost.macs):>14}",
              f"params {cost.params / 1e6:.2f}M, MACs {cost.macs / 1e6:.1f}M (conv+linear multiply-accumulates, "
              "the paper's 'FLOPs'); unused k is shown but has no effect in stride-1 identity blocks"]
    return lines


def print_summary(summary: dict) -> None:
    """A search's summary: counts, the hand-designed baseline, the best found, --confirm's finalists."""
    counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in summary["trials"].items())
    print(f"study {summary['study']} ({summary['run_dir']}): {counts}")
    for key, title in (("baseline", "hand-designed"), ("best_found", "best found")):
        if key in summary:
            b = summary[key]
            lat = f", {b['latency_ms']:.2f} ms predicted" if "latency_ms" in b else ""
            if "latency_ms_measured" in b:
                lat += (f", {b['latency_ms_measured']:.2f} ms measured here"
                        + ("" if b["latency_fits"] else " (over the budget)"))
            dfc = f", DFC in {len(b['dfc_blocks'])} blocks ({' '.join(b['dfc_blocks'])})" if b.get("dfc_blocks") else ""
            print(f"  {title:<14} trial {b['trial']:>3}: val top-1 {b['val_acc']:.4f}, "
                  f"{b['macs'] / 1e6:.1f}M MACs, {b['params'] / 1e6:.2f}M params{lat}{dfc}")
    confirmed = summary.get("confirmed", {})
    if "found_minus_baseline_points" in summary and summary.get("evaluator") == "supernet":
        print(f"  found - hand-designed: {summary['found_minus_baseline_points']:+.2f} points "
              "(inherited weights of one supernet, which ranks stand-alone training only roughly"
              + ("" if confirmed else ": --confirm 2 re-trains the best stand-alone") + ")")
    elif "found_minus_baseline_points" in summary:
        print(f"  found - hand-designed: {summary['found_minus_baseline_points']:+.2f} points "
              "(same proxy protocol, one run each" + ("" if confirmed else
                                                       ": a run's seed noise is several points; "
                                                       "--confirm 2 re-trains the best on more seeds") + ")")
    for f in confirmed.get("finalists", []):
        print(f"  confirmed {'(hand-designed)' if f['baseline'] else '':<15} trial {f['trial']:>3}: mean "
              f"val top-1 {f['val_acc_mean']:.4f} over {len(f['val_accs'])} seed(s), protocol "
              f"{confirmed['protocol']}")
    if "found_minus_baseline_points" in confirmed:
        se = confirmed.get("found_minus_baseline_se_points")
        print(f"  confirmed found - hand-designed: {confirmed['found_minus_baseline_points']:+.2f} points"
              + (f" (standard error {se:.2f} from the seeds' spread: a lead under about twice that "
                 "may be seed luck)" if se is not None else ""))
    print(f"  tables, plots and summary in {summary['run_dir']}; next: "
          "`ghostnas export best --format onnx --out exported/`")


