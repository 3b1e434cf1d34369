"""The search loop shared by every engine.

A study lives in one run folder (``results/runs/<study>/``): an Optuna journal (``study.journal``,
append-only, safe for several processes), the search's ``config.json``, the trials table, a summary,
plots and the best trials' proxy weights. Whatever engine proposes candidates, every evaluated
trial is written to that journal, so results, resume and export work the same for all.

Per candidate: labels -> Arch -> analytic cost (and LUT latency) -> over budget? rejected before
any training (told to the sampler as pruned, so TPE learns to avoid the region; not counted as a
trial) -> proxy training with per-epoch reports (median pruning) -> accuracy.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..arch import Arch, paper_arch
from ..cost import count
from ..defaults import CHECK_LATENCY, CONFIRM_SEEDS, DEFAULT_DATA
from ..errors import GhostNASError
from ..io import atomic_write_text
from ..space import Labels, SearchSpace, load_space
from .budget import Budget, parse_budgets

WORKER = f"{socket.gethostname()}:{os.getpid()}"
MAX_REJECTIONS = 5000  # per accepted trial, before we call the budget infeasible for the space
KEEP_WEIGHTS = 3  # proxy weights kept for the best trials (for `export best --with-weights`)
# Fields that define a study: resuming with different values would mix incomparable trials.
IDENTITY_FIELDS = ("budgets", "space", "data", "protocol", "epochs", "pareto", "lut")


@dataclass
class SearchConfig:
    budgets: tuple[str, ...] = ("150MFLOPs",)
    space: str = "ghostnet"
    data: str = DEFAULT_DATA
    protocol: str = "proxy"
    epochs: int | None = None  # override the protocol's epochs
    trials: int = 16
    timeout: float | None = None  # seconds for this invocation
    study: str | None = None
    out: str = "results/runs"
    seed: int = 0
    pareto: bool = False
    engine: str = "optuna"  # optuna | ray | nni
    sampler: str = "auto"  # auto (tpe; nsga2 with --pareto) | tpe | evolution | random | nsga2
    pruner: str = "median"  # median | hyperband | none
    prefilter: int = 0  # score N feasible samples zero-cost, start from the best
    zero_cost: str = "naswot"
    lut: str | None = None
    threads: int | None = None
    device: str | None = None
    address: str | None = None  # ray: join this cluster instead of starting a local one
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    nni_strategy: str = "evolution"  # evolution | random | tpe
    confirm: int = 0  # re-train the best K found networks and the baseline on more seeds
    confirm_seeds: int = CONFIRM_SEEDS  # seeds seed+1 .. seed+N per confirmed network
    confirm_protocol: str | None = None  # None: the trials' protocol; e.g. "long" ranks by 10x training
    check_latency: int = CHECK_LATENCY  # latency budget: time up to K best found networks here (0: off)
    progress: bool = True

    def identity(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
                if k in IDENTITY_FIELDS}

    def study_name(self) -> str:
        if self.study:
            return self.study
        budgets = parse_budgets(self.budgets)
        return "search-" + "-".join(b.slug() for b in budgets) + ("-pareto" if self.pareto else "")


@dataclass
class Context:
    """Everything a trial needs, loaded once per process."""

    config: SearchConfig
    space: SearchSpace
    budgets: tuple[Budget, ...]
    run_dir: Path
    data: Any = None
    protocol: Any = None
    latency_fn: Callable[[Arch], float] | None = None
    started: float = field(default_factory=time.perf_counter)

    def cost_attrs(self, arch: Arch) -> dict[str, Any]:
        cost = count(arch)
        attrs: dict[str, Any] = {"macs": cost.macs, "params": cost.params}
        if self.latency_fn is not None:
            attrs["latency_ms"] = round(float(self.latency_fn(arch)), 4)
        return attrs

    def over_budget(self, attrs: dict[str, Any]) -> str | None:
        for b in self.budgets:
            value = b.value_of(attrs["macs"], attrs["params"], attrs.get("latency_ms"))
            if value > b.limit:
                return f"{b.kind} {value:g} > {b.limit:g} ({b.text})"
        return None

    def objective_cost_key(self) -> str:
        return "latency_ms" if self.latency_fn is not None else "macs"


def make_context(cfg: SearchConfig) -> Context:
    budgets = parse_budgets(cfg.budgets)
    space = load_space(cfg.space)
    latency_fn = None
    if cfg.lut:
        from ..cost.latency import LatencyModel

        latency_fn = LatencyModel.load(cfg.lut).predict_arch
    elif any(b.kind == "latency_ms" for b in budgets):
        raise GhostNASError("a latency budget needs a latency table: pass --lut FILE "
                            "(build one with `ghostnas lut build`, or use results/luts/*.csv)")
    if cfg.engine not in ("optuna", "ray", "nni"):
        raise GhostNASError(f"unknown engine {cfg.engine!r}; use optuna, ray or nni")
    if cfg.trials < 1:
        raise GhostNASError("--trials must be at least 1")
    if cfg.confirm < 0 or (cfg.confirm and cfg.confirm_seeds < 1):
        raise GhostNASError("--confirm K and --confirm-seeds N must be at least 1 (K 0: no confirming)")
    if cfg.check_latency < 0:
        raise GhostNASError("--check-latency K must be 0 (off) or more")
    if cfg.confirm_protocol is not None:
        from ..train import get_protocol

        get_protocol(cfg.confirm_protocol)  # an unknown name fails now, not after the search
    run_dir = Path(cfg.out) / cfg.study_name()
    ctx = Context(cfg, space, budgets, run_dir, latency_fn=latency_fn)
    smallest = space.to_arch(space.smallest_labels())
    reason = ctx.over_budget(ctx.cost_attrs(smallest))
    if reason:
        raise GhostNASError(f"no network of space {space.name!r} fits the budget: even the smallest "
                            f"is over ({reason}); raise the budget or use a smaller space")
    return ctx


def load_training(ctx: Context) -> None:
    import torch

    from ..data import load_data
    from ..train import get_protocol

    cfg = ctx.config
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ctx.protocol = get_protocol(cfg.protocol, epochs=cfg.epochs)
    ctx.data = load_data(cfg.data, seed=ctx.protocol.seed, folder_size=ctx.protocol.resolution)


def check_config(ctx: Context) -> None:
    """Write config.json for a new study; refuse to resume one with a different identity."""
    path = ctx.run_dir / "config.json"
    mine = ctx.config.identity()
    if path.exists():
        try:
            theirs = json.loads(path.read_text()).get("identity", {})
        except (OSError, json.JSONDecodeError) as exc:
            raise GhostNASError(f"{path}: unreadable ({exc}); fix or delete it") from None
        diff = {k: (theirs.get(k), mine[k]) for k in mine if theirs.get(k) != mine[k]}
        if diff:
            what = "; ".join(f"{k}: study has {a!r}, you gave {b!r}" for k, (a, b) in diff.items())
            raise GhostNASError(f"study {ctx.run_dir.name!r} was made with other settings ({what}); "
                                "use the same settings to resume or --study NEW for a new search")
        return
    record = {"identity": mine, "config": dataclasses.asdict(ctx.config),
              "protocol": ctx.protocol.to_dict() if ctx.protocol else None}
    atomic_write_text(path, json.dumps(record, indent=1, default=list) + "\n")


def baseline(ctx: Context) -> tuple[Arch, Labels] | None:
    """The paper network at the largest width of the space that fits every budget."""
    for width in sorted(ctx.space.width, reverse=True):
        arch = paper_arch(width, resolution=ctx.space.resolution, num_classes=ctx.space.num_classes,
                          dropout=ctx.space.dropout)
        if not ctx.space.contains(arch):
            return None
        if ctx.over_budget(ctx.cost_attrs(arch)) is None:
            return arch, ctx.space.to_labels(arch)
    return None


def evaluate(ctx: Context, arch: Arch, report: Callable[[int, float], None] | None,
             weights_path: Path | None = None) -> dict[str, Any]:
    """Proxy-train one candidate; returns the user attributes to record."""
    import torch

    from ..io import atomic_write
    from ..train import train

    result = train(arch, ctx.data, ctx.protocol, on_epoch=report, device=ctx.config.device,
                   keep_model=weights_path is not None)
    if weights_path is not None:
        state = result.model.state_dict()
        atomic_write(weights_path, lambda tmp: torch.save(state, tmp))
    return {"val_acc": result.val_acc, "seconds": round(result.seconds, 2),
            "history": [h["val_acc"] for h in result.history], "device": result.device}


def run_search(cfg: SearchConfig) -> dict[str, Any]:
    """Run (or resume) a search; returns the summary written to ``summary.json``."""
    ctx = make_context(cfg)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    load_training(ctx)
    check_config(ctx)
    from ..io import sigint_watch
    from ..results import write_results

    with sigint_watch():
        if cfg.engine == "optuna":
            from .optuna_engine import run_optuna

            run_optuna(ctx)
        elif cfg.engine == "ray":
            from .ray_engine import run_ray

            run_ray(ctx)
        else:
            from .nni_engine import run_nni

            run_nni(ctx)
        if cfg.confirm:
            confirm_best(ctx, cfg.confirm)
        if cfg.check_latency and any(b.kind == "latency_ms" for b in ctx.budgets):
            check_latency(ctx, cfg.check_latency)
        return write_results(ctx.run_dir, plots=True)


def confirm_best(ctx: Context, k: int) -> dict[str, Any]:
    """Re-train the ``k`` best found networks and the baseline on ``confirm_seeds`` more seeds.

    Why: one proxy run's seed noise is several points (results/benchmarks/proxy_fidelity.md), so
    the trial that scored best is partly a lucky seed (its 3-seed mean came out 3-7 points lower
    in results/REPORT.md). Ranking the finalists by their mean over seeds picks more honestly.
    With ``confirm_protocol`` (e.g. ``long``) the finalists are re-trained under that protocol
    instead, and ranked by it alone (the trial's proxy score is not mixed in): a short proxy
    favours networks that learn fast, and a longer training is the closer judge of the end result.
    Results go to ``confirm.json`` in the run folder after each training (resumable)."""
    import pandas as pd

    from ..io import merge_json
    from ..results import load_study, ranked, trials_frame
    from ..train import get_protocol, train

    cfg = ctx.config
    protocol = ctx.protocol
    if cfg.confirm_protocol is not None:
        protocol = get_protocol(cfg.confirm_protocol).replace(seed=ctx.protocol.seed)
    same = protocol == ctx.protocol
    path = ctx.run_dir / "confirm.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    for key, entry in done.items():  # entries written before protocols were recorded: the trials'
        if entry.get("protocol", ctx.protocol.to_dict()) != protocol.to_dict():
            raise GhostNASError(f"{path}: trial {key} was confirmed under protocol "
                                f"{entry.get('protocol', ctx.protocol.to_dict())['name']!r}, not "
                                f"{protocol.name!r}; use that --confirm-protocol, or delete the file "
                                "to confirm again")
    top = ranked(trials_frame(load_study(ctx.run_dir)))
    finalists = pd.concat([top[~top.baseline].head(k), top[top.baseline].head(1)])
    for _, row in finalists.iterrows():
        key = str(int(row["number"]))
        accs = dict(done.get(key, {}).get("val_accs", {str(protocol.seed): float(row["val_acc"])} if same else {}))
        arch = trial_arch(ctx, row)
        for seed in range(protocol.seed + 1, protocol.seed + 1 + cfg.confirm_seeds):
            if str(seed) not in accs:
                accs[str(seed)] = train(arch, ctx.data, protocol.replace(seed=seed),
                                        device=cfg.device).val_acc
                done = merge_json(path, {key: {"baseline": bool(row["baseline"]), "val_accs": accs,
                                               "protocol": protocol.to_dict()}})
    return done


def trial_arch(ctx: Context, row) -> Arch:
    from ..results import trial_arch as arch_of_row

    return arch_of_row(ctx.space, row, name=f"{ctx.run_dir.name}-t{int(row['number'])}")


def check_latency(ctx: Context, k: int) -> dict[str, Any]:
    """Time the best found networks here, end to end, and record whether each meets the latency
    budget when measured rather than predicted.

    Why: a table predicts a whole network within a few percent (`lut check`: MAPE 2-5%), so a
    network predicted just under the budget can measure just over it (benchmarks/reproduce_paper.py,
    1.0x: predicted under 8.96 ms, measured 9.16 ms). In rank order (after ``--confirm``, the
    finalists by their mean first), networks are timed until one fits, at least every confirmed
    finalist and at most ``k`` (more when there are more finalists); the baseline is timed too.
    The results then rank a network measured over the budget below every other (so `export
    best` exports one that fits). Only where this machine can time like the table was built (see
    ``LatencyModel.why_not_timeable_here``); elsewhere (a phone's table) the prediction stands.
    Written to ``latency_check.json`` after each timing; a rerun re-times nothing it has."""
    import pandas as pd

    from ..cost.latency import LatencyModel
    from ..io import merge_json
    from ..results import load_study, ranked_confirmed, trials_frame

    lut = LatencyModel.load(ctx.config.lut)
    why = lut.why_not_timeable_here()
    if why:
        print(f"latency budget met by the table's prediction only (not timed here: {why})", flush=True)
        return {}
    limit = next(b.limit for b in ctx.budgets if b.kind == "latency_ms")
    build = {"lut": str(lut.path), "built": (lut.meta.get("device") or {}).get("date"),
             "reference": lut.meta.get("reference"), "budget_ms": limit}
    path = ctx.run_dir / "latency_check.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    if any(e.get("build") != build for e in done.values()):  # timed for another table or budget
        done = {key: e for key, e in done.items() if e.get("build") == build}
        atomic_write_text(path, json.dumps(done, indent=1) + "\n")
    top = ranked_confirmed(ctx.run_dir, trials_frame(load_study(ctx.run_dir)))
    found = top[~top.baseline]
    must = int(found.val_acc_mean.notna().sum()) if "val_acc_mean" in found else 0
    timed, fits = 0, False
    for _, row in pd.concat([top[top.baseline].head(1), found]).iterrows():
        if not row["baseline"] and (timed >= max(k, must) or (fits and timed >= must)):
            break
        key = str(int(row["number"]))
        if key not in done:
            measured = lut.measure_arch(trial_arch(ctx, row), times=3)
            done = merge_json(path, {key: {"predicted_ms": float(row["latency_ms"]), "measured_ms": round(measured, 4),
                                           "fits": measured <= limit, "baseline": bool(row["baseline"]),
                                           "build": build}})
        if not row["baseline"]:
            timed += 1
            fits = fits or done[key]["fits"]
    if not fits:
        print(f"none of the {timed} best found networks measured within {limit:g} ms here; they are "
              "kept, ranked below any that fit: see latency_check.json", flush=True)
    return done
