"""SearchSpace: GhostNet's stages and blocks as choices, loaded from YAML (no torch here).

A space file (``search_spaces/*.yaml``) lists stages; each stage gives its blocks' base output
channels (``out``, one entry per block up to the maximum depth), the stride of its first block, and
the choices searched: ``depth`` (keep the first n blocks), per block ``exp_ratio`` (mid channels =
make_divisible(in * ratio)), ``k`` and ``se``, and per stage the Ghost ratio ``s`` and cheap kernel
``d``. ``width`` is global. A dimension with one choice is fixed and gets no label.

Flat labels name one decision each, like NNI's: ``width``, ``s6_depth``, ``s6_b3_exp``,
``s6_b3_k``, ``s6_b3_se``, ``s6_s``, ``s6_d``. ``k`` is only a label where it has an effect: the
depthwise kernel is used by a stride-2 block and by a projection shortcut (in != out channels); in a
stride-1 block with an identity shortcut it changes nothing, so it is not searched (and is set to 3).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from .arch import MAX_CHANNELS, MAX_CLASSES, UNUSED_K, Arch, Block, kernel_acts, make_divisible
from .errors import GhostNASError

Labels = dict[str, Any]

# the shipped spaces: search_spaces/ beside the package in a checkout, package data in a wheel
SPACES_DIR = next((d for d in (Path(__file__).resolve().parent.parent / "search_spaces",
                               Path(__file__).resolve().parent / "search_spaces") if d.is_dir()),
                  Path(__file__).resolve().parent / "search_spaces")
MAX_RATIO = 16  # expansion ratios: MobileNet/GhostNet use up to 6
STAGE_KEYS = {"out", "stride", "depth", "exp_ratio", "k", "se", "s", "d", "attn"}
TOP_KEYS = {"name", "description", "width", "resolution", "stem", "final_conv", "head",
            "dropout", "num_classes", "stages"}


@dataclass(frozen=True)
class Label:
    """One flat label, the only place labels are spelled and parsed: ``width``; per stage
    ``s6_depth``, ``s6_s``, ``s6_d``; per block ``s6_b3_exp``, ``s6_b3_k``, ``s6_b3_se``."""

    field: str
    stage: int | None = None
    block: int | None = None

    def __str__(self) -> str:
        if self.stage is None:
            return self.field
        if self.block is None:
            return f"s{self.stage}_{self.field}"
        return f"s{self.stage}_b{self.block}_{self.field}"

    @classmethod
    def parse(cls, text: str) -> "Label":
        m = _LABEL.fullmatch(text)
        if not m:
            raise GhostNASError(f"labels: {text!r} is not a label (width, s<i>_depth, s<i>_s, s<i>_d, "
                                "s<i>_b<j>_exp, s<i>_b<j>_k, s<i>_b<j>_se)")
        stage, block, name = m.group("stage"), m.group("block"), m.group("field")
        return cls(name, None if stage is None else int(stage), None if block is None else int(block))


_LABEL = re.compile(r"(?:s(?P<stage>\d+)_(?:b(?P<block>\d+)_)?)?(?P<field>[a-z]+)")


def label(field: str, stage: int | None = None, block: int | None = None) -> str:
    return str(Label(field, stage, block))


@dataclass(frozen=True)
class BlockSlot:
    """One block position of a network of the space, with what its place fixes (base channels,
    before the width multiplier)."""

    stage: int
    index: int
    cin: int
    cout: int
    stride: int

    @property
    def kernel_acts(self) -> bool:
        """Whether the depthwise kernel is used here (stride 2 or a projection shortcut)."""
        return kernel_acts(self.cin, self.cout, self.stride)


@dataclass(frozen=True)
class StageSpace:
    out: tuple[int, ...]
    stride: int
    depth: tuple[int, ...]
    exp_ratio: tuple[float, ...]
    k: tuple[int, ...]
    se: tuple[bool, ...]
    s: tuple[int, ...]
    d: tuple[int, ...]
    attn: tuple[str, ...] = ("v1",)  # per block: V1's Ghost module or GhostNetV2's DFC-gated one


@dataclass(frozen=True)
class SearchSpace:
    name: str
    stages: tuple[StageSpace, ...]
    width: tuple[float, ...]
    resolution: int = 224
    stem: int = 16
    final_conv: int = 960
    head: int = 1280
    dropout: float = 0.2
    num_classes: int = 1000
    source: str | None = field(default=None, compare=False)

    # ---- the walk: every other method reads blocks through these two -------------------
    def slots(self, depths: tuple[int, ...]) -> Iterator[BlockSlot]:
        """The blocks of a network with these stage depths, in order."""
        cin = self.stem
        for i, st in enumerate(self.stages):
            for j in range(depths[i]):
                yield BlockSlot(i, j, cin, st.out[j], st.stride if j == 0 else 1)
                cin = st.out[j]

    def possible_slots(self) -> Iterator[BlockSlot]:
        """Every block position any depth choice can produce, once per possible input channels
        (a stage's first block takes whatever the previous stage's depth leaves), in order."""
        prev_outs = {self.stem}
        for i, st in enumerate(self.stages):
            for j in range(max(st.depth)):
                for cin in sorted(prev_outs) if j == 0 else [st.out[j - 1]]:
                    yield BlockSlot(i, j, cin, st.out[j], st.stride if j == 0 else 1)
            prev_outs = {st.out[n - 1] for n in st.depth}

    def final_inputs(self) -> list[int]:
        """The final conv's possible base input channels (the last stage's depth choices)."""
        return sorted({self.stages[-1].out[n - 1] for n in self.stages[-1].depth})

    def dimensions(self) -> list[tuple[str, tuple]]:
        """Every label with its choices (those with at least two), in network order.

        Whether a block's ``k`` is searched can depend on depth (its input channels); it is listed
        when it matters for at least one depth of the previous stage.
        """
        dims: list[tuple[str, tuple]] = []
        if len(self.width) > 1:
            dims.append(("width", self.width))
        k_slots = {(b.stage, b.index) for b in self.possible_slots() if b.kernel_acts}
        for i, st in enumerate(self.stages):
            if len(st.depth) > 1:
                dims.append((label("depth", i), st.depth))
            for j in range(max(st.depth)):
                for name, choices in (("exp", st.exp_ratio), ("k", st.k), ("se", st.se), ("attn", st.attn)):
                    if len(choices) > 1 and (name != "k" or (i, j) in k_slots):
                        dims.append((label(name, i, j), choices))
            for name, choices in (("s", st.s), ("d", st.d)):
                if len(choices) > 1:
                    dims.append((label(name, i), choices))
        return dims

    def active(self, labels: Labels, name: str) -> bool:
        """Whether a label affects the network given the other labels (depth, channels)."""
        lab = Label.parse(name)
        if lab.block is None:
            return True
        depths = self._depths(labels)
        if lab.block >= depths[lab.stage]:
            return False
        if lab.field == "k":
            slot = next(b for b in self.slots(depths) if (b.stage, b.index) == (lab.stage, lab.block))
            return slot.kernel_acts
        return True

    def _depths(self, labels: Labels) -> tuple[int, ...]:
        return tuple(labels.get(label("depth", i), st.depth[0]) if len(st.depth) > 1 else st.depth[0]
                     for i, st in enumerate(self.stages))

    # ---- labels <-> Arch ---------------------------------------------------------------
    def sample(self, seed: "int | random.Random | None" = None) -> Labels:
        """Uniformly random labels (each dimension independently); seeded and reproducible."""
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        return {name: rng.choice(choices) for name, choices in self.dimensions()}

    def sample_arch(self, seed: "int | random.Random | None" = None) -> Arch:
        return self.to_arch(self.sample(seed))

    def to_arch(self, labels: Labels, name: str | None = None) -> Arch:
        """The Arch for flat labels; labels of inactive blocks are ignored, missing ones are an
        error naming the label."""
        dims = dict(self.dimensions())

        def pick(label: str, fixed: tuple) -> Any:
            if len(fixed) == 1:
                return fixed[0]
            if label not in labels:
                raise GhostNASError(f"labels: missing {label!r} (choices {list(dims[label])})")
            value = labels[label]
            if value not in dims[label]:
                raise GhostNASError(f"labels: {label}={value!r} is not a choice of this space "
                                    f"({list(dims[label])})")
            return dims[label][list(dims[label]).index(value)]  # the choice itself: 5, not 5.0 from a table

        unknown = set(labels) - set(dims)
        if unknown:
            raise GhostNASError(f"labels: unknown label(s) {sorted(unknown)} for space {self.name!r}")
        width = pick("width", self.width)
        depths = tuple(pick(label("depth", i), st.depth) for i, st in enumerate(self.stages))
        stages: list[list[Block]] = [[] for _ in self.stages]
        for b in self.slots(depths):
            i, j, st = b.stage, b.index, self.stages[b.stage]
            if b.kernel_acts:
                k = pick(label("k", i, j), st.k) if label("k", i, j) in dims else st.k[0]
            else:
                k = UNUSED_K
            stages[i].append(Block(
                exp=make_divisible(b.cin * pick(label("exp", i, j), st.exp_ratio)), out=b.cout, k=k,
                se=bool(pick(label("se", i, j), st.se)), stride=b.stride,
                s=pick(label("s", i), st.s), d=pick(label("d", i), st.d), attn=pick(label("attn", i, j), st.attn)))
        return Arch(stages=tuple(tuple(s) for s in stages), width=width,
                    resolution=self.resolution, stem=self.stem, final_conv=self.final_conv,
                    head=self.head, dropout=self.dropout, num_classes=self.num_classes, name=name)

    def to_labels(self, arch: Arch) -> Labels:
        """Flat labels of an Arch of this space; GhostNASError naming the first mismatch if the
        Arch is not a point of the space (a kernel with no effect is ignored)."""
        where = f"arch {arch.name or ''} not in space {self.name!r}".replace("  ", " ")
        if arch.width not in self.width:
            raise GhostNASError(f"{where}: width {arch.width} not in {list(self.width)}")
        if len(arch.stages) != len(self.stages):
            raise GhostNASError(f"{where}: {len(arch.stages)} stages, the space has {len(self.stages)}")
        for name in ("stem", "final_conv", "head"):
            if getattr(arch, name) != getattr(self, name):
                raise GhostNASError(f"{where}: {name}={getattr(arch, name)}, the space fixes {getattr(self, name)}")
        dims = dict(self.dimensions())
        labels: Labels = {}

        def put(label: str, value: Any, choices: tuple, what: str) -> None:
            if value not in choices:
                raise GhostNASError(f"{where}: {what}={value!r} not in {list(choices)}")
            if label in dims:
                labels[label] = value

        put("width", arch.width, self.width, "width")
        depths = tuple(len(s) for s in arch.stages)
        for i, st in enumerate(self.stages):
            put(label("depth", i), depths[i], st.depth, f"stage {i} depth")
        for slot, (_, _, b) in zip(self.slots(depths), arch.blocks()):
            i, j, st = slot.stage, slot.index, self.stages[slot.stage]
            w = f"stage {i} block {j}"
            if b.out != slot.cout or b.stride != slot.stride:
                raise GhostNASError(f"{where}: {w} has out={b.out}, stride={b.stride}; "
                                    f"the space fixes out={slot.cout}, stride={slot.stride}")
            ratios = [r for r in st.exp_ratio if make_divisible(slot.cin * r) == b.exp]
            if not ratios:
                raise GhostNASError(f"{where}: {w} exp={b.exp} is no ratio of {list(st.exp_ratio)} "
                                    f"times its {slot.cin} input channels")
            put(label("exp", i, j), ratios[0], st.exp_ratio, f"{w} exp ratio")
            if slot.kernel_acts:
                put(label("k", i, j), b.k, st.k, f"{w} k")
            put(label("se", i, j), b.se, st.se, f"{w} se")
            put(label("attn", i, j), b.attn, st.attn, f"{w} attn")
            if j == 0:
                put(label("s", i), b.s, st.s, f"{w} s")
                put(label("d", i), b.d, st.d, f"{w} d")
            elif (b.s, b.d) != (arch.stages[i][0].s, arch.stages[i][0].d):
                raise GhostNASError(f"{where}: {w} s/d differ within the stage; this space sets "
                                    "them per stage")
        return labels

    def contains(self, arch: Arch) -> bool:
        try:
            self.to_labels(arch)
        except GhostNASError:
            return False
        return True

    def smallest_labels(self) -> Labels:
        """Labels of the cheapest network: cost grows with width, depth, expansion, kernels and
        SE, and falls with the Ghost ratio s, so each dimension's cheapest choice is known."""
        return self._extreme_labels(cheapest=True)

    def largest_labels(self) -> Labels:
        """Labels of the costliest network (see :meth:`smallest_labels`)."""
        return self._extreme_labels(cheapest=False)

    def _extreme_labels(self, cheapest: bool) -> Labels:
        labels: Labels = {}
        for name, choices in self.dimensions():
            falls_with_choice = Label.parse(name).field == "s"
            labels[name] = max(choices) if falls_with_choice == cheapest else min(choices)
        return labels

    # ---- size --------------------------------------------------------------------------
    def size(self) -> int:
        """Number of distinct networks (exact; kernels with no effect are not counted)."""
        total = 0
        # depth choices of a stage change the next stage's input channels: enumerate depths
        depth_combos = [()]
        for st in self.stages:
            depth_combos = [c + (n,) for c in depth_combos for n in st.depth]
        for depths in depth_combos:
            n = 1
            for b in self.slots(depths):
                st = self.stages[b.stage]
                n *= len(st.exp_ratio) * len(st.se) * len(st.attn) * (len(st.k) if b.kernel_acts else 1)
            for st in self.stages:
                n *= len(st.s) * len(st.d)
            total += n
        return total * len(self.width)

    def v1_only(self) -> "SearchSpace":
        """This space with GhostNet V1's modules only (no DFC choice): the default space as it was
        before GhostNetV2's choice joined it, with the same content hash, so its samples, studies
        and tables from then stay what they were (the benchmarks' fixed network lists use it)."""
        if all(st.attn == ("v1",) for st in self.stages):
            return self
        return dataclasses.replace(self, name=f"{self.name}-v1", source=None,
                                   stages=tuple(dataclasses.replace(st, attn=("v1",)) for st in self.stages))

    def digest(self) -> str:
        """A short hash of what the space contains (not its name or file): tables and studies built
        for it record it, so one built for another space is recognised."""
        content = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("name", "source")}
        for stage in content["stages"]:  # a stage without the V2 choice hashes as before it existed
            if tuple(stage["attn"]) == ("v1",):
                del stage["attn"]
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """The space as plain JSON data; ``space_from_dict`` reads it back (supernet records, Ray
        workers: a space need not be a file, as ``ghostnet-v1`` is not)."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "source"}
        d["stages"] = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in st.items()} for st in d["stages"]]
        d["width"] = list(d["width"])
        return d

    def summary(self) -> dict[str, Any]:
        dims = self.dimensions()
        size = self.size()
        return {"name": self.name, "source": self.source, "stages": len(self.stages),
                "max_blocks": sum(max(s.depth) for s in self.stages),
                "dimensions": len(dims), "size": size, "log10_size": round(math.log10(size), 2),
                "width": list(self.width), "resolution": self.resolution}


# ---- loading -------------------------------------------------------------------------------

def _choices(raw: Any, where: str, kind: type, allowed: set | None = None) -> tuple:
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise GhostNASError(f"{where}: empty list; give at least one choice")
    out = []
    for v in values:
        ok = isinstance(v, bool) if kind is bool else isinstance(v, str) if kind is str else (
            isinstance(v, (int, float)) and not isinstance(v, bool) if kind is float else
            isinstance(v, int) and not isinstance(v, bool))
        if not ok or (allowed is not None and v not in allowed):
            need = f"one of {sorted(allowed)}" if allowed else kind.__name__
            raise GhostNASError(f"{where}: {v!r} is not valid; need {need}")
        out.append(float(v) if kind is float else v)
    if len(set(out)) != len(out):
        raise GhostNASError(f"{where}: duplicate choices in {values}")
    return tuple(out)


def space_from_dict(data: Any, source: str = "space") -> SearchSpace:
    if not isinstance(data, dict):
        raise GhostNASError(f"{source}: expected a mapping with 'stages' at the top level")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise GhostNASError(f"{source}: unknown key(s) {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    if not isinstance(data.get("stages"), list) or not data["stages"]:
        raise GhostNASError(f"{source}: 'stages' must be a non-empty list")
    stages = []
    for i, raw in enumerate(data["stages"]):
        where = f"{source}: stage {i}"
        if not isinstance(raw, dict):
            raise GhostNASError(f"{where}: expected a mapping with out, stride, exp_ratio, ...")
        bad = set(raw) - STAGE_KEYS
        if bad:
            raise GhostNASError(f"{where}: unknown key(s) {sorted(bad)}; allowed: {sorted(STAGE_KEYS)}")
        for key in ("out", "stride", "exp_ratio"):
            if key not in raw:
                raise GhostNASError(f"{where}: missing '{key}'")
        out = tuple(raw["out"]) if isinstance(raw["out"], list) else (raw["out"],)
        if not out or any(not isinstance(o, int) or isinstance(o, bool) or not 1 <= o <= MAX_CHANNELS for o in out):
            raise GhostNASError(f"{where} out: need integers in [1, {MAX_CHANNELS}] (base channels per block)")
        depth = _choices(raw.get("depth", len(out)), f"{where} depth", int, set(range(1, len(out) + 1)))
        ratios = _choices(raw["exp_ratio"], f"{where} exp_ratio", float)
        if any(not 0 < r <= MAX_RATIO for r in ratios):
            raise GhostNASError(f"{where} exp_ratio: ratios must be in (0, {MAX_RATIO}]")
        stages.append(StageSpace(
            out=tuple(out), stride=_choices(raw["stride"], f"{where} stride", int, {1, 2})[0],
            depth=depth, exp_ratio=ratios,
            k=_choices(raw.get("k", 3), f"{where} k", int, {1, 3, 5, 7}),
            se=_choices(raw.get("se", False), f"{where} se", bool),
            s=_choices(raw.get("s", 2), f"{where} s", int, set(range(2, 9))),
            d=_choices(raw.get("d", 3), f"{where} d", int, {1, 3, 5, 7}),
            attn=_choices(raw.get("attn", "v1"), f"{where} attn", str, {"v1", "dfc"})))
    width = _choices(data.get("width", 1.0), f"{source}: width", float)
    if any(not 0.1 <= w <= 4 for w in width):
        raise GhostNASError(f"{source}: width: multipliers must be in [0.1, 4]")
    scalars = {}
    for key, default, low, high in (("resolution", 224, 8, 1024), ("stem", 16, 1, MAX_CHANNELS),
                                    ("final_conv", 960, 1, MAX_CHANNELS), ("head", 1280, 1, MAX_CHANNELS),
                                    ("num_classes", 1000, 1, MAX_CLASSES)):
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise GhostNASError(f"{source}: {key}: need an integer in [{low}, {high}], got {value!r}")
        scalars[key] = value
    dropout = data.get("dropout", 0.2)
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise GhostNASError(f"{source}: dropout: need a number in [0, 1), got {dropout!r}")
    return SearchSpace(name=str(data.get("name", Path(source).stem)), stages=tuple(stages),
                       width=width, dropout=float(dropout), source=source, **scalars)


def load_space(spec: "str | os.PathLike[str] | SearchSpace | None" = None) -> SearchSpace:
    """A space from a YAML path or a shipped name (``ghostnet``, ``tiny``); default ``ghostnet``.
    A shipped name with ``-v1`` appended (``ghostnet-v1``) is that space without the DFC choice."""
    if isinstance(spec, SearchSpace):
        return spec
    text = os.fspath(spec) if spec is not None else "ghostnet"
    path = Path(text)
    if not path.exists():
        shipped = SPACES_DIR / f"{text}.yaml"
        if shipped.exists():
            path = shipped
        elif text.endswith("-v1") and (SPACES_DIR / f"{text[:-3]}.yaml").exists():
            return load_space(text[:-3]).v1_only()
        else:
            names = sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))
            raise GhostNASError(f"search space {text!r} not found; give a YAML path or one of {names} "
                                 "(a name with -v1 appended: that space without the DFC choice)")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise GhostNASError(f"{path}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise GhostNASError(f"{path}: invalid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    return space_from_dict(data, source=str(path))
