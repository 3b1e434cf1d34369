"""The Optuna study every engine records into, and what the engines share about it.

A study lives in one run folder: an Optuna journal (``study.journal``, append-only with a file
lock, safe for several processes). Whatever engine proposes candidates, each evaluated trial is
written there, so results, resume and export work the same for all. Each trial records its worker
(host:pid); a worker killed with SIGKILL leaves its trial RUNNING, and the next worker on the same
host sees that pid is gone and marks the trial failed ("lost").
"""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path

from ..errors import GhostNASError
from ..io import sigint_held
from ..space import Labels, SearchSpace
from .context import KEEP_WEIGHTS, WORKER, Context, baseline
from .pipeline import Outcome


def optuna_module():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def open_study(ctx: Context, sampler=None, pruner=None):
    """The run's study, for appending: a torn last record is set aside first, a damaged one is one line."""
    from ..results import JOURNAL_ERRORS, corrupt_journal, journal_storage

    optuna = optuna_module()
    journal = ctx.run_dir / "study.journal"
    storage = journal_storage(journal, repair=True)
    directions = ["maximize", "minimize"] if ctx.config.pareto else ["maximize"]
    try:
        return optuna.create_study(study_name=ctx.run_dir.name, storage=storage, sampler=sampler,
                                   pruner=pruner, directions=directions, load_if_exists=True)
    except JOURNAL_ERRORS as exc:
        raise corrupt_journal(journal, exc) from None


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
    optuna = optuna_module()
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
    optuna = optuna_module()
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


def keep_best_weights(ctx: Context, study) -> None:
    """Keep the proxy weights of the trials that rank first (the one ranking of results.py, so
    `export best --with-weights` finds them): KEEP_WEIGHTS, or every `--confirm` finalist.
    Weights of trials still running (a Ray worker's, a cooperating process's: saved, not yet told)
    are left alone; they are read before the ranking, so a trial finishing in between is ranked."""
    from ..results import rank_trials, trials_frame

    weights_dir = ctx.run_dir / "weights"
    running = {f"trial_{t.number}.pt" for t in study.get_trials(
        deepcopy=False, states=(optuna_module().trial.TrialState.RUNNING,))}
    order = rank_trials(ctx.run_dir, trials_frame(study))
    n_keep = max(KEEP_WEIGHTS, ctx.config.confirm + 1)
    keep = {f"trial_{int(n)}.pt" for n in order.number.head(n_keep)} | running
    for f in weights_dir.glob("trial_*.pt"):
        if f.name not in keep:
            f.unlink(missing_ok=True)


def weights_path(ctx: Context, number: int) -> Path:
    folder = ctx.run_dir / "weights"
    folder.mkdir(exist_ok=True)
    return folder / f"trial_{number}.pt"


_TABLES: dict[Path, tuple[float, float]] = {}  # run folder -> (last table write's end, its cost)
TABLE_SHARE = 0.1  # of a search's time at most spent rewriting its tables between trials


def refresh_tables(run_dir: Path) -> None:
    """Rewrite the trials table and summary after a trial, unless that would take more than
    TABLE_SHARE of the time: a supernet trial takes ~1 s, and rewriting a 1,000-trial table ~1 s,
    so a 1,000-candidate search spent 25% and rising on it. The journal holds every trial
    regardless, and the search ends with a full write."""
    from ..results import write_results

    start = time.perf_counter()
    last, cost = _TABLES.get(run_dir, (-math.inf, 0.0))
    if start - last < cost / TABLE_SHARE:
        return
    write_results(run_dir, plots=False)
    _TABLES[run_dir] = (time.perf_counter(), time.perf_counter() - start)


def tell(ctx: Context, study, trial, outcome: Outcome) -> None:
    """Record an evaluated ask/tell trial; the journal record and the kept weights agree (a Ctrl-C
    waits for both), and the tables follow (``refresh_tables``)."""
    optuna = optuna_module()
    with sigint_held():
        for k, v in outcome.attrs.items():
            trial.set_user_attr(k, v)
        if outcome.state == "complete":
            study.tell(trial, outcome.values)
            keep_best_weights(ctx, study)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        refresh_tables(ctx.run_dir)


def abandon(study, trial, why: str) -> None:
    """A trial stopped by Ctrl-C or a user error: failed and marked lost, so it is not counted and
    a resumed search redoes its work."""
    with sigint_held():
        trial.set_user_attr("lost", why)
        study.tell(trial, state=optuna_module().trial.TrialState.FAIL)


def stop_early(study, trial, attrs: dict) -> None:
    """A trial a pruner (Optuna's, or Ray's ASHA) stopped after some epochs: told as pruned."""
    with sigint_held():
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        study.tell(trial, state=optuna_module().trial.TrialState.PRUNED)


def reject(study, trial, costs: dict, reason: str) -> None:
    """An over-budget sample: told to the sampler as pruned (it learns to avoid the region) and
    not counted as a trial."""
    stop_early(study, trial, {**costs, "rejected": reason})


def prepare_study(ctx: Context, pruner=None):
    """Open the run's study for this worker: fail trials of dead local workers, seed the sampler
    afresh per (re)start so a resumed study does not replay its first proposals, and queue the
    baseline on a new study. Returns (study, is_new)."""
    optuna = optuna_module()
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


