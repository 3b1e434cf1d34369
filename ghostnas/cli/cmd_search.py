"""`ghostnas search`, `ghostnas results show` and `ghostnas export`."""

from __future__ import annotations

import argparse

from ..errors import GhostNASError
from .text import print_json, print_summary


# CLI option -> SearchConfig field, where the names differ
CONFIG_NAMES = {"budget": "budgets", "runs": "out"}


def search(args: argparse.Namespace) -> int:
    import dataclasses
    import sys

    from ..search import SearchConfig, run_search

    if args.trials is None:  # a supernet scores a candidate in seconds: thousands become affordable
        args.trials = 1000 if args.supernet else 16
    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    given = {CONFIG_NAMES.get(k, k): v for k, v in vars(args).items()}
    cfg = SearchConfig(**{k: v for k, v in given.items() if k in fields and k != "progress"},
                       progress=not args.json and sys.stderr.isatty())
    cfg.budgets = tuple(cfg.budgets)
    summary = run_search(cfg)
    if args.json:
        print_json(summary)
    else:
        print_summary(summary)
    return 0


def results_show(args: argparse.Namespace) -> int:
    from ..results import find_run, load_study, rank_trials, summary_of, trials_frame

    run_dir = find_run(args.study, args.runs)
    summary = summary_of(run_dir)  # a read command: it writes nothing
    if args.json:
        print_json(summary)
        return 0
    print_summary(summary)
    df = rank_trials(run_dir, trials_frame(load_study(run_dir)))
    cols = [c for c in ("number", "val_acc", "val_acc_mean", "macs", "params", "latency_ms", "latency_ms_measured",
                        "seconds", "baseline")
            if c in df.columns]
    if not df.empty:
        print(df[cols].head(args.top).to_string(index=False))
    return 0


def export(args: argparse.Namespace) -> int:
    from ..export import export

    weights = None
    if args.arch == "best":
        from ..results import find_run, ranked_arch

        arch, weights, row = ranked_arch(find_run(args.study, args.runs), args.rank)
        if args.with_weights and weights is None:
            from ..search.context import KEEP_WEIGHTS

            raise GhostNASError(f"trial {int(row['number'])} kept no proxy weights (a search keeps those of "
                                f"its best {KEEP_WEIGHTS}, or of every --confirm finalist); export without "
                                "--with-weights")
    else:
        from ..arch import load_arch

        arch = load_arch(args.arch)
        if args.with_weights:
            raise GhostNASError("--with-weights applies to `export best`; for other weights use --weights FILE")
    if args.weights:
        weights = args.weights
    formats = [f for item in args.format for f in item.split(",") if f]
    report = export(arch, formats, args.out, num_classes=args.num_classes,
                    weights=weights if (args.with_weights or args.weights) else None,
                    resolution=args.resolution)
    if args.json:
        print_json(report)
    else:
        print(f"{report['arch']}: {report['num_classes']} classes at {report['resolution']}x{report['resolution']}"
              f"{', proxy weights' if report['weights'] else ', random init'} -> {args.out}/arch.json")
        for fmt, info in report["files"].items():
            print(f"  {fmt:<12} {info['path']}  ({info['bytes'] / 1e6:.1f} MB)  verified: max |diff| "
                  f"{info['max_abs_diff']:.2e} vs torch")
        print(f"next: ghostnas train {args.out}/arch.json --data folder:YOUR_DATA --epochs 30")
    return 0


