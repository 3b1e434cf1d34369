"""The ``ghostnas`` command: parses arguments and calls the library. No logic of its own.

Every user mistake surfaces as one line on stderr (``ghostnas: error: ...``) and exit status 2;
``--json`` prints a machine-readable object on stdout instead of tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from .defaults import CHECK_LATENCY, CONFIRM_SEEDS, DATA_SPECS, DEFAULT_DATA
from .device_runner import CLOCKS
from .errors import GhostNASError
from .io import sigint_as_interrupt

Handler = Callable[[argparse.Namespace], int]


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=1, default=str))


def _fmt_int(n: int) -> str:
    return f"{n:,}"


# ---- arch ----------------------------------------------------------------------------------

def cmd_arch_show(args: argparse.Namespace) -> int:
    from .arch import load_arch
    from .cost import count

    arch = load_arch(args.arch)
    cost = count(arch, resolution=args.resolution, num_classes=args.num_classes)
    r = cost.resolved
    if args.json:
        out = {"name": arch.name, "params": cost.params, "macs": cost.macs,
               "resolution": cost.resolution, "width": arch.width,
               "layers": [l._asdict() for l in cost.layers], "arch": arch.to_dict()}
        _print_json(out)
        return 0
    print(f"{arch.name or 'arch'}: width {arch.width:g}, input {r.resolution}x{r.resolution}, "
          f"{r.num_classes} classes")
    header = f"{'layer':<12}{'in':>6}{'exp':>6}{'out':>6}{'k':>3}{'SE':>4}{'str':>4}{'s':>3}{'d':>3}" \
             f"{'input':>9}{'params':>12}{'MACs':>14}"
    print(header)
    print("-" * len(header))
    layers = cost.layers
    print(f"{'stem':<12}{3:>6}{'':>6}{r.stem:>6}{3:>3}{'':>4}{2:>4}{'':>3}{'':>3}"
          f"{f'{r.resolution}²':>9}{_fmt_int(layers[0].params):>12}{_fmt_int(layers[0].macs):>14}")
    for b, layer in zip(r.blocks, layers[1:-2]):
        print(f"{layer.name:<12}{b.cin:>6}{b.mid:>6}{b.cout:>6}{b.k:>3}{'yes' if b.se_channels else '-':>4}"
              f"{b.stride:>4}{b.s:>3}{b.d:>3}{f'{b.h}²':>9}{_fmt_int(layer.params):>12}"
              f"{_fmt_int(layer.macs):>14}")
    fin, head = layers[-2], layers[-1]
    cin = r.blocks[-1].cout if r.blocks else r.stem
    print(f"{'final_conv':<12}{cin:>6}{'':>6}{r.final_conv:>6}{1:>3}{'':>4}{1:>4}{'':>3}{'':>3}"
          f"{f'{r.final_hw[0]}²':>9}{_fmt_int(fin.params):>12}{_fmt_int(fin.macs):>14}")
    print(f"{'head':<12}{r.final_conv:>6}{'':>6}{r.head:>6}{'':>3}{'':>4}{'':>4}{'':>3}{'':>3}"
          f"{'1²':>9}{_fmt_int(head.params):>12}{_fmt_int(head.macs):>14}")
    print("-" * len(header))
    print(f"{'total':<12}{'':>59}{_fmt_int(cost.params):>12}{_fmt_int(cost.macs):>14}")
    print(f"params {cost.params / 1e6:.2f}M, MACs {cost.macs / 1e6:.1f}M (conv+linear "
          f"multiply-accumulates, the paper's 'FLOPs'); unused k is shown but has no effect "
          f"in stride-1 identity blocks")
    return 0


def cmd_arch_sample(args: argparse.Namespace) -> int:
    from .arch import save_arch
    from .cost import count
    from .space import load_space

    space = load_space(args.space)
    labels = space.sample(args.seed)
    arch = space.to_arch(labels, name=f"{space.name}-seed{args.seed}")
    cost = count(arch)
    if args.out:
        save_arch(arch, args.out)
    if args.json:
        _print_json({"name": arch.name, "labels": labels, "params": cost.params, "macs": cost.macs,
                     "out": args.out, "arch": arch.to_dict()})
    else:
        where = f" -> {args.out}" if args.out else ""
        print(f"{arch.name}: params {cost.params / 1e6:.2f}M, MACs {cost.macs / 1e6:.1f}M{where}")
        if not args.out:
            print(arch.to_json())
    return 0


def cmd_arch_list(args: argparse.Namespace) -> int:
    from .arch import load_arch, registered_names
    from .cost import count

    rows = []
    for name in registered_names():
        c = count(load_arch(name))
        rows.append({"name": name, "params": c.params, "macs": c.macs})
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            print(f"{row['name']:<12} params {row['params']:>10,}  MACs {row['macs'] / 1e6:7.1f}M")
    return 0


# ---- space ---------------------------------------------------------------------------------

def cmd_space_show(args: argparse.Namespace) -> int:
    from .arch import load_arch, registered_names
    from .space import load_space

    space = load_space(args.space)
    info = space.summary()
    info["paper_points"] = [n for n in registered_names() if space.contains(load_arch(n))]
    info["labels"] = {name: list(choices) for name, choices in space.dimensions()}
    if args.json:
        _print_json(info)
        return 0
    print(f"space {info['name']} ({info['source']})")
    print(f"  {info['stages']} stages, up to {info['max_blocks']} blocks, {info['dimensions']} labels, "
          f"{info['size']:.3e} distinct networks, deployment resolution {info['resolution']}")
    print(f"  paper networks in the space: {', '.join(info['paper_points']) or 'none'}")
    for name, choices in info["labels"].items():
        print(f"  {name:<12} {choices}")
    return 0


# ---- train ---------------------------------------------------------------------------------

def cmd_train(args: argparse.Namespace) -> int:
    import sys as _sys
    from pathlib import Path

    from .arch import load_arch, save_arch
    from .data import load_data
    from .train import TrainingFailed, get_protocol, train

    import torch

    arch = load_arch(args.arch)
    protocol = get_protocol(args.protocol, epochs=args.epochs, seed=args.seed, batch_size=args.batch_size,
                            lr=args.lr, resolution=args.resolution, train_subset=args.subset)
    data = load_data(args.data, seed=protocol.seed, folder_size=protocol.resolution)
    if args.eval == "test":  # train on train + validation, score on the official test set
        data = data.for_test()
    data_tag = args.data.split(":")[0] + ("_test" if args.eval == "test" else "")
    out = Path(args.out or f"results/runs/train/{arch.name or 'arch'}_{data_tag}_seed{protocol.seed}")
    ckpt = out / "checkpoint.pt"
    if ckpt.exists() and not args.resume:
        raise GhostNASError(f"{out} already holds a training run; add --resume to continue it or "
                            "give another --out")
    if args.threads:
        torch.set_num_threads(args.threads)
    out.mkdir(parents=True, exist_ok=True)
    save_arch(arch, out / "arch.json")
    try:
        result = train(arch, data, protocol, out_dir=out, resume=args.resume, device=args.device,
                       progress=not args.json and _sys.stderr.isatty(), keep_model=True)
    except TrainingFailed as exc:
        raise GhostNASError(f"training failed: {exc}; try a lower --lr") from None
    from .io import atomic_write

    atomic_write(out / "model.pt", lambda tmp: torch.save(result.model.state_dict(), tmp))
    summary = {"arch": arch.name, "data": data.describe(), "scored_on": result.scored_on, "val_acc": result.val_acc,
               "epochs": result.epochs, "seconds": round(result.seconds, 2), "device": result.device,
               "protocol": result.protocol, "out": str(out)}
    from .io import atomic_write_text

    atomic_write_text(out / "result.json", json.dumps(summary, indent=1) + "\n")
    if args.json:
        _print_json(summary)
    else:
        for h in result.history:
            print(f"epoch {h['epoch']:>3}  train loss {h['train_loss']:.4f}  acc {h['train_acc']:.4f}  "
                  f"{result.scored_on} acc {h['val_acc']:.4f}  ({h['seconds']:.1f} s)")
        print(f"{arch.name}: {result.scored_on} top-1 {result.val_acc:.4f} on {data.name} after {result.epochs} epochs, "
              f"{result.seconds:.1f} s on {result.device}; weights, metrics.csv and checkpoint in {out}")
    return 0


# ---- search and results --------------------------------------------------------------------

def cmd_search(args: argparse.Namespace) -> int:
    import sys as _sys

    from .search import SearchConfig, run_search

    cfg = SearchConfig(
        budgets=tuple(args.budget), space=args.space, data=args.data, protocol=args.protocol,
        epochs=args.epochs, trials=args.trials, timeout=args.timeout, study=args.study, out=args.runs,
        seed=args.seed, pareto=args.pareto, engine=args.engine, sampler=args.sampler,
        pruner=args.pruner, prefilter=args.prefilter, zero_cost=args.zero_cost, lut=args.lut,
        threads=args.threads, device=args.device, address=args.address,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        nni_strategy=args.nni_strategy, confirm=args.confirm, confirm_seeds=args.confirm_seeds,
        confirm_protocol=args.confirm_protocol, check_latency=args.check_latency,
        progress=not args.json and _sys.stderr.isatty())
    summary = run_search(cfg)
    if args.json:
        _print_json(summary)
    else:
        _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in summary["trials"].items())
    print(f"study {summary['study']} ({summary['run_dir']}): {counts}")
    for key, title in (("baseline", "hand-designed"), ("best_found", "best found")):
        if key in summary:
            b = summary[key]
            lat = f", {b['latency_ms']:.2f} ms predicted" if "latency_ms" in b else ""
            if "latency_ms_measured" in b:
                lat += (f", {b['latency_ms_measured']:.2f} ms measured here"
                        + ("" if b["latency_fits"] else " (over the budget)"))
            print(f"  {title:<14} trial {b['trial']:>3}: val top-1 {b['val_acc']:.4f}, "
                  f"{b['macs'] / 1e6:.1f}M MACs, {b['params'] / 1e6:.2f}M params{lat}")
    confirmed = summary.get("confirmed", {})
    if "found_minus_baseline_points" in summary:
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


def cmd_results_show(args: argparse.Namespace) -> int:
    from .results import find_run, load_study, rank_trials, trials_frame, write_results

    run_dir = find_run(args.study, args.runs)
    summary = write_results(run_dir, plots=False)
    if args.json:
        _print_json(summary)
        return 0
    _print_summary(summary)
    df = rank_trials(run_dir, trials_frame(load_study(run_dir)))
    cols = [c for c in ("number", "val_acc", "val_acc_mean", "macs", "params", "latency_ms", "latency_ms_measured",
                        "seconds", "baseline")
            if c in df.columns]
    if not df.empty:
        print(df[cols].head(args.top).to_string(index=False))
    return 0


# ---- export --------------------------------------------------------------------------------

def resolve_ranked_arch(study: str | None, out: str, rank: int):
    """(Arch, proxy weights path or None, trial row) of the rank-th best trial of a study."""
    from pathlib import Path

    from .results import find_run, load_study, rank_trials, trial_arch, trials_frame
    from .space import load_space

    run_dir = find_run(study, out)
    df = rank_trials(run_dir, trials_frame(load_study(run_dir)))
    if len(df) < rank or rank < 1:
        raise GhostNASError(f"study {run_dir.name} has {len(df)} complete trials; --rank must be 1..{len(df)}")
    row = df.iloc[rank - 1]
    config = json.loads((run_dir / "config.json").read_text())
    space = load_space(config["identity"]["space"])
    arch = trial_arch(space, row, name=f"{run_dir.name}-trial{int(row['number'])}")
    weights = Path(run_dir) / "weights" / f"trial_{int(row['number'])}.pt"
    return arch, (weights if weights.exists() else None), row


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export

    weights = None
    if args.arch == "best":
        arch, weights, row = resolve_ranked_arch(args.study, args.runs, args.rank)
        if args.with_weights and weights is None:
            from .search.context import KEEP_WEIGHTS

            raise GhostNASError(f"trial {int(row['number'])} kept no proxy weights (a search keeps those of "
                                f"its best {KEEP_WEIGHTS}, or of every --confirm finalist); export without "
                                "--with-weights")
    else:
        from .arch import load_arch

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
        _print_json(report)
    else:
        print(f"{report['arch']}: {report['num_classes']} classes at {report['resolution']}x{report['resolution']}"
              f"{', proxy weights' if report['weights'] else ', random init'} -> {args.out}/arch.json")
        for fmt, info in report["files"].items():
            print(f"  {fmt:<12} {info['path']}  ({info['bytes'] / 1e6:.1f} MB)  verified: max |diff| "
                  f"{info['max_abs_diff']:.2e} vs torch")
        print(f"next: ghostnas train {args.out}/arch.json --data folder:YOUR_DATA --epochs 30")
    return 0


# ---- latency tables ----------------------------------------------------------------------

def cmd_lut_build(args: argparse.Namespace) -> int:
    import sys as _sys

    from .cost.lut import build_lut
    from .space import load_space

    space = load_space(args.space)
    log = (lambda msg: print(msg, file=_sys.stderr)) if args.json else print
    model = build_lut(space, args.backend, args.out, threads=args.threads, max_entries=args.max_entries,
                      calibrate=args.calibrate, seed=args.seed, clock=args.clock,
                      reference=not args.no_reference,
                      progress=_sys.stderr.isatty() and not args.json,
                      log=log)
    a, b = model.calibration()
    info = {"lut": args.out, "entries": len(model.rows), "backend": args.backend, "threads": args.threads,
            "calibration": {"a": a, "b": b}}
    if args.json:
        _print_json(info)
    else:
        cal = info["calibration"]
        print(f"{info['entries']} entries in {args.out} (+ .meta.json); calibration: whole = "
              f"{cal.get('a', 1):.3f} x sum + {cal.get('b', 0):.3f} ms")
    return 0


def cmd_lut_check(args: argparse.Namespace) -> int:
    import sys as _sys

    from .cost.lut import LatencyModel, check_lut
    from .machine import busy_warning
    from .space import load_space

    model = LatencyModel.load(args.lut)
    space = load_space(args.space) if args.space else model.space()
    model.require_space(space)
    for note in (model.foreign_device(), busy_warning()):
        if note:
            print(note, file=_sys.stderr)
    report = check_lut(model, space, n=args.n, seed=args.seed, times=args.times,
                       progress=_sys.stderr.isatty() and not args.json)
    if args.json:
        _print_json(report)
    else:
        for row in report["per_arch"]:
            print(f"  arch {row['arch']:>3}: predicted {row['predicted_ms']:8.3f} ms  measured "
                  f"{row['measured_ms']:8.3f} ms  error {row['error_pct']:+6.1f}%")
        print(f"{report['n']} random Archs, {report['backend']}, {report['threads']} thread(s): MAPE "
              f"{100 * report['mape']:.1f}%, within 5% {100 * report['within_5pct']:.0f}%, within 10% "
              f"{100 * report['within_10pct']:.0f}%, Kendall tau {report['kendall_tau']:.3f}")
    return 0


def cmd_lut_export_blocks(args: argparse.Namespace) -> int:
    from .cost.lut import export_blocks
    from .space import load_space

    out = export_blocks(load_space(args.space), args.format, args.out, max_entries=args.max_entries,
                        networks=args.networks, seed=args.seed)
    print(f"wrote {out}/manifest.json, models/ and ghostnas_runner.py. On the device (numpy + "
          f"{'onnxruntime' if args.format == 'onnx' else 'ai-edge-litert'}, no torch):\n"
          f"  python ghostnas_runner.py {out.name} --threads 1\n"
          f"then copy the folder back and run: ghostnas lut import {out} --out my-device.csv")
    return 0


def cmd_lut_import(args: argparse.Namespace) -> int:
    from .cost.lut import import_measurements

    model = import_measurements(args.folder, args.out)
    a, b = model.calibration()
    info = {"lut": args.out, "entries": len(model.rows), "backend": model.meta["backend"],
            "device": model.meta["device"].get("cpu"), "calibration": {"a": a, "b": b}}
    if args.json:
        _print_json(info)
    else:
        print(f"{info['entries']} entries from {info['device']} ({info['backend']}) -> {args.out}")
    return 0


def cmd_lut_adb(args: argparse.Namespace) -> int:
    from .cost.lut.adb import run_adb

    out = run_adb(args.folder, serial=args.serial, threads=args.threads, warmup=args.warmup,
                  runs=args.runs, binary=args.binary)
    print(f"timed on the phone -> {out}; next: ghostnas lut import {args.folder} --out my-phone.csv")
    return 0


def cmd_lut_predict(args: argparse.Namespace) -> int:
    from .arch import load_arch
    from .cost.lut import LatencyModel, arch_entries

    model = LatencyModel.load(args.lut)
    arch = load_arch(args.arch)
    measured = [model.entry_ms(e)[1] for e in arch_entries(arch.resolve())]
    out = {"arch": arch.name, "latency_ms": model.predict_arch(arch), "entries": len(measured),
           "entries_measured": sum(measured), "backend": model.meta["backend"], "threads": model.meta["threads"]}
    if args.json:
        _print_json(out)
    else:
        print(f"{arch.name}: {out['latency_ms']:.3f} ms predicted ({out['entries_measured']}/{out['entries']} "
              f"entries measured, rest predicted) for {out['backend']}, {out['threads']} thread(s)")
    return 0


# ---- parser --------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="ghostnas",
        description="Hardware-aware architecture search over GhostNet's Ghost bottlenecks.")
    parser.add_argument("--version", action="version", version=f"ghostnas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(subparsers, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        p = subparsers.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    def group(name: str, help: str):
        actions = sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", metavar="ACTION")
        actions.required = True
        return actions

    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    arch = group("arch", "show, list and sample architectures")
    p = add(arch, "show", cmd_arch_show, "block table with per-block params and MACs")
    p.add_argument("arch", help="registered name (paper-0.5x, paper-1.0x, paper-1.3x) or arch JSON")
    p.add_argument("--resolution", type=int, help="input size to count at (default: the Arch's)")
    p.add_argument("--num-classes", type=int, help="classifier size (default: the Arch's)")
    json_flag(p)
    p = add(arch, "list", cmd_arch_list, "registered architectures")
    json_flag(p)
    p = add(arch, "sample", cmd_arch_sample, "draw a random Arch from a search space")
    p.add_argument("--space", help="space YAML or shipped name (default: ghostnet)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", help="write the arch JSON here")
    json_flag(p)

    space = group("space", "inspect search spaces")
    p = add(space, "show", cmd_space_show, "labels, choices and size of a search space")
    p.add_argument("space", nargs="?", help="space YAML or shipped name (default: ghostnet)")
    json_flag(p)

    p = add(sub, "train", cmd_train, "train an architecture on a dataset (checkpoints each epoch)")
    p.add_argument("arch", help="registered name, arch JSON, or a found architecture's JSON")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"{DATA_SPECS} (default {DEFAULT_DATA})")
    p.add_argument("--epochs", type=int, help="default: the protocol's (train: 10)")
    p.add_argument("--seed", type=int, help="initialisation, split and shuffling seed (default 0)")
    p.add_argument("--protocol", default="train", help="train (all data), proxy (the search's), long")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--resolution", type=int, help="training input size (default 32)")
    p.add_argument("--subset", type=int, help="use at most this many training images")
    p.add_argument("--eval", choices=("val", "test"), default="val",
                   help="val: train on the training split, score on validation (default); test: train on "
                   "train + validation, score on the official test set (report only; never select on it)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    p.add_argument("--out", help="run folder (default results/runs/train/ARCH_DATA_seedS)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    json_flag(p)

    p = add(sub, "search", cmd_search, "search the space under a budget (resumable study)")
    p.add_argument("--budget", action="append", required=True,
                   help="150MFLOPs, 0.3GFLOPs, 150MMACs, 5Mparams, 30ms (with --lut); repeat or "
                   "comma-separate for several")
    p.add_argument("--space", default="ghostnet", help="space YAML or shipped name (default ghostnet)")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"{DATA_SPECS} (default {DEFAULT_DATA})")
    p.add_argument("--trials", type=int, default=16, help="evaluated trials in the study (default 16); "
                   "over-budget samples are rejected before training and not counted")
    p.add_argument("--timeout", type=float, help="stop this run after SECONDS (finished trials are kept)")
    p.add_argument("--study", help="study name (default derived from the budget); the same name resumes")
    p.add_argument("--runs", "--out", dest="runs", default="results/runs", help="folder of run folders (default results/runs; --out is the old name)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed")
    p.add_argument("--pareto", action="store_true", help="accuracy vs MACs (or latency with --lut), NSGA-II")
    p.add_argument("--engine", default="optuna", choices=["optuna", "ray", "nni"])
    p.add_argument("--sampler", default="auto", choices=["auto", "tpe", "nsga2", "evolution", "random"])
    p.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"])
    p.add_argument("--prefilter", type=int, default=0, metavar="N",
                   help="score N feasible samples zero-cost and start from the best")
    p.add_argument("--zero-cost", default="naswot", choices=["naswot", "synflow", "gradnorm"])
    p.add_argument("--confirm", type=int, default=0, metavar="K",
                   help="after the search, re-train the K best found networks and the baseline on more "
                        "seeds (--confirm-seeds) and rank them by the mean (one proxy run is noisy)")
    p.add_argument("--confirm-seeds", type=int, default=CONFIRM_SEEDS, metavar="N",
                   help=f"with --confirm: seeds per finalist besides the trial's own (default {CONFIRM_SEEDS})")
    p.add_argument("--confirm-protocol", metavar="NAME",
                   help="with --confirm: re-train the finalists under this protocol instead (e.g. long: "
                        "10x the proxy's training; ranks by it alone)")
    p.add_argument("--protocol", default="proxy", help="training protocol of a trial (default proxy)")
    p.add_argument("--epochs", type=int, help="override the protocol's epochs")
    p.add_argument("--lut", help="latency table (CSV) for latency budgets and --pareto on latency")
    p.add_argument("--check-latency", type=int, default=CHECK_LATENCY, metavar="K",
                   help="with a latency budget: time up to K of the best found networks on this machine "
                        "(where the table was built here) and rank those measured over the budget last "
                        f"(default {CHECK_LATENCY}; 0: trust the table's prediction)")
    p.add_argument("--threads", type=int, help="torch CPU threads per process")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--address", help="ray: address of a running cluster (default: start a local one)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="ray: CPUs per trial")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="ray: GPUs per trial")
    p.add_argument("--nni-strategy", default="evolution", choices=["evolution", "random", "tpe"])
    json_flag(p)

    p = add(sub, "export", cmd_export, "write an architecture as pt / TorchScript / ONNX / TFLite, verified")
    p.add_argument("arch", help="'best' (from a study), a registered name, or an arch JSON")
    p.add_argument("--format", action="append", required=True,
                   help="pt, torchscript, onnx, tflite (repeat or comma-separate)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--study", help="with 'best': the study (default: the most recent)")
    p.add_argument("--runs", default="results/runs", help="with 'best': folder of run folders (default results/runs), as `search --runs`")
    p.add_argument("--rank", type=int, default=1, help="with 'best': 1 = best trial (after --confirm: best by mean over seeds), 2 = runner-up, ...")
    p.add_argument("--num-classes", type=int, help="classifier size (default: the arch's, or the "
                   "proxy's with --with-weights)")
    p.add_argument("--resolution", type=int, help="input size (default: the arch's deployment resolution)")
    p.add_argument("--with-weights", action="store_true", help="with 'best': include the proxy weights")
    p.add_argument("--weights", help="a state_dict file to export with the model")
    json_flag(p)

    lut = group("lut", "latency lookup tables: build on a device, check, predict")
    p = add(lut, "build", cmd_lut_build, "measure a space's block entries on this machine (resumable)")
    p.add_argument("--space", default="ghostnet")
    p.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "torch", "litert"],
                   help="litert needs the [tflite] extra")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-entries", type=int, help="measure a stratified sample of this many; the "
                   "predictor covers the rest")
    p.add_argument("--calibrate", type=int, default=16, help="random networks timed end to end to fit "
                   "whole = a * sum + b (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clock", choices=CLOCKS, default="auto",
                   help="auto (default): the thread's CPU time at 1 thread (immune to other processes), "
                   "wall time otherwise")
    p.add_argument("--no-reference", action="store_true", help="time entries alone instead of as "
                   "ratios to a reference block (the default cancels machine speed drift)")
    p.add_argument("--out", required=True, help="CSV file (metadata goes to FILE.meta.json)")
    json_flag(p)
    p = add(lut, "check", cmd_lut_check, "predicted vs measured end-to-end latency on random Archs")
    p.add_argument("--lut", required=True)
    p.add_argument("--space", help="default: the LUT's space")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--times", type=int, default=3,
                   help="separate timings per Arch, median taken (default 3)")
    json_flag(p)
    p = add(lut, "export-blocks", cmd_lut_export_blocks,
            "write one model per LUT entry + a torch-free runner, to time on another device")
    p.add_argument("--space", default="ghostnet")
    p.add_argument("--format", default="onnx", choices=["onnx", "tflite"])
    p.add_argument("--max-entries", type=int, help="a stratified sample of this many entries")
    p.add_argument("--networks", type=int, default=16, help="whole networks for calibration (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="folder to copy to the device")
    p = add(lut, "import", cmd_lut_import, "make a LUT from a device's measured.csv (runner output)")
    p.add_argument("folder", help="the export-blocks folder, back from the device")
    p.add_argument("--out", required=True, help="LUT CSV to write")
    json_flag(p)
    p = add(lut, "adb", cmd_lut_adb, "time an export-blocks --format tflite folder on an Android phone "
            "with TFLite's benchmark_model over adb")
    p.add_argument("folder")
    p.add_argument("--serial", help="adb device serial (default: the only one)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--binary", default="/data/local/tmp/benchmark_model",
                   help="benchmark_model path on the phone")
    p = add(lut, "predict", cmd_lut_predict, "predicted latency of one architecture")
    p.add_argument("arch")
    p.add_argument("--lut", required=True)
    json_flag(p)

    results = group("results", "tables and summaries of studies")
    p = add(results, "show", cmd_results_show, "summary and best trials of a study")
    p.add_argument("--study", help="study name (default: the most recent under --out)")
    p.add_argument("--runs", "--out", dest="runs", default="results/runs", help="folder of run folders (default results/runs; --out is the old name)")
    p.add_argument("--top", type=int, default=10)
    json_flag(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with sigint_as_interrupt():
            return args.handler(args)
    except GhostNASError as exc:
        print(f"ghostnas: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `ghostnas space show | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("ghostnas: interrupted; finished work is saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
