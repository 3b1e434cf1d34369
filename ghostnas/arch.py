"""Arch: the plain-data description of one GhostNet-style network (no torch here).

An :class:`Arch` holds *base* channel counts (the values at width 1.0, as in the paper's table)
and a global width multiplier; :meth:`Arch.resolve` applies the paper's rounding
(``make_divisible(c * width, 4)``) once and returns the concrete layer dimensions that the torch
builder, the analytic counter and the latency table all read. One source of truth for shapes.

Blocks are grouped into stages exactly as the authors' code groups them (``blocks.{i}.{j}`` in the
state dict), so a model built from a paper Arch loads the authors' / timm's checkpoints strictly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from .errors import GhostNASError

SE_RATIO = 0.25  # squeeze-excite reduction on the mid channels, as in the paper
CHANNEL_DIVISOR = 4  # GhostNet rounds every channel count to a multiple of 4
ARCH_FORMAT = "ghostnas.arch/1"


def kernel_acts(cin: int, cout: int, stride: int) -> bool:
    """Whether a bottleneck's depthwise kernel ``k`` changes the network: GhostNet has a
    depthwise conv only in stride-2 blocks and in projection shortcuts (in != out channels)."""
    return stride > 1 or cin != cout


UNUSED_K = 3  # the k recorded for a block whose kernel does not act


@functools.lru_cache(maxsize=65536)  # called ~35 times per Arch costed; values repeat
def make_divisible(value: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Round to the nearest multiple of ``divisor`` (at least ``divisor``); add one step if that
    lost more than 10%. Same rule as the authors' ``_make_divisible``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class Block:
    """One Ghost bottleneck, in base (width 1.0) channels.

    exp: expansion (mid) channels; out: output channels; k: depthwise kernel (used by the stride-2
    depthwise conv and by the projection shortcut); se: squeeze-excite on the mid channels;
    stride: 1 or 2; s: Ghost ratio; d: kernel of the Ghost module's cheap operation; attn: the
    expansion Ghost module, "v1" (GhostNet) or "dfc" (GhostNetV2's decoupled fully connected
    attention gating it; the projection module stays V1, as in V2).
    """

    exp: int
    out: int
    k: int = 3
    se: bool = False
    stride: int = 1
    s: int = 2
    d: int = 3
    attn: str = "v1"


ATTN = ("v1", "dfc")


@dataclass(frozen=True)
class Arch:
    """A whole network: stem, stages of Ghost bottlenecks, final 1x1 conv, head, classifier."""

    stages: tuple[tuple[Block, ...], ...]
    width: float = 1.0
    resolution: int = 224  # deployment input size; costs are counted here
    stem: int = 16  # base channels, width-scaled
    final_conv: int = 960  # base channels of the 1x1 conv after the last stage, width-scaled
    head: int = 1280  # conv_head channels; NOT width-scaled (as in the paper)
    dropout: float = 0.2
    num_classes: int = 1000
    name: str | None = None

    def __post_init__(self) -> None:
        validate(self)

    # ---- views -------------------------------------------------------------------------
    def blocks(self) -> Iterator[tuple[int, int, Block]]:
        """Yield (stage index, index within stage, block) in network order."""
        for i, stage in enumerate(self.stages):
            for j, block in enumerate(stage):
                yield i, j, block

    @property
    def num_blocks(self) -> int:
        return sum(len(stage) for stage in self.stages)

    def replace(self, **changes: Any) -> "Arch":
        return dataclasses.replace(self, **changes)

    def resolve(self, resolution: int | None = None) -> "ResolvedArch":
        return resolve(self, resolution)

    # ---- JSON --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": ARCH_FORMAT}
        for f in dataclasses.fields(self):
            if f.name != "stages":
                data[f.name] = getattr(self, f.name)
        data["stages"] = [[dataclasses.asdict(b) for b in stage] for stage in self.stages]
        return data

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "arch") -> "Arch":
        if not isinstance(data, dict):
            raise GhostNASError(f"{source}: expected a JSON object with 'stages', got {type(data).__name__}")
        fmt = data.get("format", ARCH_FORMAT)
        if fmt != ARCH_FORMAT:
            raise GhostNASError(f"{source}: unknown format {fmt!r}; expected {ARCH_FORMAT!r}")
        top_fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - top_fields - {"format"}
        if unknown:
            raise GhostNASError(
                f"{source}: unknown field(s) {sorted(unknown)}; allowed: {sorted(top_fields)}")
        if "stages" not in data or not isinstance(data["stages"], list):
            raise GhostNASError(f"{source}: 'stages' must be a list of lists of blocks")
        block_fields = {f.name for f in dataclasses.fields(Block)}
        stages = []
        for i, stage in enumerate(data["stages"]):
            if not isinstance(stage, list):
                raise GhostNASError(f"{source}: stage {i} must be a list of blocks")
            blocks = []
            for j, raw in enumerate(stage):
                where = f"{source}: stage {i} block {j}"
                if not isinstance(raw, dict):
                    raise GhostNASError(f"{where}: expected an object with exp, out, k, se, stride, s, d")
                bad = set(raw) - block_fields
                if bad:
                    raise GhostNASError(f"{where}: unknown field(s) {sorted(bad)}; allowed: {sorted(block_fields)}")
                missing = {"exp", "out"} - set(raw)
                if missing:
                    raise GhostNASError(f"{where}: missing field(s) {sorted(missing)}")
                blocks.append(Block(**raw))
            stages.append(tuple(blocks))
        kwargs = {k: v for k, v in data.items() if k in top_fields and k != "stages"}
        defaulted = sorted((top_fields - {"name", "stages"}) - set(kwargs)) + sorted(
            {f for stage in data["stages"] for raw in stage for f in block_fields - set(raw) - {"attn"}})
        if defaulted:
            import sys

            print(f"note: {source}: no {', '.join(defaulted)} given; using the defaults", file=sys.stderr)
        try:
            return cls(stages=tuple(stages), **kwargs)
        except GhostNASError as exc:
            raise GhostNASError(f"{source}: {exc}") from None


# Bounds on what an Arch may hold: far above any mobile network (GhostNet 1.3x peaks at 1,280
# channels and 16 blocks) and far below sizes that exhaust memory before saying anything.
MAX_CHANNELS = 16_384
MAX_BLOCKS = 128
MAX_CLASSES = 100_000


def _check(cond: bool, where: str, fieldname: str, value: Any, need: str) -> None:
    if not cond:
        raise GhostNASError(f"{where}: field '{fieldname}' = {value!r} is invalid; {need}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(arch: Arch) -> None:
    """Raise GhostNASError naming the block and field of the first invalid value."""
    _check(isinstance(arch.stages, tuple) and len(arch.stages) > 0, "arch", "stages", arch.stages,
           "need at least one stage")
    _check(isinstance(arch.width, (int, float)) and 0.1 <= arch.width <= 4.0, "arch", "width",
           arch.width, "need a number in [0.1, 4]")
    _check(_is_int(arch.resolution) and 8 <= arch.resolution <= 1024, "arch", "resolution",
           arch.resolution, "need an integer in [8, 1024]")
    for name in ("stem", "final_conv", "head"):
        value = getattr(arch, name)
        _check(_is_int(value) and 1 <= value <= MAX_CHANNELS, "arch", name, value,
               f"need a channel count in [1, {MAX_CHANNELS}]")
    _check(_is_int(arch.num_classes) and 1 <= arch.num_classes <= MAX_CLASSES, "arch", "num_classes",
           arch.num_classes, f"need an integer in [1, {MAX_CLASSES}]")
    n_blocks = sum(len(stage) for stage in arch.stages if isinstance(stage, tuple))
    _check(n_blocks <= MAX_BLOCKS, "arch", "stages", f"{n_blocks} blocks", f"need at most {MAX_BLOCKS} blocks")
    _check(isinstance(arch.dropout, (int, float)) and 0.0 <= arch.dropout < 1.0, "arch", "dropout",
           arch.dropout, "need a number in [0, 1)")
    for i, stage in enumerate(arch.stages):
        _check(isinstance(stage, tuple) and len(stage) > 0, f"stage {i}", "blocks", stage,
               "need at least one block per stage")
        for j, b in enumerate(stage):
            where = f"stage {i} block {j}"
            _check(isinstance(b, Block), where, "block", b, "need a Block")
            for name in ("exp", "out"):
                value = getattr(b, name)
                _check(_is_int(value) and 1 <= value <= MAX_CHANNELS, where, name, value,
                       f"need a channel count in [1, {MAX_CHANNELS}]")
            _check(_is_int(b.k) and b.k in (1, 3, 5, 7, 9), where, "k", b.k, "need one of 1, 3, 5, 7, 9")
            _check(isinstance(b.se, bool), where, "se", b.se, "need true or false")
            _check(b.stride in (1, 2) and _is_int(b.stride), where, "stride", b.stride, "need 1 or 2")
            _check(_is_int(b.s) and 2 <= b.s <= 8, where, "s", b.s, "need an integer Ghost ratio in [2, 8]")
            _check(_is_int(b.d) and b.d in (1, 3, 5, 7), where, "d", b.d, "need one of 1, 3, 5, 7")
            _check(b.attn in ATTN, where, "attn", b.attn, "need v1 or dfc")


# ---- resolved (concrete) dimensions ---------------------------------------------------------

class ResolvedBlock(NamedTuple):
    """Concrete channels and spatial sizes of one bottleneck at a given width and resolution.
    (A NamedTuple: costing thousands of Archs a second builds millions of these.)"""

    stage: int
    index: int
    cin: int
    mid: int
    cout: int
    k: int
    stride: int
    se_channels: int  # 0 when there is no SE
    s: int
    d: int
    h: int  # input height
    w: int  # input width
    attn: str = "v1"  # the expansion Ghost module: v1 or dfc (GhostNetV2's attention)

    @property
    def h_out(self) -> int:
        return conv_out(self.h, self.k, self.stride)

    @property
    def w_out(self) -> int:
        return conv_out(self.w, self.k, self.stride)

    @property
    def identity_shortcut(self) -> bool:
        return self.cin == self.cout and self.stride == 1


class ResolvedArch(NamedTuple):
    resolution: int
    stem: int
    blocks: tuple[ResolvedBlock, ...]
    final_conv: int
    head: int
    num_classes: int
    dropout: float
    num_stages: int
    final_hw: tuple[int, int]


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output size of a conv with padding kernel // 2, as every conv in GhostNet uses."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def se_channels(mid: int) -> int:
    return make_divisible(mid * SE_RATIO, CHANNEL_DIVISOR)


def resolve(arch: Arch, resolution: int | None = None) -> ResolvedArch:
    res = arch.resolution if resolution is None else resolution
    w = arch.width
    h = conv_out(res, 3, 2)
    cin = stem = make_divisible(arch.stem * w)
    out_blocks = []
    for i, stage in enumerate(arch.stages):
        for j, b in enumerate(stage):
            mid = make_divisible(b.exp * w)
            cout = make_divisible(b.out * w)
            out_blocks.append(ResolvedBlock(i, j, cin, mid, cout, b.k, b.stride,
                                            se_channels(mid) if b.se else 0, b.s, b.d, h, h, b.attn))
            h = conv_out(h, b.k, b.stride)
            cin = cout
    return ResolvedArch(res, stem, tuple(out_blocks), make_divisible(arch.final_conv * w),
                        arch.head, arch.num_classes, arch.dropout, len(arch.stages), (h, h))


def ghost_channels(out: int, s: int) -> tuple[int, int]:
    """Primary and cheap channel counts of a Ghost module producing ``out`` channels."""
    primary = math.ceil(out / s)
    return primary, primary * (s - 1)


# ---- the paper's networks, defined once --------------------------------------------------------

# GhostNet's hand-designed table (width 1.0): per stage, blocks of (k, exp, out, se, stride).
# Stage grouping follows the authors' code; Ghost modules use s=2, d=3 throughout.
PAPER_TABLE: tuple[tuple[tuple[int, int, int, bool, int], ...], ...] = (
    ((3, 16, 16, False, 1),),
    ((3, 48, 24, False, 2),),
    ((3, 72, 24, False, 1),),
    ((5, 72, 40, True, 2),),
    ((5, 120, 40, True, 1),),
    ((3, 240, 80, False, 2),),
    ((3, 200, 80, False, 1),
     (3, 184, 80, False, 1),
     (3, 184, 80, False, 1),
     (3, 480, 112, True, 1),
     (3, 672, 112, True, 1)),
    ((5, 672, 160, True, 2),),
    ((5, 960, 160, False, 1),
     (5, 960, 160, True, 1),
     (5, 960, 160, False, 1),
     (5, 960, 160, True, 1)),
)

# name -> (width, GhostNet version). GhostNetV2 (NeurIPS 2022) keeps V1's table and puts DFC
# attention in the expansion module of every block but the first two.
PAPER_NETWORKS = {"paper-0.5x": (0.5, 1), "paper-1.0x": (1.0, 1), "paper-1.3x": (1.3, 1),
                  "paper-v2-1.0x": (1.0, 2), "paper-v2-1.3x": (1.3, 2), "paper-v2-1.6x": (1.6, 2)}
PAPER_WIDTHS = {name: w for name, (w, version) in PAPER_NETWORKS.items() if version == 1}
V2_PLAIN_BLOCKS = 2  # GhostNetV2's first two blocks keep the V1 module (layer_id > 1 in its code)


def paper_arch(width: float = 1.0, version: int = 1, **overrides: Any) -> Arch:
    """The authors' GhostNet (or GhostNetV2) at a width multiplier."""
    flat = [row for stage in PAPER_TABLE for row in stage]
    attn = ["dfc" if version == 2 and n >= V2_PLAIN_BLOCKS else "v1" for n in range(len(flat))]
    it = iter(attn)
    stages = tuple(tuple(Block(exp=e, out=o, k=k, se=se, stride=st, attn=next(it)) for k, e, o, se, st in stage)
                   for stage in PAPER_TABLE)
    default = (f"paper-{width:g}x" if width != 1.0 else "paper-1.0x") if version == 1 else \
        (f"paper-v2-{width:g}x" if width != 1.0 else "paper-v2-1.0x")
    overrides.setdefault("name", default)
    return Arch(stages=stages, width=width, **overrides)


def registered_names() -> list[str]:
    return list(PAPER_NETWORKS)


def load_arch(spec: "Arch | str | os.PathLike[str]") -> Arch:
    """An Arch from an Arch, a registered name (``paper-1.0x``), or a path to an arch JSON file."""
    if isinstance(spec, Arch):
        return spec
    text = os.fspath(spec)
    if text in PAPER_NETWORKS:
        width, version = PAPER_NETWORKS[text]
        return paper_arch(width, version, name=text)
    path = Path(text)
    if not path.exists():
        raise GhostNASError(
            f"unknown architecture {text!r}: not a registered name ({', '.join(PAPER_NETWORKS)}) "
            "and no such file; pass a name or the path of an arch JSON file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GhostNASError(f"{path}: not a readable arch JSON file ({exc}); "
                            "write one with `ghostnas arch sample --out FILE`") from None
    arch = Arch.from_dict(data, source=str(path))
    return arch if arch.name else arch.replace(name=path.stem)


def save_arch(arch: Arch, path: "str | os.PathLike[str]") -> Path:
    from .io import atomic_write_text

    return atomic_write_text(path, arch.to_json() + "\n")
