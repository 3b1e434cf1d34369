"""Budget strings: ``150MFLOPs``, ``0.6GFLOPs``, ``150MMACs``, ``5Mparams``, ``800Kparams``,
``30ms``; several at once with commas (``150MFLOPs,4Mparams``) or repeated ``--budget``.

FLOPs are counted as the paper counts them: multiply-accumulates of conv and linear layers, so
``150MFLOPs`` and ``150MMACs`` are the same budget. A budget is an upper limit, or a range
``120-150MFLOPs`` (both numbers in the one unit) whose floor rejects candidates that leave most
of the budget unspent: a short proxy favours small networks, which learn fastest in a few steps,
while after long training capacity usually wins (on Fashion-MNIST the 2-epoch proxy's searches
stopped at 67M MACs under a 227M budget and lost 0.83 points to the paper network:
results/REPORT.md). Once-for-All and SPOS search within such a FLOPs window too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from ..errors import GhostNASError

ACCEPTED = ("150MFLOPs, 0.3GFLOPs, 150MMACs, 5Mparams, 800Kparams, 30ms (with --lut), "
            "or a range such as 120-150MFLOPs")
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
_NUMBER = r"(\d+(?:\.\d+)?)"
_PATTERN = re.compile(rf"^\s*(?:{_NUMBER}\s*-\s*)?{_NUMBER}\s*([kmg]?)\s*(flops|macs|params|ms)\s*$",
                      re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    kind: str  # "macs" | "params" | "latency_ms"
    limit: float
    text: str
    floor: float = 0.0  # a range's lower end: cheaper candidates are rejected too

    def value_of(self, costs: dict[str, float]) -> float:
        """This budget's cost among a trial's profiled ``costs`` (see cost.profiler)."""
        if self.kind not in costs or costs[self.kind] is None:
            raise GhostNASError(f"budget {self.text} needs a {self.kind} profiler"
                                + ("; pass --lut FILE" if self.kind == "latency_ms" else ""))
        return costs[self.kind]

    def over(self, costs: dict[str, float]) -> str | None:
        """Why ``costs`` break this budget, or None when they fit."""
        return self.above_limit(costs) or self.under_floor(costs)

    def above_limit(self, costs: dict[str, float]) -> str | None:
        value = self.value_of(costs)
        return f"{self.kind} {value:g} > {self.limit:g} ({self.text})" if value > self.limit else None

    def under_floor(self, costs: dict[str, float]) -> str | None:
        value = self.value_of(costs)
        return (f"{self.kind} {value:g} < {self.floor:g}, under the floor of {self.text}"
                if value < self.floor else None)

    def slug(self) -> str:
        if self.kind == "latency_ms":
            low, high, unit = self.floor, self.limit, "ms"
        else:
            low, high, unit = self.floor / 1e6, self.limit / 1e6, "MFLOPs" if self.kind == "macs" else "Mparams"
        return (f"{low:g}-" if self.floor else "") + f"{high:g}{unit}"


def parse_budget(text: str) -> Budget:
    m = _PATTERN.match(text)
    if not m:
        raise GhostNASError(f"malformed budget {text!r}; accepted forms: {ACCEPTED}")
    low, number, prefix, unit = m.group(1), float(m.group(2)), m.group(3).lower(), m.group(4).lower()
    low = float(low) if low is not None else 0.0
    if number <= 0:
        raise GhostNASError(f"budget {text!r} must be positive; accepted forms: {ACCEPTED}")
    if low >= number:
        raise GhostNASError(f"budget range {text!r} must rise: its floor {low:g} is not under its "
                            f"limit {number:g}; write it as LOW-HIGH, e.g. 120-150MFLOPs")
    if unit == "ms":
        if prefix:
            raise GhostNASError(f"malformed budget {text!r}: latency is given in plain ms; "
                                f"accepted forms: {ACCEPTED}")
        return Budget("latency_ms", number, text.strip(), low)
    kind = "params" if unit == "params" else "macs"
    return Budget(kind, number * _SCALE[prefix], text.strip(), low * _SCALE[prefix])


def canonical_budgets(texts: "str | Iterable[str]") -> list[str]:
    """Budgets by value, in a fixed order: ``0.15GFLOPs``, ``150mflops`` and ``150MMACs`` are all
    ``150MFLOPs``, so a study made with one spelling resumes with another."""
    return sorted(b.slug() for b in parse_budgets(texts))


def parse_budgets(texts: "str | Iterable[str]") -> tuple[Budget, ...]:
    items = [texts] if isinstance(texts, str) else list(texts)
    budgets = [parse_budget(part) for item in items for part in item.split(",") if part.strip()]
    if not budgets:
        raise GhostNASError(f"no budget given; accepted forms: {ACCEPTED}")
    kinds = [b.kind for b in budgets]
    dup = {k for k in kinds if kinds.count(k) > 1}
    if dup:
        raise GhostNASError(f"two budgets of the same kind ({', '.join(sorted(dup))}); give one each")
    return tuple(budgets)
