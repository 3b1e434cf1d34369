"""``--engine ray``: trials run as Ray Tune trials, on this machine or a cluster.

Proposals come from the study's own Optuna sampler through a Ray ``Searcher`` rather than
``ray.tune.search.optuna.OptunaSearch``: OptunaSearch keeps its study in the driver's memory (a
restored Tuner has lost that state before) and cannot reject an over-budget sample before Ray
schedules it. The searcher runs the trial pipeline's first half in the driver (labels -> Arch ->
costs -> reject), the worker scores the candidate (``pipeline.score``), and the searcher records
the outcome in the same ``study.journal``, so every engine shares results, resume and export.
Early stopping is Ray's ASHA scheduler on per-epoch validation accuracy (single objective only).

Weights: a worker saves the scored network to the run folder's ``weights/`` like the other
engines, so the run folder must be on storage every node writes to (one machine, or a shared
filesystem); the study's journal likewise. With ``--supernet`` each worker loads the supernet once
and scores by inherited weights; every node needs the folder at the same path (a worker whose
copy holds other weights stops the search with an error).

Without ``--address`` a local Ray starts with this machine's CPUs, bound to 127.0.0.1, no
dashboard, usage stats off; with ``--address`` the search joins that cluster.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..errors import GhostNASError
from .context import MAX_REJECTIONS, WORKER, Context
from .pipeline import outcome, propose, trial_attrs
from .study import (abandon, counts_as_trial, prepare_study, reject, stop_early, suggest_labels, tell,
                    weights_path)

_WORKER_CACHE: dict[tuple, Any] = {}  # a reused worker process keeps its data (and supernet)


def ray_trial(config: dict, payload: dict) -> None:
    """One trial inside a Ray worker: score the candidate, reporting each epoch."""
    import torch
    from ray import tune

    from ..data import load_data
    from ..space import space_from_dict
    from ..train import Protocol
    from .evaluators import ProxyEvaluator, SupernetEvaluator
    from .pipeline import score

    torch.set_num_threads(payload["threads"])
    protocol = Protocol.from_dict(payload["protocol"])
    key = (payload["data"], protocol.seed, protocol.resolution)
    if key not in _WORKER_CACHE:  # a reused worker process loads the data once
        _WORKER_CACHE[key] = load_data(payload["data"], seed=protocol.seed, folder_size=protocol.resolution)
    if payload.get("supernet"):  # and the supernet once
        sn_key = (*key, payload["supernet"])
        if sn_key not in _WORKER_CACHE:
            _WORKER_CACHE[sn_key] = SupernetEvaluator(payload["supernet"], _WORKER_CACHE[key], protocol.resolution,
                                                    payload.get("device"))
        evaluator = _WORKER_CACHE[sn_key]
        if evaluator.record["digest"] != payload["supernet_digest"]:
            tune.report({"val_acc": float("nan"), "epoch": 0, "user_error":
                         f"the supernet at {payload['supernet']} on node {os.uname().nodename} is not the one the "
                         "search started with (other weights); give every node the same folder"})
            return
    else:
        evaluator = ProxyEvaluator(_WORKER_CACHE[key], protocol, payload.get("device"))
    arch = space_from_dict(payload["space"]).to_arch(config["labels"])
    start = time.perf_counter()
    history: list[float] = []

    import ray

    node = f"{os.uname().nodename}/{ray.get_runtime_context().get_node_id()[:8]}"  # host / Ray node

    def metrics(epoch: int, acc: float) -> dict:
        return {"val_acc": acc, "epoch": epoch, "seconds": round(time.perf_counter() - start, 2),
                "history": json.dumps(history), "node": node, "pid": os.getpid()}

    def report(epoch: int, acc: float) -> None:
        history.append(acc)
        if epoch < protocol.epochs:  # the last epoch is reported once the weights are saved:
            tune.report(metrics(epoch, acc))  # Ray stops a trial as soon as it reports max_t

    try:
        result, error = score(evaluator, arch, report, Path(config["weights"]))
    except GhostNASError as exc:  # a user error: the searcher stops the search with it
        tune.report({"val_acc": float("nan"), "epoch": 0, "user_error": str(exc)})
        return
    if result is None:
        tune.report({"val_acc": float("nan"), "epoch": 0, "error": error})
    else:  # the evaluator's whole record, as the in-process engines keep it
        tune.report({**metrics(protocol.epochs, result["val_acc"]),
                     "scored": json.dumps({**result, "node": node}, default=str)})


def _searcher_class():
    from ray.tune.search import Searcher

    class JournalSearcher(Searcher):
        def __init__(self, ctx: Context, study, n_new: int):
            super().__init__(metric="val_acc", mode="max")
            self.ctx, self.study, self.remaining = ctx, study, n_new
            self.live: dict[str, Any] = {}
            self.user_error: str | None = None

        def suggest(self, trial_id: str):
            if self.remaining <= 0 or self.user_error:
                return Searcher.FINISHED
            for _ in range(MAX_REJECTIONS):
                trial = self.study.ask()
                trial.set_user_attr("worker", WORKER)
                cand = propose(self.ctx, suggest_labels(trial, self.ctx.space))
                if cand.rejected:
                    reject(self.study, trial, cand.costs, cand.rejected)
                    continue
                self.live[trial_id] = (trial, cand)
                self.remaining -= 1
                return {"labels": cand.labels, "weights": str(weights_path(self.ctx, trial.number).resolve())}
            raise GhostNASError(f"{MAX_REJECTIONS} samples in a row were outside the budget")

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            trial, _ = self.live.get(trial_id, (None, None))
            acc = result.get("val_acc")
            if trial is not None and not self.ctx.config.pareto and acc == acc and acc is not None:
                trial.report(acc, int(result.get("epoch", 0)))

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            trial, cand = self.live.pop(trial_id, (None, None))
            if trial is None:
                return
            result = result or {}
            if result.get("user_error"):
                self.user_error = result["user_error"]
                abandon(self.study, trial, f"stopped by an error: {self.user_error}"[:500])
                return
            acc = result.get("val_acc")
            if error or result.get("error") or acc is None or acc != acc:
                tell(self.ctx, self.study, trial, outcome(self.ctx, cand, None, result.get("error") or "ray trial failed"))
                return
            if "scored" in result:  # the worker's final report
                tell(self.ctx, self.study, trial, outcome(self.ctx, cand, json.loads(result["scored"]), None))
                return
            scored = {"val_acc": acc, "seconds": result.get("seconds"), "node": result.get("node"),
                      "history": json.loads(result.get("history", "[]"))}
            if int(result.get("epoch", 0)) < self.ctx.protocol.epochs:  # stopped by ASHA
                stop_early(self.study, trial, {**trial_attrs(self.ctx, cand), **scored})
                Path(weights_path(self.ctx, trial.number)).unlink(missing_ok=True)
                return
            tell(self.ctx, self.study, trial, outcome(self.ctx, cand, scored, None))

    return JournalSearcher


def start_ray(address: str | None) -> bool:
    """Connect to ``address`` or start a local Ray on 127.0.0.1; True when we started it.

    Ray 2.60 turns a loopback ``_node_ip_address`` into the machine's routable IP and binds its
    gRPC servers there, unless "cluster mode" is off; off, every Ray server binds 127.0.0.1
    (checked by tests/test_engines.py with ``ss``). Ray also runs workers at nice 15; trials are
    the search's main work, so a local Ray runs them at normal priority (otherwise any other
    busy process starves them: 70x slower seen here).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not address:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        os.environ.setdefault("RAY_worker_niceness", "0")
    import ray
    from ray._private import ray_constants

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        return False
    ray_constants.ENABLE_RAY_CLUSTER = False  # in case ray was imported before the variable was set
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    return True


