"""The command line as data: every command, its handler and its options (with their types and
ranges) in one table; :func:`build_parser` turns it into argparse."""

from __future__ import annotations

import argparse
from typing import Any, NamedTuple

from ..defaults import CHECK_LATENCY, CONFIRM_SEEDS, DATA_SPECS, DEFAULT_DATA, SUPERNET_RECIPE
from ..device_runner import CLOCKS
from .args import device, integer, non_empty, non_negative, opt, plain_name, positive, real, seed, threads

JSON = opt("--json", action="store_true", help="print one JSON object instead of text")
DATA = opt("--data", default=DEFAULT_DATA, type=non_empty, help=f"{DATA_SPECS} (default {DEFAULT_DATA})")
DEVICE = opt("--device", type=device, help="cpu, cuda or cuda:N (default: cuda when available)")
RUNS = opt("--runs", "--out", dest="runs", default="results/runs",
           help="folder of run folders (default results/runs; --out is its old name)")
SPACE = opt("--space", default="ghostnet", help="space YAML or shipped name (default ghostnet)")


class Command(NamedTuple):
    path: tuple[str, ...]  # ("lut", "build")
    handler: str  # "module:function" under ghostnas.cli
    help: str
    options: tuple = ()


GROUPS = {"arch": "show, list and sample architectures", "space": "inspect search spaces",
          "supernet": "weight-sharing supernets: train one, then search with --supernet",
          "lut": "latency lookup tables: build on a device, check, predict",
          "results": "tables and summaries of studies"}

