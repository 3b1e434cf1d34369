"""Regularized evolution as an Optuna sampler (`--sampler evolution`).

Why: with a few dozen trials in a space of ~80 categorical labels, TPE has little to model and a
random sample is usually worse than the hand-designed baseline the study starts from. Evolution
(Real et al., "Regularized Evolution for Image Classifier Architecture Search", AAAI 2019) spends
the trials near what already scored well: each new trial copies a parent chosen by tournament
among the most recent finished trials and changes a few of its labels at random. Ageing (only the
last ``population`` trials can be parents) keeps one lucky proxy score from dominating the study.

The sampler is stateless between processes (the parent of a trial is drawn from the study's
stored trials with a generator seeded by the sampler seed and the trial number), so several
workers on one study and a resumed study behave like one process.
"""

from __future__ import annotations

import random
from typing import Any

import optuna


class EvolutionSampler(optuna.samplers.BaseSampler):
    """Tournament selection + label mutation; random until ``n_startup_trials`` have finished."""

    def __init__(self, seed: int = 0, population: int = 10, tournament: int = 3,
                 mutations: float = 2.0, n_startup_trials: int = 5):
        self._seed = seed
        self.population, self.tournament = population, tournament
        self.mutations = mutations  # expected number of labels changed per child
        self._n_startup_trials = n_startup_trials
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._parents: dict[int, dict[str, Any] | None] = {}

    def infer_relative_search_space(self, study, trial) -> dict:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict:
        return {}

    def before_trial(self, study, trial) -> None:
        self._random.before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self._parents.pop(trial.number, None)
        self._random.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._random.reseed_rng()

    def _rng(self, trial, salt: str = "") -> random.Random:
        return random.Random(f"{self._seed}:{trial.number}:{salt}")

    def parent(self, study, trial) -> dict[str, Any] | None:
        """The parent's labels for ``trial``, or None while the study is still sampling at random."""
        if trial.number not in self._parents:
            done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                    if t.number < trial.number]
            parent = None
            if len(done) >= self._n_startup_trials:
                recent = sorted(done, key=lambda t: t.number)[-self.population:]
                rng = self._rng(trial)
                picks = rng.sample(recent, min(self.tournament, len(recent)))
                parent = dict(max(picks, key=lambda t: t.values[0]).params)
            self._parents[trial.number] = parent
        return self._parents[trial.number]

    def sample_independent(self, study, trial, param_name, param_distribution):
        parent = self.parent(study, trial)
        if parent is not None and param_name in parent:
            value = parent[param_name]
            choices = getattr(param_distribution, "choices", None)
            p_mutate = min(1.0, self.mutations / max(1, len(parent)))
            rng = self._rng(trial, param_name)
            if choices is not None and value in choices:
                if rng.random() >= p_mutate or len(choices) == 1:
                    return value
                return rng.choice([c for c in choices if c != value])
        # no parent yet, or a label the parent did not have (a deeper stage): draw it at random
        return self._random.sample_independent(study, trial, param_name, param_distribution)


def make_evolution_sampler(seed: int, trials: int) -> EvolutionSampler:
    """An EvolutionSampler sized for a study of ``trials`` trials."""
    startup = max(3, min(10, trials // 3))
    return EvolutionSampler(seed=seed, population=max(startup, min(20, trials // 2)),
                            n_startup_trials=startup)
