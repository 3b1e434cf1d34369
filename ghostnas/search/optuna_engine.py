"""The default engine: Optuna in-process, ask/tell, journal storage in the run folder.

Several processes may run the same command on one study: the journal file is append-only with a
file lock, each trial records its worker (host:pid), and every worker stops when the study holds
the requested number of trials. A worker killed with SIGKILL leaves its trial RUNNING; the next
worker on the same host sees that pid is gone, marks the trial failed ("lost") and redoes the work.
"""

from __future__ import annotations

import os
import random
import time
import warnings
from pathlib import Path

from ..errors import GhostNASError
from ..io import sigint_as_interrupt, sigint_held
from ..space import Labels, SearchSpace
from .runner import KEEP_WEIGHTS, MAX_REJECTIONS, WORKER, Context, baseline, evaluate


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def open_study(ctx: Context, sampler=None, pruner=None):
    optuna = _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(ctx.run_dir / "study.journal")))
    directions = ["maximize", "minimize"] if ctx.config.pareto else ["maximize"]
    return optuna.create_study(study_name=ctx.run_dir.name, storage=storage, sampler=sampler,
                               pruner=pruner, directions=directions, load_if_exists=True)


def counts_as_trial(t) -> bool:
    """Queued trials, rejected samples and trials lost to an interruption do not use up the
    trial count."""
    return (t.state.name != "WAITING" and not t.user_attrs.get("rejected")
            and not t.user_attrs.get("lost"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_lost_trials(study) -> int:
    """Mark RUNNING trials of dead local workers as failed; returns how many."""
    optuna = _optuna()
    host = WORKER.split(":")[0]
    lost = 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker", "")
        w_host, _, pid = worker.rpartition(":")
        if w_host == host and pid.isdigit() and not _pid_alive(int(pid)):
            study._storage.set_trial_user_attr(t._trial_id, "lost", f"worker {worker} died")
            study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            lost += 1
    return lost


def suggest_labels(trial, space: SearchSpace) -> Labels:
    """Define-by-run: only labels that act given earlier choices (depth, channels) are asked."""
    labels: Labels = {}
    for name, choices in space.dimensions():
        if space.active(labels, name):
            labels[name] = trial.suggest_categorical(name, list(choices))
    return labels


def make_sampler(ctx: Context, seed: int):
    optuna = _optuna()
    kind = ctx.config.sampler
    if kind == "auto":
        kind = "nsga2" if ctx.config.pareto else "tpe"
    if kind == "tpe":
        startup = max(3, min(10, ctx.config.trials // 3))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True,
                                          group=True, constant_liar=True)
    if kind == "nsga2":
        pop = max(4, min(50, ctx.config.trials // 3))
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=pop)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "evolution":
        from .evolution import make_evolution_sampler

        if ctx.config.pareto:
            raise GhostNASError("--sampler evolution selects parents by accuracy alone; with --pareto "
                                "use --sampler nsga2 (the default) or random")

        return make_evolution_sampler(seed, ctx.config.trials)
    raise GhostNASError(f"unknown sampler {kind!r}; use auto, tpe, nsga2, evolution or random")


def make_pruner(ctx: Context):
    optuna = _optuna()
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
        labels = ctx.space.sample(rng)
        arch = ctx.space.to_arch(labels)
        if ctx.over_budget(ctx.cost_attrs(arch)):
            continue
        scored.append((score(arch, x, y, ctx.data.num_classes, cfg.zero_cost, seed=p.seed), labels))
    scored.sort(key=lambda item: -item[0])
    for value, labels in scored[:n_keep]:
        active = {k: v for k, v in labels.items() if ctx.space.active(labels, k)}
        study.enqueue_trial(active, user_attrs={"prefilter": f"{cfg.zero_cost}={value:.4g}"})


def _keep_best_weights(study, weights_dir: Path) -> None:
    optuna = _optuna()
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    best = sorted(done, key=lambda t: -t.values[0])[:KEEP_WEIGHTS]
    keep = {f"trial_{t.number}.pt" for t in best}
    for f in weights_dir.glob("trial_*.pt"):
        if f.name not in keep:
            f.unlink(missing_ok=True)


def prepare_study(ctx: Context, pruner=None):
    """Open the run's study for this worker: fail trials of dead local workers, seed the sampler
    afresh per (re)start so a resumed study does not replay its first proposals, and queue the
    baseline on a new study. Returns (study, is_new)."""
    optuna = _optuna()
    probe = open_study(ctx)
    fail_lost_trials(probe)
    n_existing = len(probe.trials)
    others_running = any(t.state == optuna.trial.TrialState.RUNNING for t in probe.trials)
    seed = ctx.config.seed + 1_000_003 * n_existing + (os.getpid() if others_running else 0)
    study = open_study(ctx, make_sampler(ctx, seed), pruner)
    if n_existing == 0:
        base = baseline(ctx)
        if base is not None:
            # skip_if_exists: a second worker starting on the same new study does not queue it twice
            study.enqueue_trial(base[1], user_attrs={"baseline": True}, skip_if_exists=True)
    return study, n_existing == 0


def run_optuna(ctx: Context) -> None:
    optuna = _optuna()
    from ..results import write_results
    from ..train import TrainingFailed

    cfg = ctx.config
    study, is_new = prepare_study(ctx, make_pruner(ctx))
    if is_new and cfg.prefilter:
        prefilter(ctx, study, getattr(study.sampler, "_n_startup_trials", 10))
    weights_dir = ctx.run_dir / "weights"
    weights_dir.mkdir(exist_ok=True)
    deadline = time.time() + cfg.timeout if cfg.timeout else None
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.trials, desc=ctx.run_dir.name, unit="trial")
    rejected_in_a_row = 0
    best = None
    try:
        while True:
            trials = study.get_trials(deepcopy=False)
            done = sum(counts_as_trial(t) for t in trials)
            if bar:
                bar.n = min(done, cfg.trials)
                bar.refresh()
            if done >= cfg.trials or (deadline and time.time() >= deadline):
                break
            trial = study.ask()
            trial.set_user_attr("worker", WORKER)
            labels = suggest_labels(trial, ctx.space)
            arch = ctx.space.to_arch(labels, name=f"{ctx.run_dir.name}-t{trial.number}")
            attrs = ctx.cost_attrs(arch)
            for k, v in attrs.items():
                trial.set_user_attr(k, v)
            reason = ctx.over_budget(attrs)
            if reason:
                trial.set_user_attr("rejected", reason)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                rejected_in_a_row += 1
                if rejected_in_a_row >= MAX_REJECTIONS:
                    raise GhostNASError(f"{MAX_REJECTIONS} samples in a row were over budget "
                                        f"(last: {reason}); the budget is too tight for this space")
                continue
            rejected_in_a_row = 0
            trial.set_user_attr("protocol", ctx.protocol.name)
            trial.set_user_attr("engine", cfg.engine)

            def report(epoch: int, acc: float) -> None:
                if not cfg.pareto:
                    trial.report(acc, epoch)
                    if trial.should_prune():
                        trial.set_user_attr("val_acc", acc)
                        raise optuna.TrialPruned(f"pruned at epoch {epoch}")

            try:
                with sigint_as_interrupt():
                    result = evaluate(ctx, arch, report, weights_dir / f"trial_{trial.number}.pt")
            except optuna.TrialPruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                continue
            except KeyboardInterrupt:
                with sigint_held():
                    trial.set_user_attr("lost", "interrupted")
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise
            except (TrainingFailed, RuntimeError, ValueError, MemoryError) as exc:
                with sigint_held():
                    trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            with sigint_held():  # the journal record, the kept weights and the tables agree
                for k, v in result.items():
                    trial.set_user_attr(k, v)
                values = [result["val_acc"]]
                if cfg.pareto:
                    values.append(attrs[ctx.objective_cost_key()])
                study.tell(trial, values)
                _keep_best_weights(study, weights_dir)
                write_results(ctx.run_dir, plots=False)
            acc = result["val_acc"]
            best = acc if best is None else max(best, acc)
            if bar:
                bar.set_postfix(last=f"{acc:.3f}", best=f"{best:.3f}")
    finally:
        if bar:
            bar.close()