def run_ray(ctx: Context) -> None:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    cfg = ctx.config
    if cfg.cpus_per_trial <= 0 or cfg.gpus_per_trial < 0:
        raise GhostNASError("--cpus-per-trial must be above 0 and --gpus-per-trial 0 or more")
    study, _ = prepare_study(ctx)  # early stopping is ASHA's, not an Optuna pruner
    n_new = cfg.trials - sum(counts_as_trial(t) for t in study.get_trials(deepcopy=False))
    if n_new <= 0:
        return
    started = start_ray(cfg.address)
    try:
        cpus = ray.cluster_resources().get("CPU", 1)
        payload = {"space": ctx.space.to_dict(), "data": cfg.data, "protocol": ctx.protocol.to_dict(),
                   "threads": max(1, int(cfg.cpus_per_trial)), "device": cfg.device,
                   "supernet": str(Path(cfg.supernet).resolve()) if cfg.supernet else None,
                   "supernet_digest": ctx.evaluator.record["digest"] if cfg.supernet else None}
        trainable = tune.with_resources(tune.with_parameters(ray_trial, payload=payload),
                                        {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial})
        # a supernet's score comes at once: nothing to stop early
        scheduler = FIFOScheduler() if cfg.pareto or cfg.supernet else ASHAScheduler(
            time_attr="epoch", max_t=ctx.protocol.epochs, grace_period=1, reduction_factor=2)
        searcher = _searcher_class()(ctx, study, n_new)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                        metric="val_acc", mode="max", num_samples=n_new,
                                        max_concurrent_trials=max(1, int(cpus // cfg.cpus_per_trial)),
                                        time_budget_s=cfg.timeout),
            run_config=tune.RunConfig(name="tune", storage_path=str(Path(ctx.run_dir / "ray").resolve()),
                                      verbose=0))
        try:
            tuner.fit()
        finally:  # trials Ray never finished (Ctrl-C, a time budget): failed, never left running
            for trial, _ in list(searcher.live.values()):
                abandon(study, trial, "not finished by Ray (interrupted, or out of time)")
            searcher.live.clear()
        if searcher.user_error:
            raise GhostNASError(searcher.user_error)
    finally:
        if started:
            ray.shutdown()
