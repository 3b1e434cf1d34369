"""Costs of an Arch: analytic params/MACs (no torch) and, later, latency."""

from .analytic import Cost, LayerCost, count

__all__ = ["Cost", "LayerCost", "count"]
