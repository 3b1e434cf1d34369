"""A weight-sharing supernet over a search space: train once, evaluate any network of the space
in seconds from inherited weights.

One set of weights holds the widest form of every layer at every block position; a network of
the space takes slices of it:

- width and expansion: channel prefixes (``W[:cout, :cin]``);
- depthwise kernel ``k`` and the Ghost module's cheap kernel ``d``: the centre crop of the widest
  kernel (as Once-for-All's elastic kernel, without its learned transforms);
- SE: one set of SE weights per block position, sliced to the mid channels; off is simply unused;
- depth: the first D blocks of a stage;
- the Ghost ratio ``s``: the primary 1x1 conv is stored for the smallest ``s`` (most primary
  channels, ``ceil(out / s)``) and sliced; the cheap depthwise conv is stored per primary channel
  for the largest ``s`` (``s - 1`` maps each) and sliced to ``s - 1`` maps of the first
  ``ceil(out / s)`` primary channels, so every ``s`` shares weights;
- a projection shortcut is stored wherever some choice of the previous stage's depth or of the
  width needs one; GhostNetV2's DFC branch wherever the space offers it (``attn: [v1, dfc]``).

The forward pass of a subnet is GhostNet's own (``torch.func.functional_call`` on a weightless
template of ``create_model(arch)`` with the sliced tensors), and :meth:`SuperNet.extract` copies
the same slices into a plain ``create_model(arch)`` network: same state-dict layout, so cost,
latency, export and `ghostnas train` work on it unchanged. BatchNorm statistics are not shared:
an extracted network's are recomputed exactly on a fixed set of training images
(:func:`recalibrate`), as Once-for-All does.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..arch import Arch, make_divisible, se_channels
from ..nn.ghostnet import GhostNet, create_model
from ..space import SearchSpace, space_from_dict


def _crop(t: torch.Tensor, size: int) -> torch.Tensor:
    """The centre ``size`` x ``size`` of the last two dimensions."""
    full = t.shape[-1]
    lo = (full - size) // 2
    return t[..., lo:lo + size, lo:lo + size]


class SuperNet(nn.Module):
    """The widest weights of ``space``; ``extract(arch)`` / ``forward(x, arch)`` for any of its networks."""

    def __init__(self, space: SearchSpace, num_classes: int):
        super().__init__()
        self.space = space
        self.num_classes = num_classes
        self._names: dict[str, str] = {}  # GhostNet state-dict key -> our parameter's name
        for key, shape in self._widest_shapes().items():
            self._add(key, shape)
        self.reset_parameters()

    # ---- the widest shapes ---------------------------------------------------------------
    def _widest_shapes(self) -> dict[str, tuple[int, ...]]:
        sp, widths = self.space, self.space.width
        md = make_divisible
        shapes: dict[str, tuple[int, ...]] = {}

        def widest(key: str, shape: tuple[int, ...]) -> None:
            old = shapes.get(key, (0,) * len(shape))
            shapes[key] = tuple(max(a, b) for a, b in zip(old, shape))

        def conv_bn(prefix: str, cout: int, cin: int, k: int, bn: str) -> None:
            widest(f"{prefix}.weight", (cout, cin, k, k))
            for b in ("weight", "bias"):
                widest(f"{bn}.{b}", (cout,))

        stem = max(md(sp.stem * w) for w in widths)
        conv_bn("conv_stem", stem, 3, 3, "bn1")
        for slot in sp.possible_slots():
            st = sp.stages[slot.stage]
            p = f"blocks.{slot.stage}.{slot.index}"
            kmax, dmax, smin, smax = max(st.k), max(st.d), min(st.s), max(st.s)
            for w in widths:
                cin, cout = md(slot.cin * w), md(slot.cout * w)
                for ratio in st.exp_ratio:
                    mid = md(md(slot.cin * ratio) * w)
                    for g, (gin, gout) in (("ghost1", (cin, mid)), ("ghost2", (mid, cout))):
                        prim = math.ceil(gout / smin)
                        conv_bn(f"{p}.{g}.primary_conv.0", prim, gin, 1, f"{p}.{g}.primary_conv.1")
                        widest(f"{p}.{g}.cheap_operation.0.weight", (prim, smax - 1, dmax, dmax))
                        for b in ("weight", "bias"):
                            widest(f"{p}.{g}.cheap_operation.1.{b}", (prim, smax - 1))
                    if "dfc" in st.attn:  # GhostNetV2's attention branch of the expansion module
                        sc = f"{p}.ghost1.short_conv"
                        conv_bn(f"{sc}.0", mid, cin, 1, f"{sc}.1")
                        widest(f"{sc}.2.weight", (mid, 1, 1, 5))
                        widest(f"{sc}.4.weight", (mid, 1, 5, 1))
                        for bn in (f"{sc}.3", f"{sc}.5"):
                            for b in ("weight", "bias"):
                                widest(f"{bn}.{b}", (mid,))
                    if slot.stride > 1:
                        conv_bn(f"{p}.conv_dw", mid, 1, kmax, f"{p}.bn_dw")
                    if True in st.se:
                        r = se_channels(mid)
                        widest(f"{p}.se.conv_reduce.weight", (r, mid, 1, 1))
                        widest(f"{p}.se.conv_reduce.bias", (r,))
                        widest(f"{p}.se.conv_expand.weight", (mid, r, 1, 1))
                        widest(f"{p}.se.conv_expand.bias", (mid,))
                if cin != cout or slot.stride > 1:
                    conv_bn(f"{p}.shortcut.0", cin, 1, kmax, f"{p}.shortcut.1")
                    conv_bn(f"{p}.shortcut.2", cout, cin, 1, f"{p}.shortcut.3")
        last = len(sp.stages)
        final = max(md(sp.final_conv * w) for w in widths)
        final_in = max(md(c * w) for w in widths for c in sp.final_inputs())
        conv_bn(f"blocks.{last}.0.conv", final, final_in, 1, f"blocks.{last}.0.bn1")
        widest("conv_head.weight", (sp.head, final, 1, 1))
        widest("conv_head.bias", (sp.head,))
        widest("classifier.weight", (self.num_classes, sp.head))
        widest("classifier.bias", (self.num_classes,))
        return shapes

    def _add(self, key: str, shape: tuple[int, ...]) -> None:
        name = key.replace(".", "__")
        self._names[key] = name
        self.register_parameter(name, nn.Parameter(torch.empty(shape)))

    def reset_parameters(self) -> None:
        """GhostNet's own initialisation (torch's defaults), applied to the widest tensors:
        BatchNorm to (1, 0); conv and linear weights and biases uniform in +-1/sqrt(fan_in)."""
        with torch.no_grad():
            for key, name in self._names.items():
                p = getattr(self, name)
                if _is_bn(key):
                    p.fill_(1.0 if key.endswith("weight") else 0.0)
                    continue
                weight = getattr(self, self._names[key.rsplit(".", 1)[0] + ".weight"])
                fan_in = weight.shape[-1] * weight.shape[-2] if "cheap_operation" in key else weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                p.uniform_(-bound, bound)

    # ---- a network of the space ----------------------------------------------------------
    def template(self, arch: Arch) -> GhostNet:
        """The network's module structure, weightless (meta tensors), cached per Arch."""
        return _template(arch.replace(num_classes=self.num_classes, name=None))

    def subnet_state(self, arch: Arch, with_buffers: bool = True) -> dict[str, torch.Tensor]:
        """Every parameter of ``create_model(arch)`` as a slice of the supernet's (differentiable
        views); with ``with_buffers``, BatchNorm buffers as fresh tensors (statistics are the
        subnet's own: recalibrated, never shared)."""
        out: dict[str, torch.Tensor] = {}
        blocks = {(i, j): b for i, j, b in arch.blocks()}
        device = self.conv_stem__weight.device
        for key, t in self.template(arch).state_dict().items():
            if key.endswith("num_batches_tracked"):
                if with_buffers:
                    out[key] = torch.zeros((), dtype=torch.long, device=device)
                continue
            if key.endswith(("running_mean", "running_var")):
                if with_buffers:
                    out[key] = (torch.zeros if key.endswith("mean") else torch.ones)(t.shape, device=device)
                continue
            parts = key.split(".")
            s = blocks[int(parts[1]), int(parts[2])].s if "cheap_operation" in key else 0
            out[key] = self._slice(key, tuple(t.shape), s)
        return out

    def _slice(self, key: str, shape: tuple[int, ...], s: int = 0) -> torch.Tensor:
        if key not in self._names:
            raise KeyError(f"the supernet of space {self.space.name!r} has no {key}; is the arch in the space?")
        full = getattr(self, self._names[key])
        if "cheap_operation" in key:  # stored (primary, s_max - 1[, d, d]): s - 1 maps of each primary
            primary = shape[0] // (s - 1)
            part = full[:primary, : s - 1]
            if key.endswith("0.weight"):
                return _crop(part, shape[-1]).reshape(shape)
            return part.reshape(shape)
        part = full[tuple(slice(0, n) for n in shape[:2])]
        return _crop(part, shape[-1]) if len(shape) == 4 and shape[-1] != full.shape[-1] else part

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        template = self.template(arch).train(self.training)
        return torch.func.functional_call(template, self.subnet_state(arch), (x,))

    def extract(self, arch: Arch) -> GhostNet:
        """A plain ``create_model(arch)`` network holding copies of its slices (BatchNorm
        statistics reset: recalibrate before evaluating)."""
        model = create_model(arch, num_classes=self.num_classes)
        with torch.no_grad():
            model.load_state_dict({k: v.detach().clone() for k, v in self.subnet_state(arch).items()})
        return model


