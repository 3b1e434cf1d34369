"""The default engine: Optuna in-process, ask/tell, over the one trial pipeline.

Several processes may run the same command on one study (see study.py): every worker stops when
the study holds the requested number of trials. Pruning: Optuna's median or Hyperband pruner on
the evaluator's per-epoch reports (single objective only).
"""

from __future__ import annotations

import random
import time

from ..errors import GhostNASError
from ..io import sigint_held
from .context import MAX_REJECTIONS, WORKER, Context
from .pipeline import evaluate, propose, trial_attrs
from .study import (abandon, counts_as_trial, fail_lost_trials, optuna_module, prepare_study, reject, stop_early,
                    suggest_labels, tell, weights_path)


def make_pruner(ctx: Context):
    optuna = optuna_module()
    kind = "none" if ctx.config.pareto else ctx.config.pruner  # multi-objective cannot prune
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=ctx.protocol.epochs)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise GhostNASError(f"unknown pruner {kind!r}; use median, hyperband or none")


def prefilter(ctx: Context, study, n_keep: int) -> None:
    """Score ``--prefilter N`` feasible random samples zero-cost; enqueue the best ``n_keep``."""
    from ..data import prepare
    from ..zero_cost import score

    cfg = ctx.config
    rng = random.Random(cfg.seed)
    p = ctx.protocol
    x = prepare(ctx.data.x_train[:64], p.resolution, *ctx.data.stats())
    y = ctx.data.y_train[:64]
    scored = []
    attempts = 0
    while len(scored) < cfg.prefilter:
        attempts += 1
        if attempts > MAX_REJECTIONS * max(1, cfg.prefilter):
            break
        cand = propose(ctx, ctx.space.sample(rng))
        if cand.rejected:
            continue
        scored.append((score(cand.arch, x, y, ctx.data.num_classes, cfg.zero_cost, seed=p.seed), cand.labels))
    scored.sort(key=lambda item: -item[0])
    for value, labels in scored[:n_keep]:
        study.enqueue_trial(labels, user_attrs={"prefilter": f"{cfg.zero_cost}={value:.4g}"})


def report_to(trial, cfg):
    """The per-epoch callback of a trial: reports to Optuna's pruner (not in Pareto mode), which
    may stop it."""
    def report(epoch: int, acc: float) -> None:
        if not cfg.pareto:
            trial.report(acc, epoch)
            if trial.should_prune():
                trial.set_user_attr("val_acc", acc)
                raise optuna_module().TrialPruned(f"pruned at epoch {epoch}")
    return report


def run_optuna(ctx: Context) -> None:
    optuna = optuna_module()
    cfg = ctx.config
    study, is_new = prepare_study(ctx, make_pruner(ctx))
    if is_new and cfg.prefilter:
        prefilter(ctx, study, getattr(study.sampler, "_n_startup_trials", 10))
    deadline = time.time() + cfg.timeout if cfg.timeout else None
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.trials, desc=ctx.run_dir.name, unit="trial")
    rejected_in_a_row = 0
    best = None
    try:
        while True:
            fail_lost_trials(study)  # a peer killed mid-trial must not count as done (nor hang the study)
            done = sum(counts_as_trial(t) for t in study.get_trials(deepcopy=False))
            if bar:
                bar.n = min(done, cfg.trials)
                bar.refresh()
            if done >= cfg.trials or (deadline and time.time() >= deadline):
                break
            trial = None
            try:  # from ask to tell: an interrupted trial is failed, never left running
                with sigint_held():  # a Ctrl-C during ask still hands us the trial it made
                    trial = study.ask()
                trial.set_user_attr("worker", WORKER)
                cand = propose(ctx, suggest_labels(trial, ctx.space), name=f"{ctx.run_dir.name}-t{trial.number}")
                if not cand.rejected:
                    outcome = evaluate(ctx, cand, report_to(trial, cfg), weights_path(ctx, trial.number))
            except optuna.TrialPruned:
                stop_early(study, trial, trial_attrs(ctx, cand))
                continue
            except KeyboardInterrupt:
                if trial is not None:
                    abandon(study, trial, "interrupted")
                raise
            except GhostNASError as exc:
                abandon(study, trial, f"stopped by an error: {exc}"[:500])
                raise
            if cand.rejected:
                reject(study, trial, cand.costs, cand.rejected)
                rejected_in_a_row += 1
                if rejected_in_a_row >= MAX_REJECTIONS:
                    raise GhostNASError(f"{MAX_REJECTIONS} samples in a row were outside the budget "
                                        f"(last: {cand.rejected}); the budget is too tight for this space")
                continue
            rejected_in_a_row = 0
            tell(ctx, study, trial, outcome)
            if outcome.state == "complete":
                acc = outcome.values[0]
                best = acc if best is None else max(best, acc)
                if bar:
                    bar.set_postfix(last=f"{acc:.3f}", best=f"{best:.3f}")
    finally:
        if bar:
            bar.close()
