"""LUT entries: the keys a network is timed by, and which entries a space has (no torch).

Entries are keyed like Once-for-All's, from the resolved dimensions the model is built from:
``block|in:28x28x40|mid:120|out:40|k:3|stride:1|se:32|s:2|d:3``, plus ``stem``, ``final`` and
``head`` entries.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

from ...arch import UNUSED_K, ResolvedArch, ResolvedBlock, conv_out, kernel_acts, make_divisible, se_channels
from ...errors import GhostNASError
from ..analytic import block_cost, dfc_macs


FEATURES = ["h", "cin", "mid", "cout", "k", "stride", "se", "s", "d", "macs", "params"]
COLUMNS = ["key", "kind", *FEATURES, "median_ms", "p10_ms", "p90_ms", "runs"]
OLD_HEAD_H = 7  # the head (global pool + 1x1 conv + classifier) was once always timed on 7x7


@dataclass(frozen=True)
class Entry:
    kind: str  # block | stem | final | head
    h: int
    cin: int
    mid: int
    cout: int
    k: int = 1
    stride: int = 1
    se: int = 0
    s: int = 0
    d: int = 0
    classes: int = 0
    attn: str = "v1"  # a block's expansion module: v1, or dfc (GhostNetV2's attention)

    @property
    def key(self) -> str:
        if self.kind == "block":  # a V1 block's key predates the choice and stays as it was
            return (f"block|in:{self.h}x{self.h}x{self.cin}|mid:{self.mid}|out:{self.cout}|k:{self.k}"
                    f"|stride:{self.stride}|se:{self.se}|s:{self.s}|d:{self.d}"
                    + ("" if self.attn == "v1" else f"|attn:{self.attn}"))
        if self.kind == "stem":
            return f"stem|in:{self.h}x{self.h}x3|out:{self.cout}"
        if self.kind == "final":
            return f"final|in:{self.h}x{self.h}x{self.cin}|out:{self.cout}"
        return f"head|in:{self.h}x{self.h}x{self.cin}|hidden:{self.mid}|classes:{self.classes}"

    @classmethod
    def from_key(cls, key: str) -> "Entry":
        kind, *parts = key.split("|")
        fields = dict(p.split(":", 1) for p in parts)
        if kind == "block":
            h, _, cin = fields["in"].split("x")
            return cls("block", int(h), int(cin), int(fields["mid"]), int(fields["out"]), int(fields["k"]),
                       int(fields["stride"]), int(fields["se"]), int(fields["s"]), int(fields["d"]),
                       attn=fields.get("attn", "v1"))
        if kind in ("stem", "final"):
            h, _, cin = fields["in"].split("x")
            return cls(kind, int(h), int(cin), 0, int(fields["out"]))
        if kind == "head":  # in:HxWxC; tables before the pooled size was keyed wrote in:C, timed at 7x7
            h, _, cin = fields["in"].split("x") if "x" in fields["in"] else (OLD_HEAD_H, 0, fields["in"])
            return cls("head", int(h), int(cin), int(fields["hidden"]), 0, classes=int(fields["classes"]))
        raise GhostNASError(f"unknown LUT key {key!r}")

    def block(self) -> ResolvedBlock:
        return ResolvedBlock(0, 0, self.cin, self.mid, self.cout, self.k, self.stride, self.se,
                             self.s, self.d, self.h, self.h, self.attn)

    def features(self) -> dict[str, float]:
        if self.kind == "block":
            params, macs = block_cost(self.block())
        elif self.kind == "stem":
            params, macs = 29 * self.cout, conv_out(self.h, 3, 2) ** 2 * 27 * self.cout
        elif self.kind == "final":
            params, macs = self.cin * self.cout + 2 * self.cout, self.h * self.h * self.cin * self.cout
        else:
            params = self.cin * self.mid + self.mid + self.mid * self.classes + self.classes
            macs = self.cin * self.mid + self.mid * self.classes
        return {"h": self.h, "cin": self.cin, "mid": self.mid, "cout": self.cout, "k": self.k,
                "stride": self.stride, "se": self.se, "s": self.s, "d": self.d, "macs": macs,
                "params": params}


def predictor_features(e: Entry) -> list[float]:
    """The table's features plus the work of each part of a block (two Ghost modules' primary and
    cheap convs, the strided depthwise, SE, shortcut) and its activation sizes, raw and log:
    the trees then split on what the runtime actually spends time on (5-fold CV error 9.7% -> 8.6%
    per entry on the default space)."""
    f = e.features()
    base = [float(f[name]) for name in FEATURES]
    if e.kind != "block":
        parts = [0.0] * 10
    else:
        ho = conv_out(e.h, e.k, e.stride)
        init1, init2 = -(-e.mid // e.s), -(-e.cout // e.s)
        projection = e.stride > 1 or e.cin != e.cout
        # a DFC branch (V2) reads the same input as ghost1's 1x1 primary conv and counts with it, so a
        # V1 entry's features, and the predictions of tables built before the choice, stay as they were
        dfc = dfc_macs(e.h, e.h, e.cin, e.mid) if e.attn == "dfc" else 0
        parts = [e.h * e.h * e.cin * init1 + dfc, e.h * e.h * init1 * (e.s - 1) * e.d * e.d,
                 ho * ho * e.mid * e.k * e.k if e.stride > 1 else 0, 2 * e.mid * e.se,
                 ho * ho * e.mid * init2, ho * ho * init2 * (e.s - 1) * e.d * e.d,
                 ho * ho * (e.cin * e.cout + e.cin * e.k * e.k) if projection else 0,
                 e.h * e.h * e.cin, e.h * e.h * e.mid, ho * ho * e.cout]
    return base + [float(v) for v in parts] + [math.log1p(v) for v in parts]


def arch_entries(r: ResolvedArch) -> list[Entry]:
    entries = [Entry("stem", r.resolution, 3, 0, r.stem)]
    # a kernel that does not act is keyed as the space enumerates it, so the paper's k=5 on an
    # identity block finds the same (equal) network's entry
    entries += [Entry("block", b.h, b.cin, b.mid, b.cout,
                      b.k if kernel_acts(b.cin, b.cout, b.stride) else UNUSED_K, b.stride, b.se_channels, b.s, b.d,
                      attn=b.attn)
                for b in r.blocks]
    cin = r.blocks[-1].cout if r.blocks else r.stem
    entries.append(Entry("final", r.final_hw[0], cin, 0, r.final_conv))
    entries.append(Entry("head", r.final_hw[0], r.final_conv, r.head, 0, classes=r.num_classes))
    return entries


def space_entries(space) -> list[Entry]:
    """Every distinct entry the space can produce (order: by width, then network position); the
    block positions come from the space's own walk (``SearchSpace.possible_slots``)."""
    heights, final_h = {}, conv_out(space.resolution, 3, 2)
    for i, st in enumerate(space.stages):  # a stage's first block strides; the rest keep its size
        heights[(i, 0)] = final_h
        final_h = conv_out(final_h, 3, st.stride)
        heights.update({(i, j): final_h for j in range(1, max(st.depth))})
    seen: dict[str, Entry] = {}
    for width in space.width:
        w = float(width)
        entries = [Entry("stem", space.resolution, 3, 0, make_divisible(space.stem * w))]
        for slot in space.possible_slots():
            st = space.stages[slot.stage]
            cin, cout = make_divisible(slot.cin * w), make_divisible(slot.cout * w)
            kernels = st.k if kernel_acts(cin, cout, slot.stride) else (UNUSED_K,)
            for ratio, k, se, s, d, attn in itertools.product(st.exp_ratio, kernels, st.se, st.s, st.d, st.attn):
                mid = make_divisible(make_divisible(slot.cin * ratio) * w)
                entries.append(Entry("block", heights[(slot.stage, slot.index)], cin, mid, cout, k,
                                     slot.stride, se_channels(mid) if se else 0, s, d, attn=attn))
        final = make_divisible(space.final_conv * w)
        entries += [Entry("final", final_h, make_divisible(c * w), 0, final) for c in space.final_inputs()]
        entries.append(Entry("head", final_h, final, space.head, 0, classes=space.num_classes))
        for e in entries:
            seen.setdefault(e.key, e)
    return list(seen.values())


