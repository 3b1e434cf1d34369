"""GhostNet modules with the authors' (and timm's) state-dict layout.

Every module name below (``primary_conv``, ``cheap_operation``, ``conv_dw``/``bn_dw``, ``se``,
``shortcut``, ``blocks.{i}.{j}``, ``conv_head``, ``classifier``) matches their checkpoints, so
``load_state_dict(strict=True)`` works at s=2, d=3; other s, d keep the keys with other shapes.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..arch import Arch, ResolvedArch, ResolvedBlock, ghost_channels, load_arch


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x + 3.0) / 6.0


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.conv_expand(self.act1(self.conv_reduce(self.avg_pool(x))))
        return x * hard_sigmoid(gate)


_skip_padding_taps = True


@contextlib.contextmanager
def full_kernels() -> Iterator[None]:
    """Within, every :class:`DepthwiseConv2d` runs its whole kernel: the work MAC counts assume
    (the paper's convention, ``ghostnas.cost``), for cross-checks that count executed ops."""
    global _skip_padding_taps
    was, _skip_padding_taps = _skip_padding_taps, False
    try:
        yield
    finally:
        _skip_padding_taps = was


class DepthwiseConv2d(nn.Conv2d):
    """A grouped conv with odd kernels and "same" padding (k // 2) that skips the kernel taps which
    only ever meet the zero padding: on an h x w map only the centre (2h-1) x (2w-1) taps reach a
    pixel. Outputs and gradients are those of the full kernel (the skipped taps' gradients are
    zero either way); the work is not: at a 32 px training resolution the last stages' maps are
    1x1 and 2x2 against 5x5 and 7x7 kernels, where oneDNN spends ~20 ms on a 720-channel 5x5
    conv of a 1x1 map. Traced or compiled (export, deployment resolution), the full kernel, so
    the exported graph is the paper's."""

    def __init__(self, cin: int, cout: int, kernel_size: "int | tuple[int, int]", stride: "int | tuple[int, int]" = 1,
                 groups: int = 1):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        assert kh % 2 and kw % 2, "odd kernels only: 'same' padding is k // 2"
        super().__init__(cin, cout, (kh, kw), stride, (kh // 2, kw // 2), groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        ch, cw = min(kh, 2 * x.shape[-2] - 1), min(kw, 2 * x.shape[-1] - 1)
        exporting = torch.jit.is_tracing() or torch.compiler.is_compiling()
        if (ch, cw) == (kh, kw) or not _skip_padding_taps or exporting:
            return super().forward(x)
        top, left = (kh - ch) // 2, (kw - cw) // 2
        weight = self.weight[:, :, top:top + ch, left:left + cw]
        return F.conv2d(x, weight, self.bias, self.stride, (ch // 2, cw // 2), 1, self.groups)


class GhostModule(nn.Module):
    """A 1x1 primary conv to ceil(out/s) channels, then a cheap depthwise-style d x d conv that
    makes (s-1) more maps from each; concatenated and cut to ``out`` channels.

    With ``dfc`` (GhostNetV2), the output is gated by decoupled fully connected attention computed
    on the module's input at half resolution: 2x2 average pool -> 1x1 conv + BN -> depthwise
    (1, 5) conv + BN -> depthwise (5, 1) conv + BN -> sigmoid -> nearest upsample (``short_conv``,
    the official code's name)."""

    def __init__(self, cin: int, cout: int, s: int = 2, d: int = 3, relu: bool = True, dfc: bool = False):
        super().__init__()
        self.cout = cout
        self.dfc = dfc
        primary, cheap = ghost_channels(cout, s)
        self.primary_conv = nn.Sequential(
            nn.Conv2d(cin, primary, 1, 1, 0, bias=False),
            nn.BatchNorm2d(primary),
            nn.ReLU(inplace=True) if relu else nn.Identity(),
        )
        self.cheap_operation = nn.Sequential(
            DepthwiseConv2d(primary, cheap, d, groups=primary),
            nn.BatchNorm2d(cheap),
            nn.ReLU(inplace=True) if relu else nn.Identity(),
        )
        if dfc:
            self.short_conv = nn.Sequential(
                nn.Conv2d(cin, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout),
                DepthwiseConv2d(cout, cout, (1, 5), groups=cout), nn.BatchNorm2d(cout),
                DepthwiseConv2d(cout, cout, (5, 1), groups=cout), nn.BatchNorm2d(cout),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        out = torch.cat([x1, x2], dim=1)[:, : self.cout]
        if self.dfc:
            # 2x2 as the official code; a map under 2 pixels (the last stages at a 32 px training
            # resolution) pools to itself. Traced for export (deployment resolution): plain 2x2.
            pool = (2, 2) if torch.jit.is_tracing() else (min(2, x.shape[-2]), min(2, x.shape[-1]))
            gate = torch.sigmoid(self.short_conv(F.avg_pool2d(x, kernel_size=pool, stride=pool)))
            out = out * F.interpolate(gate, size=out.shape[-2:], mode="nearest")
        return out


class GhostBottleneck(nn.Module):
    def __init__(self, rb: ResolvedBlock):
        super().__init__()
        self.stride = rb.stride
        self.ghost1 = GhostModule(rb.cin, rb.mid, rb.s, rb.d, relu=True, dfc=rb.attn == "dfc")
        if rb.stride > 1:
            self.conv_dw = DepthwiseConv2d(rb.mid, rb.mid, rb.k, rb.stride, groups=rb.mid)
            self.bn_dw = nn.BatchNorm2d(rb.mid)
        self.se = SqueezeExcite(rb.mid, rb.se_channels) if rb.se_channels else None
        self.ghost2 = GhostModule(rb.mid, rb.cout, rb.s, rb.d, relu=False)
        if rb.identity_shortcut:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                DepthwiseConv2d(rb.cin, rb.cin, rb.k, rb.stride, groups=rb.cin),
                nn.BatchNorm2d(rb.cin),
                nn.Conv2d(rb.cin, rb.cout, 1, 1, 0, bias=False),
                nn.BatchNorm2d(rb.cout),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = self.ghost1(x)
        if self.stride > 1:
            x = self.bn_dw(self.conv_dw(x))
        if self.se is not None:
            x = self.se(x)
        x = self.ghost2(x)
        return x + self.shortcut(residual)


class ConvBnAct(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, 1, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv(x)))


class GhostNet(nn.Module):
    def __init__(self, arch: Arch):
        super().__init__()
        self.arch = arch
        r: ResolvedArch = arch.resolve()
        self.num_classes = r.num_classes
        self.dropout = r.dropout
        self.conv_stem = nn.Conv2d(3, r.stem, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(r.stem)
        self.act1 = nn.ReLU(inplace=True)
        stages: list[nn.Module] = [nn.Sequential() for _ in range(r.num_stages)]
        for rb in r.blocks:
            stages[rb.stage].append(GhostBottleneck(rb))
        cin = r.blocks[-1].cout if r.blocks else r.stem
        stages.append(nn.Sequential(ConvBnAct(cin, r.final_conv)))
        self.blocks = nn.Sequential(*stages)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_head = nn.Conv2d(r.final_conv, r.head, 1, 1, 0, bias=True)
        self.act2 = nn.ReLU(inplace=True)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(r.head, r.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.act1(self.bn1(self.conv_stem(x))))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.act2(self.conv_head(self.global_pool(x))))
        if self.dropout > 0.0:
            x = F.dropout(x, p=self.dropout, training=self.training)
        return self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def create_model(arch: "Arch | str | os.PathLike[str]", num_classes: int | None = None,
                 **overrides) -> GhostNet:
    """Build a GhostNet from an Arch, a registered name (``paper-1.0x``) or an arch JSON path.

    ``num_classes`` (and any other Arch field in ``overrides``, e.g. ``dropout``) replaces the
    Arch's value. Deployment resolution does not change the model's weights.
    """
    a = load_arch(arch)
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    if overrides:
        a = a.replace(**overrides)
    return GhostNet(a)