COMMANDS = [
    Command(("arch", "show"), "cmd_arch:show", "block table with per-block params and MACs", (
        opt("arch", help="registered name (paper-0.5x, paper-1.0x, paper-1.3x) or arch JSON"),
        opt("--resolution", type=integer(8, 4096), help="input size to count at (default: the Arch's)"),
        opt("--num-classes", type=integer(1, 100_000), help="classifier size (default: the Arch's)"), JSON)),
    Command(("arch", "list"), "cmd_arch:list_registered", "registered architectures", (JSON,)),
    Command(("arch", "sample"), "cmd_arch:sample", "draw a random Arch from a search space", (
        opt("--space", help="space YAML or shipped name (default: ghostnet)"),
        opt("--seed", type=seed, required=True), opt("--out", help="write the arch JSON here"), JSON)),
    Command(("space", "show"), "cmd_arch:space_show", "labels, choices and size of a search space", (
        opt("space", nargs="?", help="space YAML or shipped name (default: ghostnet)"), JSON)),
    Command(("train",), "cmd_train:train", "train an architecture on a dataset (checkpoints each epoch)", (
        opt("arch", help="registered name, arch JSON, or a found architecture's JSON"), DATA,
        opt("--epochs", type=positive, help="default: the protocol's (train: 10)"),
        opt("--seed", type=seed, help="initialisation and shuffling seed (default 0)"),
        opt("--protocol", default="train", help="train (all data), proxy (the search's), long, reference"),
        opt("--batch-size", type=integer(1, 65536)),
        opt("--lr", type=real(0, 100, low_open=True, what="the learning rate must be")),
        opt("--resolution", type=integer(8, 4096), help="training input size (default 32)"),
        opt("--subset", type=positive, help="use at most this many training images"),
        opt("--init", metavar="supernet:DIR", help="start from the weights a trained supernet holds for this arch "
            "(fine-tuning); default: a fresh initialisation"),
        opt("--reparam", type=integer(0, 8), metavar="N",
            help="GhostNetV3's re-parameterisable training: N parallel conv+BN branches per Ghost-module "
            "and depthwise conv, merged into the plain network before saving (default 0: off)"),
        opt("--eval", choices=("val", "test"), default="val",
            help="val: train on the training split, score on validation (default); test: train on "
            "train + validation, score on the official test set (report only; never select on it)"),
        DEVICE, opt("--threads", type=threads, help="torch CPU threads (default: all cores)"),
        opt("--out", help="run folder (default results/runs/train/ARCH_DATA_seedS)"),
        opt("--resume", action="store_true", help="continue the run in --out"), JSON)),
    Command(("search",), "cmd_search:search", "search the space under a budget (resumable study)", (
        opt("--budget", action="append", required=True, type=non_empty,
            help="150MFLOPs, 0.3GFLOPs, 150MMACs, 5Mparams, 30ms (with --lut), or a range 120-150MFLOPs "
            "(candidates under its floor are rejected too); repeat or comma-separate"),
        opt("--space", help="space YAML or shipped name (default ghostnet; with --supernet, the space it was "
            "trained over)"), DATA,
        opt("--trials", type=positive, help="evaluated trials in the study (default 16, or 1000 with "
            "--supernet); samples outside the budget are rejected before training and not counted"),
        opt("--supernet", metavar="DIR", help="score candidates by a trained supernet's inherited weights "
            "(`ghostnas supernet train`): seconds per candidate, no training"),
        opt("--timeout", type=real(0, low_open=True, what="seconds must be"),
            help="stop this run after SECONDS (finished trials are kept)"),
        opt("--study", type=plain_name, help="study name (default derived from the budget); the same name resumes"),
        RUNS, opt("--seed", type=seed, default=0, help="sampler seed"),
        opt("--pareto", action="store_true", help="accuracy vs MACs (or latency with --lut), NSGA-II"),
        opt("--engine", default="optuna", choices=["optuna", "ray", "nni"]),
        opt("--sampler", default="auto", choices=["auto", "tpe", "nsga2", "evolution", "random"]),
        opt("--pruner", default="median", choices=["median", "hyperband", "none"]),
        opt("--prefilter", type=non_negative, default=0, metavar="N",
            help="score N feasible samples zero-cost and start from the best"),
        opt("--zero-cost", default="naswot", choices=["naswot", "synflow", "gradnorm"]),
        opt("--confirm", type=non_negative, default=0, metavar="K",
            help="after the search, re-train the K best found networks and the baseline on more "
            "seeds (--confirm-seeds) and rank them by the mean (one proxy run is noisy)"),
        opt("--confirm-seeds", type=positive, default=CONFIRM_SEEDS, metavar="N",
            help=f"with --confirm: seeds per finalist besides the trial's own (default {CONFIRM_SEEDS})"),
        opt("--confirm-protocol", metavar="NAME", help="with --confirm: re-train the finalists under this "
            "protocol instead (e.g. long: 10x the proxy's training; ranks by it alone)"),
        opt("--protocol", default="proxy", help="training protocol of a trial (default proxy)"),
        opt("--epochs", type=positive, help="override the protocol's epochs"),
        opt("--lut", help="latency table (CSV) for latency budgets and --pareto on latency"),
        opt("--allow-emulated", action="store_true", help="accept a table timed under emulation (qemu): its "
            "times are the emulator's, not the device's"),
        opt("--check-latency", type=non_negative, default=CHECK_LATENCY, metavar="K",
            help="with a latency budget: time up to K of the best found networks on this machine (where "
            "the table was built here) and rank those measured over the budget last "
            f"(default {CHECK_LATENCY}; 0: trust the table's prediction)"),
        opt("--threads", type=threads, help="torch CPU threads per process"), DEVICE,
        opt("--address", help="ray: address of a running cluster (default: start a local one)"),
        opt("--cpus-per-trial", type=real(0, 1024, low_open=True, what="CPUs per trial must be"), default=1.0,
            help="ray: CPUs per trial"),
        opt("--gpus-per-trial", type=real(0, 64, what="GPUs per trial must be"), default=0.0,
            help="ray: GPUs per trial"),
        opt("--nni-strategy", default="evolution", choices=["evolution", "random", "tpe"]), JSON)),
    Command(("supernet", "train"), "cmd_supernet:train", "train a weight-sharing supernet over a space (resumable)", (
        SPACE, DATA, opt("--out", required=True, help="the supernet's folder"),
        opt("--recipe", default=SUPERNET_RECIPE, help="progressive (default: the largest network alone for the "
            "first quarter of the epochs, then sandwich), sandwich (largest + smallest + random each step, in-place "
            "distillation), uniform (one random subnet a step), smoke"),
        opt("--epochs", type=positive), opt("--lr", type=real(0, 100, low_open=True, what="the learning rate must be")),
        opt("--batch-size", type=integer(1, 65536)), opt("--seed", type=seed),
        opt("--subset", type=positive, help="use at most this many training images"),
        opt("--threads", type=threads, help="torch CPU threads (default: all cores)"), DEVICE,
        opt("--resume", action="store_true", help="continue the training in --out"), JSON)),
    Command(("export",), "cmd_search:export", "write an architecture as pt / TorchScript / ONNX / TFLite, verified", (
        opt("arch", help="'best' (from a study), a registered name, or an arch JSON"),
        opt("--format", action="append", required=True, type=non_empty,
            help="pt, torchscript, onnx, tflite (repeat or comma-separate)"),
        opt("--out", required=True, help="output folder"),
        opt("--study", type=plain_name, help="with 'best': the study (default: the most recent)"),
        opt("--runs", default="results/runs", help="with 'best': folder of run folders (default "
            "results/runs), as `search --runs`"),
        opt("--rank", type=positive, default=1, help="with 'best': 1 = best trial (after --confirm: best "
            "by mean over seeds), 2 = runner-up, ..."),
        opt("--num-classes", type=integer(1, 100_000), help="classifier size (default: the arch's, or "
            "the proxy's with --with-weights)"),
        opt("--resolution", type=integer(8, 4096), help="input size (default: the arch's deployment resolution)"),
        opt("--with-weights", action="store_true", help="with 'best': include the kept weights"),
        opt("--weights", help="a state_dict file to export with the model"), JSON)),
    Command(("lut", "build"), "cmd_lut:build", "measure a space's block entries on this machine (resumable)", (
        SPACE, opt("--backend", default="onnxruntime", choices=["onnxruntime", "torch", "litert"],
                   help="litert needs the [tflite] extra"),
        opt("--threads", type=threads, default=1),
        opt("--max-entries", type=positive, help="measure a stratified sample of this many; the "
            "predictor covers the rest"),
        opt("--minutes", type=real(0, 10_000), help="time budget of this run, calibration included "
            "(default 20 without --max-entries; 0: no limit); rerun to grow the table"),
        opt("--calibrate", type=non_negative, default=32, help="random networks timed end to end (during "
            "and after the entries) to fit whole = a * sum + b (default 32)"),
        opt("--seed", type=seed, default=0),
        opt("--clock", choices=CLOCKS, default="auto", help="auto (default): the thread's CPU time at 1 "
            "thread (immune to other processes), wall time otherwise"),
        opt("--no-reference", action="store_true", help="time entries alone instead of as ratios to a "
            "reference block (the default cancels machine speed drift)"),
        opt("--out", required=True, help="CSV file (metadata goes to FILE.meta.json)"), JSON)),
    Command(("lut", "check"), "cmd_lut:check", "predicted vs measured end-to-end latency on random Archs", (
        opt("--lut", required=True), opt("--space", help="default: the LUT's space"),
        opt("--n", type=integer(2, 100_000), default=50, help="random networks (at least 2 for a rank correlation)"),
        opt("--seed", type=seed, default=1234),
        opt("--times", type=positive, default=3, help="separate timings per Arch, median taken (default 3)"),
        JSON)),
    Command(("lut", "export-blocks"), "cmd_lut:export_blocks",
            "write one model per LUT entry + a torch-free runner, to time on another device", (
        SPACE, opt("--format", default="onnx", choices=["onnx", "tflite"]),
        opt("--max-entries", type=positive, help="a stratified sample of this many entries"),
        opt("--networks", type=non_negative, default=16, help="whole networks for calibration (default 16)"),
        opt("--seed", type=seed, default=0), opt("--out", required=True, help="folder to copy to the device"))),
    Command(("lut", "import"), "cmd_lut:import_table", "make a LUT from a device's measured.csv (runner output)", (
        opt("folder", help="the export-blocks folder, back from the device"),
        opt("--out", required=True, help="LUT CSV to write"), JSON)),
    Command(("lut", "adb"), "cmd_lut:adb", "time an export-blocks --format tflite folder on an Android "
            "phone with TFLite's benchmark_model over adb", (
        opt("folder"), opt("--serial", help="adb device serial (default: the only one)"),
        opt("--threads", type=threads, default=1), opt("--warmup", type=non_negative, default=10),
        opt("--runs", type=positive, default=50),
        opt("--binary", default="/data/local/tmp/benchmark_model", help="benchmark_model path on the phone"))),
    Command(("lut", "predict"), "cmd_lut:predict", "predicted latency of one architecture", (
        opt("arch"), opt("--lut", required=True), JSON)),
    Command(("results", "show"), "cmd_search:results_show", "summary and best trials of a study", (
        opt("--study", type=plain_name, help="study name (default: the most recent under --runs)"), RUNS,
        opt("--top", type=positive, default=10), JSON)),
]


def build_parser(commands: list[Command] = COMMANDS) -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="ghostnas", description="Hardware-aware architecture search over GhostNet's Ghost bottlenecks.")
    parser.add_argument("--version", action="version", version=f"ghostnas {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, Any] = {}
    for cmd in commands:
        where = top
        if len(cmd.path) == 2:
            if cmd.path[0] not in groups:
                groups[cmd.path[0]] = top.add_parser(cmd.path[0], help=GROUPS[cmd.path[0]]).add_subparsers(
                    dest=f"{cmd.path[0]}_command", metavar="ACTION", required=True)
            where = groups[cmd.path[0]]
        p = where.add_parser(cmd.path[-1], help=cmd.help, description=cmd.help)
        p.set_defaults(handler=cmd.handler)
        for flags, kwargs in cmd.options:
            p.add_argument(*flags, **kwargs)
    return parser
