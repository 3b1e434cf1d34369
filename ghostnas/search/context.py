"""What a search is and everything a trial needs, loaded once per process.

:class:`SearchConfig` is the user's request (the CLI fills it; the library can too);
:func:`make_context` turns it into a :class:`Context`: the space, the budgets, the cost profilers,
the run folder, and (with :func:`load_evaluator`) the data and the evaluator. The engines, the
pipeline and the runner all read the same Context; none of them imports another's module.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..arch import Arch, paper_arch
from ..cost.profiler import Profiler, profile_all, profilers_for
from ..defaults import CHECK_LATENCY, CONFIRM_SEEDS, DEFAULT_DATA
from ..errors import GhostNASError
from ..io import atomic_write_text
from ..space import Labels, SearchSpace, load_space
from .budget import Budget, canonical_budgets, parse_budgets

WORKER = f"{socket.gethostname()}:{os.getpid()}"
MAX_REJECTIONS = 5000  # per accepted trial, before we call the budget infeasible for the space
KEEP_WEIGHTS = 3  # proxy weights kept for the best trials (for `export best --with-weights`)
# Fields that define a study: resuming with different values would mix incomparable trials.
IDENTITY_FIELDS = ("budgets", "space", "data", "protocol", "epochs", "pareto", "lut", "supernet")
# engine name -> "module:function"; imported by name so no engine module is imported by the
# module that dispatches to it (engines import this module, never the runner)
ENGINES = {"optuna": "ghostnas.search.optuna_engine:run_optuna",
           "ray": "ghostnas.search.ray_engine:run_ray",
           "nni": "ghostnas.search.nni_engine:run_nni"}
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass
class SearchConfig:
    budgets: tuple[str, ...] = ("150MFLOPs",)
    space: str | None = None  # None: ghostnet, or with a supernet the space it was trained over
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
    supernet: str | None = None  # a trained supernet's folder: candidates scored by inherited weights
    allow_emulated: bool = False  # accept a latency table timed under emulation
    progress: bool = True

    def identity(self) -> dict[str, Any]:
        """The fields that define the study; budgets by value (see canonical_budgets)."""
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
               if k in IDENTITY_FIELDS}
        out["budgets"] = canonical_budgets(self.budgets)
        return out

    def study_name(self) -> str:
        if self.study:
            if not STUDY_NAME.fullmatch(self.study) or self.study in (".", ".."):
                raise GhostNASError(f"--study {self.study!r}: a study name is a plain folder name (letters, "
                                    "digits, . _ -), not a path; use --runs DIR to choose where it goes")
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
    profilers: list[Profiler] = field(default_factory=list)
    data: Any = None
    protocol: Any = None
    evaluator: Any = None  # search.evaluators.Evaluator, set by load_evaluator
    started: float = field(default_factory=time.perf_counter)

    def costs(self, arch: Arch) -> dict[str, Any]:
        """Every profiler's value for ``arch``, by name (the trial records them as they are)."""
        return profile_all(self.profilers, arch)

    def over_budget(self, costs: dict[str, Any]) -> str | None:
        for b in self.budgets:
            reason = b.over(costs)
            if reason:
                return reason
        return None

    @property
    def pareto_cost(self) -> Profiler:
        """The cost axis of the Pareto objective and plots: latency with a table, else MACs."""
        by_name = {p.name: p for p in self.profilers}
        return by_name.get("latency_ms", by_name["macs"])


def check_numbers(cfg: SearchConfig) -> None:
    """The library's own check of what the CLI's typed options already bound (a SearchConfig may
    come from code): one line naming each bad setting."""
    bad = [f"--{name.replace('_', '-')} {value!r} ({need})" for name, value, ok, need in (
        ("trials", cfg.trials, cfg.trials >= 1, "at least 1"),
        ("seed", cfg.seed, 0 <= cfg.seed < 2**32, "0 to 2**32-1"),
        ("timeout", cfg.timeout, cfg.timeout is None or cfg.timeout > 0, "seconds above 0"),
        ("prefilter", cfg.prefilter, cfg.prefilter >= 0, "0 or more"),
        ("threads", cfg.threads, cfg.threads is None or cfg.threads >= 1, "at least 1"),
        ("epochs", cfg.epochs, cfg.epochs is None or cfg.epochs >= 1, "at least 1"),
        ("confirm", cfg.confirm, cfg.confirm >= 0, "0 (off) or more"),
        ("confirm_seeds", cfg.confirm_seeds, cfg.confirm_seeds >= 1, "at least 1"),
        ("check_latency", cfg.check_latency, cfg.check_latency >= 0, "0 (off) or more"),
        ("cpus_per_trial", cfg.cpus_per_trial, cfg.cpus_per_trial > 0, "above 0"),
        ("gpus_per_trial", cfg.gpus_per_trial, cfg.gpus_per_trial >= 0, "0 or more")) if not ok]
    if bad:
        raise GhostNASError("bad setting(s): " + "; ".join(bad))


