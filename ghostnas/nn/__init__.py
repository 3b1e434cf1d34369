"""Torch modules built from an Arch."""

from .ghostnet import GhostBottleneck, GhostModule, GhostNet, SqueezeExcite, create_model

__all__ = ["GhostBottleneck", "GhostModule", "GhostNet", "SqueezeExcite", "create_model"]
