"""``--engine nni``: NNI 3.0's in-process (sequential) NAS engine with its strategies
(RegularizedEvolution by default; Random, TPE), on the same space, budget and objective.

The space becomes an NNI ``ModelSpace`` with one ``nni.choice`` per flat label (NNI samples them
all; labels of dropped blocks are ignored). Every evaluation is also written to the study's Optuna
journal, so results, resume accounting and export match the other engines. NNI cannot skip a
sample without counting it: an over-budget sample reports accuracy 0 (its strategy learns to avoid
the region), is recorded as rejected, and costs no training; NNI is given room for that many
extra samples, and once the study holds the requested trials the rest return at once.
Not supported: ``--pareto`` (NNI's strategies are single-objective) and pruning.
NNI's Node.js "ts" engine is never used (it listens on 0.0.0.0); nothing here opens a socket.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..errors import GhostNASError
from ..io import sigint_held
from .context import WORKER, Context, baseline
from .pipeline import evaluate, propose
from .study import counts_as_trial, keep_best_weights, open_study, optuna_module, refresh_tables

REJECTION_ROOM = 30  # NNI samples allowed per requested trial (rejections included)


def _record(study, space, labels: dict, state: str, attrs: dict, value: float | None = None) -> int:
    """Add one evaluated (or rejected) sample to the journal; returns its trial number."""
    optuna = optuna_module()
    from optuna.distributions import CategoricalDistribution

    dims = dict(space.dimensions())
    params = {k: v for k, v in labels.items() if k in dims}
    trial = optuna.trial.create_trial(
        params=params, distributions={k: CategoricalDistribution(list(dims[k])) for k in params},
        values=[value] if value is not None else None,
        state=getattr(optuna.trial.TrialState, state), user_attrs=attrs)
    study.add_trial(trial)
    return study.get_trials(deepcopy=False)[-1].number


def _import_nni():
    try:
        import nni
        import nni.nas.strategy as strategies
        from nni.mutable import ensure_frozen
        from nni.nas.evaluator import FunctionalEvaluator
        from nni.nas.experiment import NasExperiment, NasExperimentConfig
        from nni.nas.nn.pytorch import ModelSpace
    except ImportError as exc:
        raise GhostNASError(f"--engine nni needs nni 3.0 with pytorch-lightning and torchmetrics "
                            f"({exc}); pip install 'nni==3.0' pytorch-lightning torchmetrics") from None
    for name in ("nni", "nni.nas"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return nni, strategies, ensure_frozen, FunctionalEvaluator, NasExperiment, NasExperimentConfig, ModelSpace


def _strategy(strategies, cfg):
    if cfg.nni_strategy == "evolution":
        pop = max(4, min(20, cfg.trials // 2))
        return strategies.RegularizedEvolution(population_size=pop, sample_size=max(2, pop // 4), seed=cfg.seed)
    if cfg.nni_strategy == "random":
        return strategies.Random(seed=cfg.seed)
    if cfg.nni_strategy == "tpe":
        return strategies.TPE()
    raise GhostNASError(f"unknown NNI strategy {cfg.nni_strategy!r}; use evolution, random or tpe")


def _model_space(nni, ensure_frozen, ModelSpace, dims):
    """The space as an NNI ModelSpace: one ``nni.choice`` per flat label."""

    class GhostSpace(ModelSpace):
        def __init__(self):
            super().__init__()
            self.labels: dict[str, Any] = {}
            for name, choices in dims:
                mutable = nni.choice(name, list(choices))
                self.add_mutable(mutable)
                self.labels[name] = ensure_frozen(mutable)

        def forward(self, x):  # never called: the evaluator builds the real network from labels
            return x

    return GhostSpace()


def _run_one(ctx: Context, study, labels: dict, extra: dict) -> float:
    """The trial pipeline for one NNI sample; the score NNI's strategy learns from (0 when rejected)."""
    cand = propose(ctx, labels)
    if cand.rejected:
        _record(study, ctx.space, cand.labels, "PRUNED",
                {**cand.costs, "worker": WORKER, "engine": "nni", **extra, "rejected": cand.rejected})
        return 0.0
    # NNI numbers a trial only when it is added: train into a temporary file, then rename
    pending = ctx.run_dir / "weights" / f"pending_{WORKER.replace(':', '_')}.pt"
    pending.parent.mkdir(exist_ok=True)
    result = evaluate(ctx, cand, None, pending)
    with sigint_held():
        attrs = {**result.attrs, "worker": WORKER, **extra}
        if result.state != "complete":
            _record(study, ctx.space, cand.labels, "FAIL", attrs)
            pending.unlink(missing_ok=True)
            return 0.0
        number = _record(study, ctx.space, cand.labels, "COMPLETE", attrs, result.values[0])
        pending.replace(pending.with_name(f"trial_{number}.pt"))
        keep_best_weights(ctx, study)
        refresh_tables(ctx.run_dir)
    return result.values[0]


def run_nni(ctx: Context) -> None:
    cfg = ctx.config
    if cfg.pareto:
        raise GhostNASError("--pareto is not available with --engine nni; use --engine optuna or ray")
    nni, strategies, ensure_frozen, FunctionalEvaluator, NasExperiment, NasExperimentConfig, ModelSpace = _import_nni()
    strategy = _strategy(strategies, cfg)
    study = open_study(ctx)
    done = lambda: sum(counts_as_trial(t) for t in study.get_trials(deepcopy=False))  # noqa: E731
    if done() >= cfg.trials:
        return
    if not study.trials:
        base = baseline(ctx)
        if base is not None:
            _run_one(ctx, study, base[1], {"baseline": True})

    def nni_evaluate(model) -> None:
        nni.report_final_result(0.0 if done() >= cfg.trials else _run_one(ctx, study, dict(model.labels), {}))

    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = (cfg.trials - done()) * REJECTION_ROOM
    if cfg.timeout:
        config.max_experiment_duration = f"{int(cfg.timeout)}s"
    config.experiment_working_directory = str((ctx.run_dir / "nni").resolve())
    experiment = NasExperiment(_model_space(nni, ensure_frozen, ModelSpace, ctx.space.dimensions()),
                               FunctionalEvaluator(nni_evaluate), strategy, config=config)
    started = time.time()
    experiment.run()
    experiment.stop()
    if done() < cfg.trials and not (cfg.timeout and time.time() - started >= cfg.timeout):
        raise GhostNASError(f"NNI stopped after {done()} of {cfg.trials} trials: most of its samples "
                            "were outside the budget; widen the budget or use --engine optuna")
