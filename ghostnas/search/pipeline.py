"""The one per-candidate pipeline every engine runs:

    labels (proposed by the engine) -> Arch (space) -> costs (profilers)
      -> over a budget? rejected: told to the sampler, not counted as a trial, nothing trained
      -> evaluate (the Context's evaluator) -> Outcome: what to record and tell

An engine is an adapter: it proposes labels, calls :func:`propose` and :func:`evaluate`, and
records the outcome in the study journal its own way (ask/tell, add_trial). Errors are sorted
here once: a user error (:class:`GhostNASError`: bad data, a bad file) stops the run with its
one-line message; a genuine trial failure (NaN loss, out of memory) is recorded and the search
goes on; Ctrl-C (or a library's error raised because of it) propagates as KeyboardInterrupt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..arch import Arch
from ..errors import GhostNASError
from ..io import sigint_as_interrupt
from ..space import Labels
from .context import Context
from .evaluators import Report


@dataclass
class Candidate:
    labels: Labels  # the active labels only
    arch: Arch
    costs: dict[str, Any]  # profiler name -> value
    rejected: str | None  # why it is over budget, or None


@dataclass
class Outcome:
    state: str  # "complete" | "failed"
    attrs: dict[str, Any]  # everything the trial records: costs, evaluator, result or error
    values: list[float] | None = None  # the objective(s) of a complete trial


def trial_failures() -> tuple[type[BaseException], ...]:
    """Exceptions that fail one trial but not the search (GhostNASError is caught before these)."""
    from ..train import TrainingFailed

    return (TrainingFailed, RuntimeError, ValueError, MemoryError)


def propose(ctx: Context, labels: Labels, name: str | None = None) -> Candidate:
    active = {k: v for k, v in labels.items() if ctx.space.active(labels, k)}
    arch = ctx.space.to_arch(active, name=name)
    costs = ctx.costs(arch)
    return Candidate(active, arch, costs, ctx.over_budget(costs))


def trial_attrs(ctx: Context, cand: Candidate) -> dict[str, Any]:
    return {**cand.costs, "protocol": ctx.protocol.name, "engine": ctx.config.engine,
            "evaluator": ctx.evaluator.name}


def objective(ctx: Context, cand: Candidate, score: float) -> list[float]:
    """Accuracy, and with --pareto the cost axis (latency with a table, else MACs)."""
    return [score, cand.costs[ctx.pareto_cost.name]] if ctx.config.pareto else [score]


def score(evaluator, arch: Arch, report: Report | None = None,
          weights_path: Path | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """(result, None) or (None, error) for one candidate; a user error raises. Runs where the
    evaluator is: in this process, or in a Ray worker."""
    try:
        with sigint_as_interrupt():
            return evaluator.evaluate(arch, report, weights_path), None
    except GhostNASError:
        raise
    except trial_failures() as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]


def outcome(ctx: Context, cand: Candidate, result: dict[str, Any] | None, error: str | None) -> Outcome:
    attrs = trial_attrs(ctx, cand)
    if result is None:
        return Outcome("failed", {**attrs, "error": error or "the trial failed"})
    return Outcome("complete", {**attrs, **result}, objective(ctx, cand, result["val_acc"]))


def evaluate(ctx: Context, cand: Candidate, report: Report | None = None,
             weights_path: Path | None = None) -> Outcome:
    """Score a within-budget candidate here. Pruning exceptions raised by ``report`` propagate."""
    return outcome(ctx, cand, *score(ctx.evaluator, cand.arch, report, weights_path))