def position(e: Entry) -> tuple[int, int, bool]:
    """A block's network position, the strata of a sampled table: input size, stride, and whether
    its shortcut is the identity."""
    return e.h, e.stride, e.cin == e.cout


def entry_order(space, seed: int, measured: "set[str] | frozenset[str]" = frozenset()) -> list[Entry]:
    """Every entry of the space in the order a build measures them: the stem/final/head entries,
    then the blocks dealt round-robin over network positions (input size, stride, identity or
    projection shortcut), each position's blocks in a shuffle seeded by (seed, position) with the
    entries already ``measured`` first.

    So any prefix is a stratified sample, a longer prefix holds every entry of a shorter one, and
    a build stopped by its time budget or ``--max-entries`` leaves an even sample; raising either on
    an existing table measures only the entries it adds."""
    entries = space_entries(space)
    fixed = [e for e in entries if e.kind != "block"]
    by_pos: dict[tuple, list[Entry]] = {}
    for e in entries:
        if e.kind == "block":
            by_pos.setdefault(position(e), []).append(e)
    queues = []
    for pos, group in by_pos.items():
        order = list(group)
        random.Random(f"{seed}|{pos}").shuffle(order)
        order.sort(key=lambda e: e.key not in measured)  # stable: the measured first, shuffled order kept
        queues.append(order)
    dealt = [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]
    return fixed + dealt


def select_entries(space, max_entries: int | None, seed: int,
                   measured: "set[str] | frozenset[str]" = frozenset()) -> list[Entry]:
    """All of the space's entries, or the first ``max_entries`` of :func:`entry_order` (a
    stratified sample), and never fewer than every stem/final/head entry and one block per network
    position: the least a predictor can work from."""
    order = entry_order(space, seed, measured)
    if not max_entries:
        return order
    fixed = sum(e.kind != "block" for e in order)
    positions = len({position(e) for e in order if e.kind == "block"})
    return order[:max(max_entries, fixed + positions)]
