"""One interface for every cost of an Arch: ``Profiler.profile(arch) -> float``.

The search sees costs only through profilers (after NNI's ``Profiler.profile(sample)`` and
Once-for-All's ``get_efficiency(sample)``): a budget is a (profiler name, limit) pair, a trial
records each profiler's value under its name, and the Pareto axis is a profiler too. Adding a cost
(energy, peak memory, a phone's table) is one small subclass here and one line in
:func:`profilers_for`.

The analytic profilers share one :func:`count` per Arch (the last Arch is remembered), so MACs and
params together still cost one pass over the blocks.
"""

from __future__ import annotations

from typing import Any

from ..arch import Arch
from .analytic import Cost, count


class Profiler:
    """A named cost of an Arch. ``name`` is the trials-table column and the budget kind."""

    name: str = ""
    axis: str = ""  # plot axis label
    scale: float = 1.0  # shown in units of this (1e6: millions)

    def profile(self, arch: Arch) -> float:
        raise NotImplementedError

    def record(self, value: float) -> Any:
        """The value as stored in a trial (ints for counts, rounded ms)."""
        return value


class _Analytic(Profiler):
    _last: tuple[int, Arch, Cost] | None = None  # shared by MACs and params: one count per Arch

    @classmethod
    def cost_of(cls, arch: Arch) -> Cost:
        last = _Analytic._last
        if last is not None and last[0] == id(arch) and last[1] is arch:
            return last[2]
        cost = count(arch)
        _Analytic._last = (id(arch), arch, cost)
        return cost

    def record(self, value: float) -> int:
        return int(value)


class MacsProfiler(_Analytic):
    name, axis, scale = "macs", "MACs (M, = paper FLOPs)", 1e6

    def profile(self, arch: Arch) -> float:
        return self.cost_of(arch).macs


class ParamsProfiler(_Analytic):
    name, axis, scale = "params", "params (M)", 1e6

    def profile(self, arch: Arch) -> float:
        return self.cost_of(arch).params


class LutLatencyProfiler(Profiler):
    """Latency predicted by a lookup table (``ghostnas lut build``), in ms."""

    name, axis = "latency_ms", "latency (ms, LUT)"

    def __init__(self, table) -> None:
        self.table = table  # a cost.lut.LatencyModel

    def profile(self, arch: Arch) -> float:
        return float(self.table.predict_arch(arch))

    def record(self, value: float) -> float:
        return round(float(value), 4)


class MeasuredLatencyProfiler(LutLatencyProfiler):
    """Latency timed here end to end, as the table's entries were timed (slow: seconds per Arch);
    used to check finalists against a latency budget, not per trial."""

    name, axis = "latency_ms_measured", "latency (ms, measured)"

    def __init__(self, table, times: int = 3) -> None:
        super().__init__(table)
        self.times = times

    def profile(self, arch: Arch) -> float:
        return float(self.table.measure_arch(arch, times=self.times))


def profilers_for(lut_path: str | None, space=None, allow_emulated: bool = False) -> list[Profiler]:
    """The per-trial profilers of a search: MACs and params always, LUT latency with a table (which
    must have been built for ``space``; a table timed on another device is said once, on stderr; one
    timed under emulation is refused unless ``allow_emulated``: emulated time is not the device's)."""
    out: list[Profiler] = [MacsProfiler(), ParamsProfiler()]
    if lut_path:
        import sys

        from .lut import LatencyModel

        table = LatencyModel.load(lut_path)
        if space is not None:
            table.require_space(space)
        if (table.meta.get("device") or {}).get("emulated") and not allow_emulated:
            from ..errors import GhostNASError

            raise GhostNASError(f"{lut_path} was timed under emulation (an ARM userland on another CPU): its "
                                "times are the emulator's, not the device's; pass --allow-emulated to search "
                                "with it anyway")
        note = table.foreign_device()
        if note:
            print(note, file=sys.stderr, flush=True)
        out.append(LutLatencyProfiler(table))
    return out


PROFILERS = {p.name: p for p in (MacsProfiler, ParamsProfiler, LutLatencyProfiler, MeasuredLatencyProfiler)}


def profile_all(profilers: list[Profiler], arch: Arch) -> dict[str, Any]:
    return {p.name: p.record(p.profile(arch)) for p in profilers}
