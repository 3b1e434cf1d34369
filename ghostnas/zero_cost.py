"""Zero-cost proxies: score an untrained network from one batch, in well under a second.

- ``naswot`` (Mellor et al., ICML 2021): log-determinant of the kernel of binary ReLU activation
  codes over a batch; networks that separate inputs well score high.
- ``synflow`` (Tanaka et al., NeurIPS 2020; as a NAS proxy: Abdelfattah et al., ICLR 2021):
  sum of |theta * dR/dtheta| for R = sum of the output of the network with |weights| on an
  all-ones input (BN in eval mode, float64 against overflow); data-free.
- ``gradnorm``: sum of the gradient norms of the cross-entropy loss on one batch.

Used by the search as a cheap pre-filter (``--prefilter N``); ``benchmarks/proxy_fidelity.py``
reports how well each ranks networks against longer training.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .arch import Arch, load_arch
from .nn.ghostnet import create_model


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    codes: list[torch.Tensor] = []

    def hook(module, inputs, output):
        codes.append((output.detach().flatten(1) > 0).float())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    model.train()  # batch statistics, as the method specifies
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    c = torch.cat(codes, 1).double()
    k = c @ c.T + (1 - c) @ (1 - c).T
    return torch.linalg.slogdet(k)[1].item()


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model = model.double().eval()
    signs = {}
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if p.is_floating_point():
                signs[name] = torch.sign(p)
                p.abs_()
    model.zero_grad()
    out = model(torch.ones(1, *x.shape[1:], dtype=torch.float64))
    out.sum().backward()
    score = sum((p * p.grad).abs().sum().item() for p in model.parameters() if p.grad is not None)
    return float(torch.log1p(torch.tensor(score)).item())


def gradnorm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.train()
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return sum(p.grad.norm().item() for p in model.parameters() if p.grad is not None)


SCORERS: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], float]] = {
    "naswot": naswot, "synflow": synflow, "gradnorm": gradnorm}


def score(arch: "Arch | str", x: torch.Tensor, y: torch.Tensor, num_classes: int,
          method: str = "naswot", seed: int = 0) -> float:
    """Score ``arch`` (freshly initialised from ``seed``) on one prepared batch."""
    if method not in SCORERS:
        from .errors import GhostNASError

        raise GhostNASError(f"unknown zero-cost scorer {method!r}; choose one of {sorted(SCORERS)}")
    torch.manual_seed(seed)
    model = create_model(load_arch(arch), num_classes=num_classes, dropout=0.0)
    return SCORERS[method](model, x, y)
