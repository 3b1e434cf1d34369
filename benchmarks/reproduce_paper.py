"""Paper networks vs searched networks at the paper's three complexity levels, decided on data the
search never saw.

    python benchmarks/reproduce_paper.py --data fashion-mnist --supernet DIR --threads 1
        [--levels 0.5 1.0 1.3] [--kinds macs latency] [--evaluators supernet proxy] [--seeds 3 4 5]

For each paper GhostNet (0.5x, 1.0x, 1.3x; 42, 141, 227M MACs) and each budget kind (its MACs; its
latency here with the LUT's backend, 1 thread, 224, batch 1: the search's budget is the paper
network as the table predicts it, the verdict compares measured times), a search within that budget
per evaluator (``supernet``: inherited weights of a supernet trained once; ``proxy``: a short
training from scratch), on the validation split only. The found network of a search is its best
by validation (proxy searches ``--confirm K``: its K best re-trained stand-alone on seeds 0-2,
best mean; ``--pick-long-seed S``: then the best of those by a longer training on seed S, still
scored on validation; supernet searches: by the supernet's score, ``--supernet-confirm K`` to
confirm them by proxy runs too, which on Fashion-MNIST rank worse than the supernet). Then every
compared network (the paper's three, every found one) is trained stand-alone under one evaluation
protocol on ``--seeds`` (kept apart from every selection seed): with a test split
(Fashion-MNIST, MNIST, CIFAR-10) the ``reference`` protocol on all training images, scored on the
official test set; without one (mnist5k-clutter) the ``long`` protocol, scored on validation.
Each found row carries its lead over the paper network of its level in points and the lead's
paired standard error (paired by seed). Where a lead is undecided after those seeds (positive,
short of the target, the target within 2 SE), the found and the paper network are trained on
``--extra-seeds`` too, one at a time, until it is decided or they run out (the issue: more seeds
where the margin is within 2 standard errors).

Verdict per (level, budget, evaluator): met when the found network is within the budget (MACs
counted; latency measured, not predicted) and leads by >= 0.5 points with the lead >= 2 paired
standard errors.

Files: for ``--data fashion-mnist`` (the data every accuracy claim of the project uses)
``results/paper_vs_search.csv`` and ``results/REPORT.md``, other data ``-<data>`` appended
(``REPORT-mnist5k-clutter.md``). Resumable: every training result is cached in
``paper_vs_search[-<data>]/evals.json``, searches are ordinary resumable studies under ``<work>/runs`` (their picks
in ``picks.json``), a missing supernet is trained (resumably) into ``--supernet``. Parallel: start
the same command in several processes (``--threads 1`` each, one per core); they share the work
unit by unit (the supernet, each search, each training: ``ghostnas.io.run_units``), a killed
one's unit is taken over from its checkpoint, and the last to finish writes the table.
Latencies are measured then, for every network with the same method (cached in
``latency-*.json`` with the network's digest), while the other processes are done or waiting.

``--budget-floor F``: every budget becomes the range F x budget to budget (``ghostnas search``'s
``LOW-HIGHMACs``), so a search cannot stop at a network that leaves most of it unspent, as the
proxy searches did. Its searches, table and report are apart (``-floorF`` appended); the
stand-alone trainings share the data's cache, so the paper networks are not trained again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from ghostnas import count, load_arch, paper_arch
from ghostnas.arch import Arch, kernel_acts
from ghostnas.cost.lut import LatencyModel
from ghostnas.data import DEFAULT_DATA, data_tag, load_data
from ghostnas.defaults import CONFIRM_SEEDS, SUPERNET_RECIPE
from ghostnas.io import WorkUnit, atomic_write, atomic_write_text, live_claims, merge_json, run_units, work_claim
from ghostnas.machine import describe
from ghostnas.search import SearchConfig, run_search
from ghostnas.space import load_space
from ghostnas.train import get_protocol, train_checkpointed

LUT = "results/luts/ghostnet-onnxruntime-1t.csv"
HEADLINE_DATA = "fashion-mnist"  # its files carry no suffix
COLUMNS = ["level", "budget", "model", "evaluator", "data", "params", "macs", "latency_ms", "acc_mean", "acc_sd",
           "seeds", "lead_points", "lead_se_points", "protocol", "split", "picked_by_val", "val_lead_points"]
MIN_LEAD_POINTS = 0.5
MIN_LEAD_SES = 2.0


class Evals:
    """Training results cached by (arch, protocol, seed, split), written after each one. Several
    processes may share the file."""

    def __init__(self, path: Path, data, epochs: dict[str, int] | None = None):
        self.path, self.data = path, data
        self.epochs = epochs or {}  # protocol name -> its epochs here (--eval-epochs)
        self.cache = json.loads(path.read_text()) if path.exists() else {}

    def protocol(self, name: str, seed: int):
        return get_protocol(name, epochs=self.epochs.get(name)).replace(seed=seed)

    def key(self, arch: Arch, protocol: str, seed: int, data=None) -> str:
        data = data or self.data
        proto = self.protocol(protocol, seed)
        parts = [arch.to_dict(), proto.to_dict()] + ([data.scored_on] if data.scored_on != "val" else [])
        return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def has(self, arch: Arch, protocol: str, seed: int, data=None) -> bool:
        """Whether the run is cached, by this or any other process sharing the file."""
        key = self.key(arch, protocol, seed, data)
        if key not in self.cache and self.path.exists():
            self.cache = json.loads(self.path.read_text())
        return key in self.cache

    def acc(self, arch: Arch, protocol: str, seed: int, data=None) -> float:
        data = data or self.data
        proto = self.protocol(protocol, seed)
        key = self.key(arch, protocol, seed, data)
        if not self.has(arch, protocol, seed, data):
            r = train_checkpointed(arch, data, proto)  # resumes a run stopped part-way
            # merged under a lock: other processes cache into the same file
            self.cache = merge_json(self.path, {key: {
                "arch": arch.name, "protocol": protocol, "seed": seed, "val_acc": r.val_acc,
                "split": r.scored_on, "seconds": round(r.seconds, 1)}})
            print(f"  {arch.name} {protocol} seed {seed} ({r.scored_on}): {r.val_acc:.4f} ({r.seconds:.0f} s)",
                  flush=True)
        return self.cache[key]["val_acc"]

    def training_hours(self) -> float:
        return sum(e.get("seconds", 0.0) for e in self.cache.values()) / 3600


def print_status(units: list[WorkUnit], evals: Evals, claims: Path) -> None:
    """How far a long run has come: each unit done, running (held by a live process: since when)
    or not, then every cached training by network."""
    done = [u.done() for u in units]
    skipped = [d and u.skipped() for u, d in zip(units, done)]
    running = live_claims(claims)
    print(f"{sum(done)} of {len(units)} units done ({sum(skipped)} of them not needed), "
          f"{sum(u.key in running and not d for u, d in zip(units, done))} running")
    for unit, d, skip in zip(units, done, skipped):
        holder = None if d else running.get(unit.key)
        note = ": not needed" if skip else ""
        if holder is not None:
            since = holder.get("since")
            note = f": running (pid {holder.get('pid')}" + (
                f", {(time.time() - since) / 60:.0f} min" if isinstance(since, (int, float)) else "") + ")"
        print(f"  [{'-' if skip else 'x' if d else '~' if holder is not None else ' '}] {unit.key}{note}")
    by_arch: dict[str, list] = {}
    for e in evals.cache.values():
        by_arch.setdefault(e["arch"], []).append(e)
    print(f"trainings cached: {len(evals.cache)} ({evals.training_hours():.1f} h)")
    for name, entries in sorted(by_arch.items()):
        runs = ", ".join(f"seed {e['seed']} {e['val_acc']:.4f}" for e in sorted(entries, key=lambda e: e["seed"]))
        print(f"  {name} ({entries[0]['protocol']}, {entries[0]['split']}): {runs}")


def best_found(cfg: SearchConfig, space, evals: Evals, pick_long_seed: int | None = None
               ) -> tuple[Arch | None, float | None]:
    """The study's best non-baseline network and the validation score that made it best: its mean
    over proxy seeds after ``--confirm`` (else the evaluator's score), or with ``pick_long_seed``
    its long training on that seed, the best by that of the confirmed finalists that met a latency
    budget when measured (the search times them: ``search.runner.check_latency``)."""
    summary = run_search(cfg)
    confirmed = summary.get("confirmed", {})
    name = f"found-{cfg.study}"  # one name for every candidate: the evals cache keys on it
    if pick_long_seed is not None:
        finalists = [f for f in confirmed.get("finalists", []) if not f["baseline"]]
        if not finalists:
            raise SystemExit("--pick-long-seed chooses among the confirmed finalists: give --confirm K")
        fitting = [f for f in finalists if f.get("latency_fits") is not False] or finalists
        scored = [(evals.acc(space.to_arch(f["arch"], name=name), "long", pick_long_seed), i, f)
                  for i, f in enumerate(fitting)]
        score, _, found = max(scored, key=lambda t: (t[0], -t[1]))  # ties: the better proxy mean
    else:
        found = confirmed.get("best_found") or summary.get("best_found")
        if not found:
            return None, None
        score = found["val_acc_mean"] if confirmed.get("best_found") else found["val_acc"]
    return space.to_arch(found["arch"], name=name), score


def stand_alone_view(data, protocol: str | None = None):
    """(the data every compared network is scored on, the protocol it trains under): the official
    test split and ``reference`` where the data has one, else validation and ``long``."""
    if data.x_test is not None:
        return data.for_test(), protocol or "reference"
    return data, protocol or "long"


def evaluate(arch: Arch, evals: Evals, protocol: str, seeds: list[int], data) -> list[float]:
    return [evals.acc(arch, protocol, s, data) for s in seeds]


def lead(found: list[float], paper: list[float]) -> tuple[float, float]:
    """Mean lead in points and its paired standard error (the same seeds: data order shared)."""
    diffs = [100 * (f - p) for f, p in zip(found, paper)]
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
    return statistics.mean(diffs), se


def undecided(points: float, se: float) -> bool:
    """Whether more seeds could still decide a lead: positive but short of the target, with the
    target within reach (the lead plus its margin of 2 SE reaches it)."""
    met = points >= MIN_LEAD_POINTS and points >= MIN_LEAD_SES * se
    return not met and points > 0 and points + MIN_LEAD_SES * se >= MIN_LEAD_POINTS


def wants_extra_seed(found: Arch, paper: Arch, extra: int, evals: Evals, protocol: str, data,
                     seeds: list[int], extra_seeds: list[int]) -> bool | None:
    """Whether ``found`` and ``paper`` are also evaluated on ``extra`` (one of ``extra_seeds``):
    the lead stayed undecided on every seed before it; None while one of those is not trained."""
    seeds = list(seeds)
    for seed in extra_seeds[:extra_seeds.index(extra) + 1]:
        if not all(evals.has(a, protocol, s, data) for a in (found, paper) for s in seeds):
            return None
        if not undecided(*lead(evaluate(found, evals, protocol, seeds, data),
                               evaluate(paper, evals, protocol, seeds, data))):
            return False
        seeds.append(seed)
    return True


def first_of_its_kind(study: str, studies: list[str], found: Callable[[str], Arch | None]) -> Arch:
    """``study``'s found network, named found-<S> after the first study S of ``studies`` (the
    table's order) that found the same network: the evals cache keys on the name, so a network two
    searches found (a proxy search under a larger budget can stop at the same small one) trains
    once. ``found(S)``: S's network, or None where it found none."""
    arch = found(study)
    same = arch.replace(name="").to_dict()
    for other in studies[:studies.index(study)]:
        theirs = found(other)
        if theirs is not None and theirs.replace(name="").to_dict() == same:
            return arch.replace(name=f"found-{other}")
    return arch.replace(name=f"found-{study}")


def block_table(paper: Arch, found: Arch) -> list[str]:
    """The paper's table layout (input, operator, #exp, #out, SE, stride) plus s, d and the
    expansion module (v1 / dfc), with the found network beside the paper's; changed cells in bold.
    Rows pair blocks by stage and position in the stage, so where the search dropped blocks the
    rest of the network still lines up ("-" for a block one side lacks). k reads "-" where the
    kernel does not act (a stride-1 block with an identity shortcut has no depthwise conv), so a
    k the paper wrote there is not counted as a change."""
    lines = ["| stage.block | input | paper: k, #exp, #out, SE, s, d, module | found: k, #exp, #out, SE, s, d, module |",
             "|---|---|---|---|"]
    paper_blocks = {(b.stage, b.index): b for b in paper.resolve().blocks}
    found_blocks = {(b.stage, b.index): b for b in found.resolve().blocks}
    for pos in sorted(paper_blocks.keys() | found_blocks.keys()):
        cells = []
        for b in (paper_blocks.get(pos), found_blocks.get(pos)):
            cells.append("-" if b is None else
                         [b.k if kernel_acts(b.cin, b.cout, b.stride) else "-", b.mid, b.cout,
                          "yes" if b.se_channels else "-", b.s, b.d, b.attn])
        if cells[0] != "-" and cells[1] != "-":
            cells[1] = [f"**{v}**" if v != p else str(v) for v, p in zip(cells[1], cells[0])]
        ref = paper_blocks.get(pos) or found_blocks[pos]
        other = found_blocks.get(pos)
        cin = f"{ref.cin}" if other is None or other.cin == ref.cin else f"{ref.cin} (found: {other.cin})"
        fmt = [c if c == "-" else ", ".join(map(str, c)) for c in cells]
        lines.append(f"| {pos[0]}.{pos[1]} | {ref.h}²x{cin} (stride {ref.stride}) | {fmt[0]} | {fmt[1]} |")
    return lines


def changes(paper: Arch, found: Arch) -> list[str]:
    """What the search changed against the paper network, counted, and where it spent the MACs."""
    pb = {(b.stage, b.index): b for b in paper.resolve().blocks}
    fb = {(b.stage, b.index): b for b in found.resolve().blocks}
    both = sorted(pb.keys() & fb.keys())
    counts = {"kernel": sum(kernel_acts(fb[p].cin, fb[p].cout, fb[p].stride) and fb[p].k != pb[p].k for p in both),
              "expansion": sum(fb[p].mid != pb[p].mid for p in both),
              "SE": sum(bool(fb[p].se_channels) != bool(pb[p].se_channels) for p in both),
              "s": sum(fb[p].s != pb[p].s for p in both), "d": sum(fb[p].d != pb[p].d for p in both)}
    dfc = [f"{p[0]}.{p[1]}" for p in sorted(fb) if fb[p].attn == "dfc"]

    def by_stage(arch: Arch) -> dict[str, float]:
        out: dict[str, float] = {}
        for layer in count(arch).layers:
            key = f"stage {layer.name.split('.')[1]}" if layer.name.startswith("blocks.") else layer.name
            out[key] = out.get(key, 0.0) + layer.macs / 1e6
        return out

    mp, mf = by_stage(paper), by_stage(found)
    spent = ", ".join(f"{k} {mp.get(k, 0):.1f}->{mf.get(k, 0):.1f}" for k in dict.fromkeys([*mp, *mf]))
    return [f"- Width {paper.width:g} -> {found.width:g}; blocks {len(pb)} -> {len(fb)} "
            f"({len(pb.keys() - fb.keys())} dropped); of the {len(both)} blocks both have, changed: "
            + ", ".join(f"{k} {v}" for k, v in counts.items()) + "; DFC attention in "
            + (f"{len(dfc)} blocks ({', '.join(dfc)})" if dfc else "no block") + ".",
            f"- MMACs by part, paper -> found: {spent}."]


def latency_budget(predicted_ms: float) -> str:
    """A latency budget the paper network fits, from its predicted time: rounded up to the
    microsecond. (Rounded to the nearest, 2.30218 ms read "2.302ms" and left paper-0.5x 0.2 us over
    its own budget, so it was not trial 0 of its study.)"""
    micros = math.ceil(predicted_ms * 1000)
    while float(f"{micros / 1000:.3f}") < predicted_ms:  # the product may have rounded down
        micros += 1
    return f"{micros / 1000:.3f}ms"


def with_floor(budget: str, fraction: float) -> str:
    """``budget`` (``NMACs`` or ``X.XXXms``) as the range from ``fraction`` of it up to it."""
    limit, unit = (budget[:-4], "MACs") if budget.endswith("MACs") else (budget[:-2], "ms")
    low = fraction * float(limit)
    return (f"{math.ceil(low)}" if unit == "MACs" else f"{low:.3f}") + f"-{limit}{unit}"


def measured_ms(path: Path, arch, lut: LatencyModel) -> float:
    """An Arch's latency measured with the LUT's backend and reference, cached in ``path``.

    A referenced LUT's milliseconds are its reference block's time when it was built, so two builds
    on one VM can differ in scale (this machine: 6.4 vs 8.9 ms for paper-1.0x, hours apart).
    Times from another build must not meet this one's predictions: the cache records the build."""
    build = {"date": lut.meta.get("device", {}).get("date"), "reference": lut.meta.get("reference")}
    digest = hashlib.sha1(arch.to_json().encode()).hexdigest()
    cached = json.loads(path.read_text()) if path.exists() else {}
    if cached.get("arch") == digest:  # another found network (e.g. picked another way): re-measure
        if cached.get("lut") != build:
            raise SystemExit(f"{path} was measured with another build of the LUT than {lut.path}; "
                             f"delete {path.parent}/latency-* and {path.parent}/runs/*-latency to "
                             "redo the latency budgets with this one")
        return cached["ms"]
    ms = lut.measure_arch(arch, times=3)
    atomic_write_text(path, json.dumps({"ms": ms, "lut": build, "arch": digest}) + "\n")
    return ms


def ensure_supernet(folder: Path, space, data_spec: str, recipe: str, epochs: int | None) -> None:
    """Train the supernet the searches need into ``folder`` (resumes a partial one)."""
    from ghostnas.supernet import get_supernet_protocol, train_supernet

    protocol = get_supernet_protocol(recipe, epochs=epochs)
    data = load_data(data_spec, seed=protocol.seed, folder_size=protocol.resolution)
    print(f"training the supernet into {folder} ({protocol.name}, {protocol.epochs} epochs)", flush=True)
    train_supernet(space, data, protocol, folder, resume=True, progress=sys.stderr.isatty())


def verdict(f: pd.Series, p: pd.Series) -> str:
    macs_budget = f.budget.endswith("MACs")
    over = f.macs > p.macs if macs_budget else f.latency_ms > p.latency_ms
    cost = (f"{f.macs / 1e6:.1f}M MACs vs {p.macs / 1e6:.1f}M" if macs_budget
            else f"measured {f.latency_ms:.2f} ms vs {p.latency_ms:.2f} ms")
    short = [why for why, bad in (
        (f"lead {f.lead_points:+.2f} points, under {MIN_LEAD_POINTS}", f.lead_points < MIN_LEAD_POINTS),
        (f"lead under {MIN_LEAD_SES:g} paired SE ({f.lead_se_points:.2f})",
         not f.lead_points >= MIN_LEAD_SES * f.lead_se_points),
        (f"over the budget: {cost}", over)) if bad]
    expected = ("" if pd.isna(f.get("val_lead_points")) else
                f"; the search's own {f.evaluator} scores expected {f.val_lead_points:+.2f} on validation")
    return (f"found {f.lead_points:+.2f} ± {f.lead_se_points:.2f} points (paired SE) at {cost}: "
            + ("target met" if not short else "target NOT met (" + "; ".join(short) + ")") + expected)


def val_lead(run: Path, picked_by: float) -> float | None:
    """The lead, in points, that the search's own evaluator gave the found network over the paper
    network (trial 0) on validation: what the search expected, beside what the test set shows.
    After ``--confirm`` both are means over the same proxy seeds; None where the paper network was
    not scored alike (not in the study, or not among the confirmed)."""
    confirm = run / "confirm.json"
    if confirm.exists():
        base = [e for e in json.loads(confirm.read_text()).values() if e["baseline"]]
        return 100 * (picked_by - statistics.mean(base[0]["val_accs"].values())) if base else None
    trials = pd.read_csv(run / "trials.csv")
    base = trials[trials.baseline.astype(bool) & (trials.state == "complete")]
    return None if base.empty else 100 * (picked_by - float(base.val_acc.iloc[0]))


def expected_vs_found(df: pd.DataFrame) -> list[str]:
    """Per evaluator: the leads its scores promised on validation against those found on the
    scored split; the search can do no better than its evaluator ranks."""
    lines = []
    for evaluator, sub in df[(df.model == "found") & df.val_lead_points.notna()].groupby("evaluator"):
        agree = int((sub.val_lead_points * sub.lead_points > 0).sum())
        lines.append(f"- The {evaluator} searches' own scores expected their found networks to lead the paper "
                     f"networks by {sub.val_lead_points.mean():+.2f} points on validation (mean of {len(sub)}); "
                     f"stand-alone they led by {sub.lead_points.mean():+.2f}, the same sign in {agree} of {len(sub)}.")
    return lines


def search_cost(runs: Path) -> str:
    """What the searches cost: candidate evaluations timed per trial, by evaluator, and the
    confirmation re-trainings counted (they are not timed)."""
    hours: dict[str, float] = {}
    confirm_runs = 0
    for study in sorted(p for p in runs.iterdir() if (p / "trials.csv").exists()):
        trials = pd.read_csv(study / "trials.csv")
        evaluator = str(trials.evaluator.dropna().iloc[0]) if trials.evaluator.notna().any() else "proxy"
        hours[evaluator] = hours.get(evaluator, 0.0) + trials.seconds.sum() / 3600
        if (study / "confirm.json").exists():
            confirm_runs += sum(len(e["val_accs"]) for e in json.loads((study / "confirm.json").read_text()).values())
    return ("; ".join(f"{e} searches' candidate evaluations {h:.1f} h" for e, h in sorted(hours.items()))
            + f"; plus {confirm_runs} proxy re-trainings of finalists (`--confirm`, not timed)")


def write_report(path: Path, df: pd.DataFrame, blocks: list[str], args, evals: Evals, eval_protocol: str,
                 split: str, n_scored: int, seconds: float, runs: Path) -> None:
    m = describe(threads=torch.get_num_threads())
    proto = evals.protocol(eval_protocol, 0)  # with its epochs as run here
    lines = [f"# Paper GhostNets vs searched networks on {args.data} (benchmarks/reproduce_paper.py)", "",
             f"{m['cpu']}, {m['cores']} cores, {m['threads']} torch threads, torch {m.get('torch')}; {m['date']}. "
             f"Cost, as each step timed itself ({args.threads or 'all'} torch thread(s) a process): stand-alone "
             f"trainings {evals.training_hours():.1f} h (every one cached for this data, which the reports on it "
             f"share); {search_cost(runs)}; this run {seconds / 60:.1f} min "
             "(cached results are not re-run).", "",
             f"- Evaluation: `{eval_protocol}` protocol ({proto.to_dict()}), seeds {args.seeds}, scored on the "
             f"{split} split ({n_scored:,} images), which no search or pick saw"
             + (f"; then seeds {args.extra_seeds}, one at a time, for a found network and its paper network while "
                "the lead is undecided (positive, short of the target, the target within 2 SE); a lead pairs "
                "the two networks over the found row's seeds" if args.extra_seeds else "") + ".",
             "- Searches: " + ", ".join(f"{args.supernet_trials} trials (supernet)" if e == "supernet" else
                                        f"{args.trials} trials (proxy, protocol `{args.search_protocol}`)"
                                        for e in args.evaluators)
             + "; the paper network as trial 0; found = "
             + (f"best mean over seeds 0-{CONFIRM_SEEDS} among the {args.confirm} best (`--confirm`)" if args.confirm
                else "best by the evaluator's score")
             + (f", then the best of those by a long training on seed {args.pick_long_seed}" if args.pick_long_seed
                is not None else "") + ", all on the validation split.",
             f"- Latency: the LUT's backend, 1 thread, batch 1, 224 (`{args.lut}`); a latency search's budget is the "
             "paper network as the table predicts it; the latencies below are measured, and so is the verdict.",
             *([f"- Budget floor: each search kept to {args.budget_floor:g} x its budget and up (`--budget-floor`); "
                "the target's budget is the upper end."] if args.budget_floor else []),
             f"- Target: within budget and a lead of >= {MIN_LEAD_POINTS} points with >= {MIN_LEAD_SES:g} paired SE.", "",
             "| level | budget | model | evaluator | params | MMACs | latency ms | acc (mean ± sd) | seeds | lead (points ± SE) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        led = "" if r.model == "paper" else f"{r.lead_points:+.2f} ± {r.lead_se_points:.2f}"
        lines.append(f"| {r.level} | {r.budget} | {r.model} | {r.evaluator or '-'} | {r.params / 1e6:.2f}M | "
                     f"{r.macs / 1e6:.1f} | {r.latency_ms:.2f} | {r.acc_mean:.4f} ± {r.acc_sd:.4f} | {r.seeds} | {led} |")
    lines += ["", "## Verdict per budget", ""]
    for (level, budget), sub in df.groupby(["level", "budget"], sort=False):
        p = sub[sub.model == "paper"].iloc[0]
        found = sub[sub.model == "found"]
        if found.empty:
            lines.append(f"- {level}, {budget}: no found network yet")
        for _, f in found.iterrows():
            lines.append(f"- {level}, {budget}, {f.evaluator}: {verdict(f, p)}")
    sds = df.drop_duplicates(subset=["params", "macs", "acc_mean"]).acc_sd
    p_mean = float(df.acc_mean.mean())
    lines += ["", "## What limits these numbers", "",
              f"- One run's seed sd, pooled over the {len(sds)} networks: {100 * float((sds ** 2).mean() ** 0.5):.2f} "
              f"points (largest {100 * float(sds.max()):.2f}); the {split} split's binomial SE at "
              f"{100 * p_mean:.1f}%: {100 * (p_mean * (1 - p_mean) / n_scored) ** 0.5:.2f} points per run.",
              "- Pairing by seed removes what two networks share on one seed (data order), not the rest of "
              "the seed noise; with 3 seeds the paired SE is itself uncertain (a t with 2 degrees of freedom).",
              *expected_vs_found(df),
              "", "## At ImageNet scale", "",
              "What this comparison would cost there (GPU-hours from a lent H200's measured throughput) and the "
              "one command that runs it: `docs/imagenet.md`, `benchmarks/imagenet_paper_vs_search.sh`.",
              "", "## Architectures (paper vs found)", "", *blocks]
    atomic_write_text(path, "\n".join(lines) + "\n")
    print("\n".join(lines))


def _has(path: Path, key: str) -> bool:
    return path.exists() and key in json.loads(path.read_text())


def supernet_trained(folder: Path, recipe: str, epochs: int | None) -> bool:
    from ghostnas.supernet import get_supernet_protocol

    record = folder / "supernet.json"
    protocol = get_supernet_protocol(recipe, epochs=epochs)
    return record.exists() and json.loads(record.read_text()).get("epochs_done", 0) >= protocol.epochs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", type=float, nargs="+", default=[0.5, 1.0, 1.3])
    ap.add_argument("--kinds", nargs="+", default=["macs", "latency"], choices=["macs", "latency"])
    ap.add_argument("--evaluators", nargs="+", choices=["proxy", "supernet"],
                    help="default: supernet and proxy with --supernet, else proxy")
    ap.add_argument("--supernet", help="the supernet folder (trained here first when it has none)")
    ap.add_argument("--supernet-recipe", default=SUPERNET_RECIPE)
    ap.add_argument("--supernet-epochs", type=int)
    ap.add_argument("--trials", type=int, default=32, help="trials of a proxy search")
    ap.add_argument("--supernet-trials", type=int, default=500, help="trials of a supernet search")
    ap.add_argument("--confirm", type=int, default=3, metavar="K",
                    help="proxy searches: pick the found network by its mean over seeds 0-2 among the "
                         "search's K best (0 = by the proxy's score alone)")
    ap.add_argument("--supernet-confirm", type=int, default=0, metavar="K",
                    help="the same for supernet searches (default 0: by the supernet's score; on "
                         "Fashion-MNIST proxy runs rank at tau ~0.06, the supernets at 0.35-0.37)")
    ap.add_argument("--pick-long-seed", type=int, metavar="S",
                    help="then pick among the --confirm finalists by a long training on seed S, on validation")
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5],
                    help="evaluation seeds (>= 3 for the target); keep them apart from the selection seeds")
    ap.add_argument("--extra-seeds", type=int, nargs="*", default=[6, 7],
                    help="then these, one at a time, for a found network (and its paper network) while its lead "
                         "is undecided: positive, short of the target, the target within 2 SE")
    ap.add_argument("--eval-protocol", help="default: reference when the data has a test split, else long")
    ap.add_argument("--eval-epochs", type=int, help="the evaluation protocol's epochs (default: its own)")
    ap.add_argument("--search-protocol", default="proxy", help="the proxy search's trials (default proxy)")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--lut", default=LUT)
    ap.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    ap.add_argument("--budget-floor", type=float, metavar="F",
                    help="search within F x budget to budget (0 < F < 1): found networks spend at least F of it")
    ap.add_argument("--out", default="results")
    ap.add_argument("--status", action="store_true",
                    help="print which units are done and the accuracies cached so far, then exit (runs nothing)")
    args = ap.parse_args()
    args.evaluators = args.evaluators or (["supernet", "proxy"] if args.supernet else ["proxy"])
    if "supernet" in args.evaluators and not args.supernet:
        ap.error("the supernet evaluator needs --supernet DIR")
    if set(args.extra_seeds) & set(args.seeds):
        ap.error("--extra-seeds must differ from --seeds")
    if args.pick_long_seed is not None and args.pick_long_seed in args.seeds + args.extra_seeds:
        ap.error(f"--pick-long-seed {args.pick_long_seed} is also an evaluation seed: selection and "
                 "evaluation need different seeds")
    if args.budget_floor is not None and not 0 < args.budget_floor < 1:
        ap.error(f"--budget-floor {args.budget_floor:g}: a fraction of the budget, above 0 and under 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    out = Path(args.out)
    data_suffix = "" if args.data == HEADLINE_DATA else f"-{data_tag(args.data)}"
    suffix = data_suffix + (f"-floor{args.budget_floor:g}" if args.budget_floor else "")
    work = out / f"paper_vs_search{suffix}"
    work.mkdir(parents=True, exist_ok=True)
    data = load_data(args.data)
    scored, eval_protocol = stand_alone_view(data, args.eval_protocol)
    # one cache of stand-alone trainings per data: a floored run reuses the paper networks' runs
    cache = out / f"paper_vs_search{data_suffix}"
    cache.mkdir(exist_ok=True)
    evals = Evals(cache / "evals.json", data, {eval_protocol: args.eval_epochs} if args.eval_epochs else None)
    picks = work / "picks.json"  # study -> {"picked_by_val": x}, or null when it found nothing
    space = load_space("ghostnet")
    lut = LatencyModel.load(args.lut)
    levels = []
    for width in args.levels:
        paper = paper_arch(width, resolution=space.resolution, num_classes=space.num_classes, dropout=space.dropout)
        # the search reads latency from the table, so its budget is the paper network as the table
        # predicts it: a table off by a few percent for this network (the default onnxruntime one
        # reads paper-0.5x 4.6% over its measured time) would otherwise put the paper network itself
        # over its own budget and leave the search almost nothing to find. Verdicts compare measured times.
        budgets = {"macs": f"{count(paper).macs}MACs"}
        if "latency" in args.kinds:  # (fitting a sampled table's predictor takes a while: only when needed)
            budgets["latency"] = latency_budget(lut.predict_arch(paper))
        if args.budget_floor:
            budgets = {kind: with_floor(b, args.budget_floor) for kind, b in budgets.items()}
        levels.append((f"{width:g}x", paper, budgets))

    def search_config(level: str, kind: str, evaluator: str, budget: str) -> SearchConfig:
        supernet = evaluator == "supernet"
        return SearchConfig(budgets=(budget,), data=args.data, seed=0, study=f"{level}-{kind}-{evaluator}",
                            protocol=args.search_protocol,
                            trials=args.supernet_trials if supernet else args.trials,
                            supernet=args.supernet if supernet else None, out=str(work / "runs"),
                            progress=False, lut=args.lut if kind == "latency" else None,
                            threads=args.threads, confirm=args.supernet_confirm if supernet else args.confirm)

    def all_picks() -> dict:
        return json.loads(picks.read_text()) if picks.exists() else {}

    def picked(study: str) -> dict | None:
        return all_picks().get(study)

    all_studies = [f"{level}-{kind}-{evaluator}" for level, _, _ in levels for kind in args.kinds
                   for evaluator in args.evaluators]

    def found_arch(study: str) -> Arch:
        chosen = all_picks()  # once: the units' done() checks call this while they poll
        return first_of_its_kind(study, all_studies, lambda st: load_arch(work / f"found-{st}.json")
                                 if chosen.get(st) is not None else None)

    def wants(study: str, paper: Arch, extra: int) -> bool | None:
        if not _has(picks, study):
            return None
        if picked(study) is None:
            return False
        return wants_extra_seed(found_arch(study), paper, extra, evals, eval_protocol, scored, args.seeds,
                                args.extra_seeds)

    def search(cfg: SearchConfig) -> None:
        print(f"{cfg.study}: searching within {cfg.budgets[0]}", flush=True)
        found, picked_by = best_found(cfg, space, evals, args.pick_long_seed)
        if found is not None:
            atomic_write_text(work / f"found-{cfg.study}.json", json.dumps(found.to_dict(), indent=1) + "\n")
        merge_json(picks, {cfg.study: None if found is None else {"picked_by_val": round(picked_by, 4)}})

    # The work as units any number of processes share (``work_claim``): the supernet, then every
    # search, then every stand-alone training, each done once by whichever process takes it first.
    supernet_done = lambda: supernet_trained(Path(args.supernet), args.supernet_recipe, args.supernet_epochs)  # noqa: E731
    units = []
    if "supernet" in args.evaluators:
        # Only the supernet searches need it: once they are all done, a deleted supernet is not retrained.
        needing = [st for st in all_studies if st.endswith("-supernet")]
        units.append(WorkUnit(
            "supernet", lambda: supernet_done() or set(needing) <= set(all_picks()),
            lambda: ensure_supernet(Path(args.supernet), space, args.data, args.supernet_recipe, args.supernet_epochs),
            skipped=lambda: not supernet_done()))
    for level, paper, budgets in levels:
        for kind in args.kinds:
            for evaluator in args.evaluators:
                cfg = search_config(level, kind, evaluator, budgets[kind])
                unit = WorkUnit(f"search {cfg.study}", lambda st=cfg.study: _has(picks, st), lambda c=cfg: search(c))
                if evaluator == "supernet":
                    unit.ready = supernet_done
                units.append(unit)
    for level, paper, budgets in levels:
        for seed in args.seeds:
            units.append(WorkUnit(f"train paper-{level} seed {seed}",
                                  lambda a=paper, sd=seed: evals.has(a, eval_protocol, sd, scored),
                                  lambda a=paper, sd=seed: evals.acc(a, eval_protocol, sd, scored)))
        for kind in args.kinds:
            for evaluator in args.evaluators:
                study = f"{level}-{kind}-{evaluator}"
                for seed in args.seeds:
                    units.append(WorkUnit(
                        f"train found-{study} seed {seed}",
                        lambda st=study, sd=seed: _has(picks, st) and (picked(st) is None or evals.has(
                            found_arch(st), eval_protocol, sd, scored)),
                        lambda st=study, sd=seed: evals.acc(found_arch(st), eval_protocol, sd, scored),
                        ready=lambda st=study: picked(st) is not None))
    for level, paper, budgets in levels:  # then more seeds where a lead is undecided
        studies = [f"{level}-{kind}-{evaluator}" for kind in args.kinds for evaluator in args.evaluators]
        for seed in args.extra_seeds:
            units.append(WorkUnit(
                f"train paper-{level} seed {seed} (if a lead is undecided)",
                lambda a=paper, sts=studies, sd=seed: evals.has(a, eval_protocol, sd, scored) or all(
                    wants(st, a, sd) is False for st in sts),
                lambda a=paper, sd=seed: evals.acc(a, eval_protocol, sd, scored),
                ready=lambda a=paper, sts=studies, sd=seed: any(wants(st, a, sd) for st in sts),
                skipped=lambda a=paper, sd=seed: not evals.has(a, eval_protocol, sd, scored)))
            for study in studies:
                units.append(WorkUnit(
                    f"train found-{study} seed {seed} (if its lead is undecided)",
                    lambda st=study, a=paper, sd=seed: (w := wants(st, a, sd)) is False or (
                        w is True and evals.has(found_arch(st), eval_protocol, sd, scored)),
                    lambda st=study, sd=seed: evals.acc(found_arch(st), eval_protocol, sd, scored),
                    ready=lambda st=study, a=paper, sd=seed: wants(st, a, sd) is True,
                    skipped=lambda st=study, a=paper, sd=seed: wants(st, a, sd) is False))
    if args.status:
        print_status(units, evals, work / "units")
        return
    run_units(units, work / "units")

    # The table and the report, from the caches, by one process (the others have nothing left).
    # Latencies are measured here, where the other processes are done or waiting: on a quiet machine.
    with work_claim(work / "units", "report") as mine:
        if not mine:
            print("another process is writing the table and the report", flush=True)
            return
        rows, blocks = [], []
        for level, paper, budgets in levels:
            paper_ms = measured_ms(work / f"latency-paper-{level}.json", paper, lut)
            paper_seeds = [*args.seeds, *(sd for sd in args.extra_seeds if evals.has(paper, eval_protocol, sd, scored))]
            paper_accs = evaluate(paper, evals, eval_protocol, paper_seeds, scored)
            cost = count(paper)
            common = {"level": level, "data": args.data, "seeds": " ".join(map(str, paper_seeds)),
                      "protocol": eval_protocol, "split": scored.scored_on}
            for kind in args.kinds:
                budget = budgets[kind]
                rows.append({**common, "budget": budget, "model": "paper", "evaluator": "", "params": cost.params,
                             "macs": cost.macs, "latency_ms": round(paper_ms, 3),
                             "acc_mean": round(statistics.mean(paper_accs), 4),
                             "acc_sd": round(statistics.stdev(paper_accs), 4) if len(paper_accs) > 1 else 0.0})
                for evaluator in args.evaluators:
                    study = f"{level}-{kind}-{evaluator}"
                    if picked(study) is None:
                        continue
                    found = found_arch(study)
                    found_ms = measured_ms(work / f"latency-found-{study}.json", found, lut)
                    seeds = [*args.seeds, *(sd for sd in args.extra_seeds if wants(study, paper, sd))]
                    accs = evaluate(found, evals, eval_protocol, seeds, scored)
                    points, se = lead(accs, evaluate(paper, evals, eval_protocol, seeds, scored))  # paired by seed
                    fc = count(found)
                    rows.append({**common, "seeds": " ".join(map(str, seeds)), "budget": budget, "model": "found",
                                 "evaluator": evaluator,
                                 "params": fc.params, "macs": fc.macs, "latency_ms": round(found_ms, 3),
                                 "acc_mean": round(statistics.mean(accs), 4),
                                 "acc_sd": round(statistics.stdev(accs), 4) if len(accs) > 1 else 0.0,
                                 "lead_points": round(points, 2), "lead_se_points": round(se, 2),
                                 "picked_by_val": picked(study)["picked_by_val"]})
                    run = work / "runs" / study
                    expected = None if args.pick_long_seed is not None else val_lead(run, picked(study)["picked_by_val"])
                    rows[-1]["val_lead_points"] = None if expected is None else round(expected, 2)
                    plots = [f"![accuracy vs {x}]({run.relative_to(out).as_posix()}/acc_vs_{x}.png)"
                             for x in ("macs", "latency") if (run / f"acc_vs_{x}.png").exists()]
                    blocks += [f"### {level}, budget {budget}, {evaluator} search", "",
                               f"Search: `{run}` (arch `found-{study}.json`).", "", *changes(paper, found), "",
                               *plots, "", *block_table(paper, found), ""]
        df = pd.DataFrame(rows, columns=COLUMNS)
        atomic_write(out / f"paper_vs_search{suffix}.csv", lambda tmp: df.to_csv(tmp, index=False))
        write_report(out / f"REPORT{suffix}.md", df, blocks, args, evals, eval_protocol, scored.scored_on,
                     len(scored.y_val), time.perf_counter() - t0, work / "runs")


if __name__ == "__main__":
    main()
