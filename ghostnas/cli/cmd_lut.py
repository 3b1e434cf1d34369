"""`ghostnas lut ...`: latency tables."""

from __future__ import annotations

import argparse

from .text import print_json


def build(args: argparse.Namespace) -> int:
    import sys as _sys

    from ..cost.lut import build_lut
    from ..cost.lut.build import DEFAULT_BUILD_MINUTES
    from ..space import load_space

    space = load_space(args.space)
    minutes = args.minutes if args.minutes is not None else (DEFAULT_BUILD_MINUTES if args.max_entries is None else None)
    log = (lambda msg: print(msg, file=_sys.stderr)) if args.json else print
    model = build_lut(space, args.backend, args.out, threads=args.threads, max_entries=args.max_entries,
                      calibrate=args.calibrate, seed=args.seed, clock=args.clock,
                      reference=not args.no_reference,
                      progress=_sys.stderr.isatty() and not args.json,
                      log=log, minutes=minutes)
    a, b = model.calibration()
    info = {"lut": args.out, "entries": len(model.rows), "backend": args.backend, "threads": args.threads,
            "calibration": {"a": a, "b": b}}
    if args.json:
        print_json(info)
    else:
        cal = info["calibration"]
        print(f"{info['entries']} entries in {args.out} (+ .meta.json); calibration: whole = "
              f"{cal.get('a', 1):.3f} x sum + {cal.get('b', 0):.3f} ms")
    return 0


def check(args: argparse.Namespace) -> int:
    import sys as _sys

    from ..cost.lut import LatencyModel, check_lut
    from ..machine import busy_warning
    from ..space import load_space

    model = LatencyModel.load(args.lut)
    space = load_space(args.space) if args.space else model.space()
    model.require_space(space)
    for note in (model.foreign_device(), busy_warning()):
        if note:
            print(note, file=_sys.stderr)
    report = check_lut(model, space, n=args.n, seed=args.seed, times=args.times,
                       progress=_sys.stderr.isatty() and not args.json,
                       log=lambda msg: print(msg, file=_sys.stderr))
    if args.json:
        print_json(report)
    else:
        for row in report["per_arch"]:
            print(f"  arch {row['arch']:>3}: predicted {row['predicted_ms']:8.3f} ms  measured "
                  f"{row['measured_ms']:8.3f} ms  error {row['error_pct']:+6.1f}%")
        print(f"{report['n']} random Archs, {report['backend']}, {report['threads']} thread(s): MAPE "
              f"{100 * report['mape']:.1f}%, within 5% {100 * report['within_5pct']:.0f}%, within 10% "
              f"{100 * report['within_10pct']:.0f}%, Kendall tau {report['kendall_tau']:.3f}")
    return 0


def export_blocks(args: argparse.Namespace) -> int:
    from ..cost.lut import export_blocks
    from ..space import load_space

    out = export_blocks(load_space(args.space), args.format, args.out, max_entries=args.max_entries,
                        networks=args.networks, seed=args.seed)
    print(f"wrote {out}/manifest.json, models/ and ghostnas_runner.py. On the device (numpy + "
          f"{'onnxruntime' if args.format == 'onnx' else 'ai-edge-litert'}, no torch):\n"
          f"  python ghostnas_runner.py {out.name} --threads 1\n"
          f"then copy the folder back and run: ghostnas lut import {out} --out my-device.csv")
    return 0


def import_table(args: argparse.Namespace) -> int:
    from ..cost.lut import import_measurements

    model = import_measurements(args.folder, args.out)
    a, b = model.calibration()
    info = {"lut": args.out, "entries": len(model.rows), "backend": model.meta["backend"],
            "device": model.meta["device"].get("cpu"), "calibration": {"a": a, "b": b}}
    if args.json:
        print_json(info)
    else:
        print(f"{info['entries']} entries from {info['device']} ({info['backend']}) -> {args.out}")
    return 0


def adb(args: argparse.Namespace) -> int:
    from ..cost.lut.adb import run_adb

    out = run_adb(args.folder, serial=args.serial, threads=args.threads, warmup=args.warmup,
                  runs=args.runs, binary=args.binary)
    print(f"timed on the phone -> {out}; next: ghostnas lut import {args.folder} --out my-phone.csv")
    return 0


def predict(args: argparse.Namespace) -> int:
    from ..arch import load_arch
    from ..cost.lut import LatencyModel, arch_entries

    model = LatencyModel.load(args.lut)
    arch = load_arch(args.arch)
    measured = [model.entry_ms(e)[1] for e in arch_entries(arch.resolve())]
    out = {"arch": arch.name, "latency_ms": model.predict_arch(arch), "entries": len(measured),
           "entries_measured": sum(measured), "backend": model.meta["backend"], "threads": model.meta["threads"]}
    if args.json:
        print_json(out)
    else:
        print(f"{arch.name}: {out['latency_ms']:.3f} ms predicted ({out['entries_measured']}/{out['entries']} "
              f"entries measured, rest predicted) for {out['backend']}, {out['threads']} thread(s)")
    return 0


