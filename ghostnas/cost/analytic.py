"""Parameters and multiply-accumulates of an Arch, computed from its shapes alone (no torch).

Convention (the paper's "FLOPs"): MACs of convolutions and linear layers only; BatchNorm,
activations, pooling, the SE gate multiply, the residual add and biases are not counted. This
equals ``torch.utils.flop_counter.FlopCounterMode`` total / 2 and ultralytics-thop with BN and
pooling counted as zero (tests check both). Params are all trainable parameters (BN weight and
bias included, running statistics excluded), equal to ``sum(p.numel() for p in model.parameters())``.

Kept as plain integer arithmetic so a search can cost >10,000 candidates a second.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from ..arch import Arch, ResolvedArch, ResolvedBlock, conv_out, load_arch


class LayerCost(NamedTuple):
    name: str  # state-dict prefix: "blocks.6.3"; or "stem", "final_conv", "head"
    params: int
    macs: int


class Cost(NamedTuple):
    params: int
    macs: int
    resolution: int
    resolved: ResolvedArch
    parts: tuple[tuple[int, int], ...]  # (params, macs) of stem, each block, final conv, head

    @property
    def layers(self) -> tuple[LayerCost, ...]:
        names = ["stem", *(f"blocks.{b.stage}.{b.index}" for b in self.resolved.blocks),
                 "final_conv", "head"]
        return tuple(LayerCost(n, p, m) for n, (p, m) in zip(names, self.parts))

    def to_dict(self) -> dict:
        return {"params": self.params, "macs": self.macs, "resolution": self.resolution,
                "layers": [layer._asdict() for layer in self.layers]}


def dfc_macs(h: int, w: int, cin: int, mid: int) -> int:
    """GhostNetV2's DFC branch on the 2x2-pooled input: 1x1 conv to ``mid``, then depthwise (1, 5)
    and (5, 1) convs (pool, sigmoid, upsample not counted); a 1-pixel map pools to itself."""
    return max(h // 2, 1) * max(w // 2, 1) * (cin * mid + 10 * mid)


def block_cost(b: ResolvedBlock) -> tuple[int, int]:
    """(params, MACs) of one Ghost bottleneck."""
    _, _, cin, mid, cout, k, stride, r, s, d, h, w, attn = b  # unpacking beats 13 attribute reads
    dd = d * d
    pad = k // 2 * 2 - k
    hw_in = h * w
    hw_out = ((h + pad) // stride + 1) * ((w + pad) // stride + 1)  # conv_out, inlined
    # ghost1 (cin -> mid) and ghost2 (mid -> cout): 1x1 primary to ceil(c/s), cheap d x d to the rest
    p1 = -(-mid // s)
    c1 = p1 * (s - 1)
    p2 = -(-cout // s)
    c2 = p2 * (s - 1)
    params = cin * p1 + c1 * dd + 2 * (p1 + c1) + mid * p2 + c2 * dd + 2 * (p2 + c2)
    macs = hw_in * (cin * p1 + c1 * dd) + hw_out * (mid * p2 + c2 * dd)
    if stride > 1:  # depthwise k x k
        params += mid * k * k + 2 * mid
        macs += hw_out * mid * k * k
    if r:  # squeeze-excite: two 1x1 convs with bias at 1x1
        params += 2 * mid * r + r + mid
        macs += 2 * mid * r
    if attn == "dfc":  # GhostNetV2's DFC branch: three convs, each with BN
        params += cin * mid + 10 * mid + 6 * mid
        macs += dfc_macs(h, w, cin, mid)
    if cin != cout or stride != 1:  # projection shortcut: depthwise k x k + 1x1
        params += cin * k * k + 2 * cin + cin * cout + 2 * cout
        macs += hw_out * (cin * k * k + cin * cout)
    return params, macs


def count_resolved(r: ResolvedArch) -> Cost:
    hw = conv_out(r.resolution, 3, 2)
    parts = [(29 * r.stem, hw * hw * 27 * r.stem)]  # 3x3x3 conv + BN
    parts.extend(block_cost(b) for b in r.blocks)
    cin = r.blocks[-1].cout if r.blocks else r.stem
    fh, fw = r.final_hw
    parts.append((cin * r.final_conv + 2 * r.final_conv, fh * fw * cin * r.final_conv))
    parts.append((r.final_conv * r.head + r.head + r.head * r.num_classes + r.num_classes,
                  r.final_conv * r.head + r.head * r.num_classes))
    params = macs = 0
    for p, m in parts:
        params += p
        macs += m
    return Cost(params, macs, r.resolution, r, tuple(parts))


def count(arch: "Arch | str | os.PathLike[str]", resolution: int | None = None,
          num_classes: int | None = None) -> Cost:
    """Params and conv+linear MACs of ``arch`` (an Arch, registered name or JSON path) at
    ``resolution`` (default: the Arch's deployment resolution)."""
    a = load_arch(arch)
    if num_classes is not None and num_classes != a.num_classes:
        a = a.replace(num_classes=num_classes)
    return count_resolved(a.resolve(resolution))