def make_context(cfg: SearchConfig) -> Context:
    budgets = parse_budgets(cfg.budgets)
    if cfg.space is None and cfg.supernet:
        from ..supernet.elastic import read_supernet

        space, _ = read_supernet(cfg.supernet)
    else:
        space = load_space(cfg.space)
    if not cfg.lut and any(b.kind == "latency_ms" for b in budgets):
        raise GhostNASError("a latency budget needs a latency table: pass --lut FILE "
                            "(build one with `ghostnas lut build`, or use results/luts/*.csv)")
    check_numbers(cfg)
    if cfg.confirm_protocol is not None:
        from ..train import get_protocol

        get_protocol(cfg.confirm_protocol)  # an unknown name fails now, not after the search
    if cfg.engine not in ENGINES:
        raise GhostNASError(f"unknown engine {cfg.engine!r}; use {', '.join(ENGINES)}")
    run_dir = Path(cfg.out) / cfg.study_name()
    ctx = Context(cfg, space, budgets, run_dir, profilers=profilers_for(cfg.lut, space, cfg.allow_emulated))
    smallest, largest = (ctx.costs(space.to_arch(labels)) for labels in (space.smallest_labels(),
                                                                          space.largest_labels()))
    for b in budgets:
        if reason := b.above_limit(smallest):
            raise GhostNASError(f"no network of space {space.name!r} fits the budget: even the smallest "
                                f"is over ({reason}); raise the budget or use a smaller space")
        if b.under_floor(largest):
            raise GhostNASError(f"no network of space {space.name!r} reaches the floor of {b.text}: even "
                                f"the largest has {b.kind} {b.value_of(largest):g}; lower the floor")
    return ctx


def load_evaluator(ctx: Context) -> None:
    """The data and the evaluator of this process: the proxy trainer, or with ``--supernet`` the
    supernet's inherited weights on the split and resolution it was trained with."""
    import torch

    from ..data import load_data
    from ..train import check_protocol, get_protocol
    from .evaluators import ProxyEvaluator

    cfg = ctx.config
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ctx.protocol = get_protocol(cfg.protocol, epochs=cfg.epochs)
    check_protocol(ctx.protocol)
    if cfg.supernet:
        from ..supernet.elastic import read_supernet
        from .evaluators import SupernetEvaluator

        # the supernet's own split (its seed) and resolution: a validation image it trained on
        # would flatter some candidates more than others
        trained_on = read_supernet(cfg.supernet)[1]
        split_seed, resolution = trained_on["protocol"]["seed"], trained_on["protocol"]["resolution"]
        ctx.data = load_data(cfg.data, seed=split_seed, folder_size=resolution)
        theirs, mine = trained_on["data"], ctx.data.describe()
        if any(mine.get(k) != v for k, v in theirs.items()):
            raise GhostNASError(f"supernet {cfg.supernet} was trained on {theirs['name']!r} ({theirs['train']:,} "
                                f"training images), not on --data {cfg.data} ({mine['train']:,}): search "
                                "the data it was trained on, or train a supernet on this data")
        ctx.evaluator = SupernetEvaluator(cfg.supernet, ctx.data, resolution, cfg.device)
        if ctx.evaluator.record["space_hash"] != ctx.space.digest():
            trained = ctx.evaluator.net.space
            hint = ("leave out --space (a search with a supernet takes its space)" if trained.name != ctx.space.name
                    else f"this {trained.name!r} differs from the supernet's (content digests {ctx.space.digest()} and "
                    f"{trained.digest()}); leave out --space to search the supernet's")
            raise GhostNASError(f"--space {cfg.space!r} is not the space supernet {cfg.supernet} was trained over "
                                f"({trained.name!r}): {hint}")
    else:
        ctx.data = load_data(cfg.data, seed=ctx.protocol.seed, folder_size=ctx.protocol.resolution)
        ctx.evaluator = ProxyEvaluator(ctx.data, ctx.protocol, cfg.device)


def check_config(ctx: Context) -> None:
    """Write config.json for a new study; refuse to resume one with a different identity."""
    path = ctx.run_dir / "config.json"
    mine = ctx.config.identity()
    mine["space"] = mine["space"] or ctx.space.name  # as studies recorded it when --space had a default
    if ctx.config.supernet:  # the weights, not the folder's name: a retrained supernet is another study
        mine["supernet"] = ctx.evaluator.record["digest"]
    if path.exists():
        try:
            theirs = json.loads(path.read_text()).get("identity", {})
        except (OSError, json.JSONDecodeError) as exc:
            raise GhostNASError(f"{path}: unreadable ({exc}); fix or delete it") from None
        if isinstance(theirs.get("budgets"), list):  # studies made before budgets were stored by value
            try:
                theirs["budgets"] = canonical_budgets(theirs["budgets"])
            except GhostNASError:
                pass
        diff = {k: (theirs.get(k), mine[k]) for k in mine if theirs.get(k) != mine[k]}
        if diff:
            what = "; ".join(f"{k}: study has {a!r}, you gave {b!r}" for k, (a, b) in diff.items())
            raise GhostNASError(f"study {ctx.run_dir.name!r} was made with other settings ({what}); "
                                "use the same settings to resume or --study NEW for a new search")
        return
    record = {"identity": mine, "config": dataclasses.asdict(ctx.config),
              "protocol": ctx.protocol.to_dict() if ctx.protocol else None,
              "space": ctx.space.to_dict()}  # the space itself: a supernet's need not be a file
    atomic_write_text(path, json.dumps(record, indent=1, default=list) + "\n")


def baseline(ctx: Context) -> tuple[Arch, Labels] | None:
    """The paper network at the largest width of the space that fits every budget (inside a
    range's floor too: none where the widest under the limit is below it)."""
    for width in sorted(ctx.space.width, reverse=True):
        arch = paper_arch(width, resolution=ctx.space.resolution, num_classes=ctx.space.num_classes,
                          dropout=ctx.space.dropout)
        if not ctx.space.contains(arch):
            return None
        if ctx.over_budget(ctx.costs(arch)) is None:
            return arch, ctx.space.to_labels(arch)
    return None


