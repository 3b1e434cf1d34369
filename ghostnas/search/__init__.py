"""Search: budgets, the study runner and its engines (Optuna in-process, Ray Tune, NNI)."""

from .budget import Budget, parse_budget, parse_budgets
from .runner import SearchConfig, run_search

__all__ = ["Budget", "SearchConfig", "parse_budget", "parse_budgets", "run_search"]