def _is_bn(key: str) -> bool:
    """BatchNorm affine parameters: GhostNet names them bn1, bn_dw, *.1 / *.3 in Sequentials."""
    parts = key.split(".")
    return parts[-2] in ("bn1", "bn_dw") or (parts[-2] in ("1", "3", "5") and parts[-3] in
                                              ("primary_conv", "cheap_operation", "shortcut", "short_conv"))


@functools.lru_cache(maxsize=256)
def _template(arch: Arch) -> GhostNet:
    with torch.device("meta"):
        return create_model(arch)


def recalibrate(model: nn.Module, images: torch.Tensor, batch_size: int = 200) -> nn.Module:
    """Recompute every BatchNorm's statistics exactly (a cumulative average over ``images``, in
    batches), as the network's own; returns it in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average: the exact mean over all batches
    model.train()
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            model(images[i:i + batch_size])
    for bn in bns:
        bn.momentum = 0.1
    return model.eval()


def sample_archs(space: SearchSpace, rng, n: int) -> Iterator[tuple[str, Arch]]:
    """The sandwich rule's subnets for one step: the largest, the smallest and ``n`` random ones."""
    yield "largest", space.to_arch(space.largest_labels())
    yield "smallest", space.to_arch(space.smallest_labels())
    for _ in range(n):
        yield "random", space.to_arch(space.sample(rng))


def distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """In-place distillation: KL(teacher || student) on soft targets from the largest subnet."""
    return F.kl_div(F.log_softmax(student, 1), F.softmax(teacher.detach(), 1), reduction="batchmean")


def read_supernet(folder: "str | Path") -> tuple[SearchSpace, dict[str, Any]]:
    """(the space it was trained over, its record) from a supernet's ``supernet.json``."""
    import json

    from ..errors import GhostNASError

    folder = Path(folder)
    try:
        record = json.loads((folder / "supernet.json").read_text())
    except (OSError, ValueError) as exc:
        raise GhostNASError(f"{folder}: not a trained supernet ({exc}); train one with "
                            "`ghostnas supernet train --out DIR`") from None
    return space_from_dict(record["space"], source=record["space"].get("name", "supernet")), record


def load_supernet(folder: "str | Path") -> tuple[SuperNet, dict[str, Any]]:
    """A trained supernet from its folder (``supernet.pt`` + ``supernet.json``)."""
    from ..errors import GhostNASError
    from ..nn.weights import load_tensors

    folder = Path(folder)
    space, record = read_supernet(folder)
    net = SuperNet(space, record["num_classes"])
    state = load_tensors(folder / "supernet.pt", "supernet")
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise GhostNASError(f"{folder / 'supernet.pt'}: does not fit its supernet.json ({str(exc)[:120]})") from None
    return net, record
